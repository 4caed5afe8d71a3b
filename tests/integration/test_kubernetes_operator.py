"""The operator with ``runner: kubernetes`` end to end: kopf, the one controller, the runner.

KMock serves the MLModels and the workload kinds; the operator runs as ``mlplatform
operator`` wires it (``kubernetes_operator_running``: the runners with the operator's own API
client, only the Kubernetes runner enabled); ``ClusterSimulator`` plays the Deployment
controller and the kubelet. Every wait is for a condition, with a timeout.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from mlplatform.config import Settings
from tests.support.kube_cluster import mlmodel, until
from tests.support.kube_workloads import (
    ClusterSimulator,
    WorkloadCluster,
    kubernetes_operator_running,
    workload_cluster,
)

NS = "models"
SETTINGS = Settings.load(
    {
        "RUNNERS_DOCKER_ENABLED": "false",
        "RUNNERS_KUBERNETES_ENABLED": "true",
        "MLPLATFORM_CONTROLLER": "e2e-kubernetes",
    }
)
ENDPOINT = "http://iris.models.svc:8080"
TIMEOUT = 20.0


def spec(**container: Any) -> dict[str, Any]:
    return {
        "id": "iris:1.0",
        "runner": "kubernetes",
        "container": {
            "image": "registry.example.com/iris:1.0",
            "ports": [8080],
            "volumes": ["/storage"],
            **container,
        },
    }


def status_of(obj: dict[str, Any] | None) -> dict[str, Any]:
    return dict((obj or {}).get("status") or {})


def condition(obj: dict[str, Any] | None, kind: str) -> dict[str, Any]:
    found = [c for c in status_of(obj).get("conditions") or [] if c.get("type") == kind]
    return dict(found[0]) if found else {}


async def eventually(
    read: Callable[[], Awaitable[Any]], check: Callable[[Any], bool], what: str
) -> Any:
    """Poll ``read`` until ``check`` holds (``TimeoutError`` naming ``what``)."""
    last: list[Any] = [None]

    async def holds() -> bool:
        last[0] = await read()
        return check(last[0])

    deadline = time.monotonic() + TIMEOUT
    while not await holds():
        if time.monotonic() > deadline:
            raise TimeoutError(f"not within {TIMEOUT}s: {what}; last: {str(last[0])[:800]}")
        await asyncio.sleep(0.05)
    return last[0]


async def objects(cluster: WorkloadCluster, kind: str) -> list[dict[str, Any]]:
    return await cluster.objects(kind, NS)


async def ready(cluster: WorkloadCluster, name: str = "iris") -> dict[str, Any]:
    return await cluster.wait_for_condition(NS, name, "Ready", timeout=TIMEOUT)


async def serving(cluster: WorkloadCluster, sim: ClusterSimulator) -> dict[str, Any]:
    """MLModel iris created, its Deployment made and rolled out: the model once Ready."""
    await cluster.create(mlmodel("iris", namespace=NS, spec=spec()))
    await eventually(lambda: cluster.get_object("Deployment", NS, "iris"), bool, "Deployment")
    await sim.rollout_done(NS, "iris")
    return await ready(cluster)


async def test_a_model_gets_its_objects_and_is_ready_with_the_service_endpoint() -> None:
    async with workload_cluster() as cluster, kubernetes_operator_running(cluster, SETTINGS):
        sim = ClusterSimulator(cluster)
        created = await cluster.create(mlmodel("iris", namespace=NS, spec=spec()))
        uid = created["metadata"]["uid"]
        deployment = await eventually(
            lambda: cluster.get_object("Deployment", NS, "iris"), bool, "the Deployment"
        )
        service = await eventually(
            lambda: cluster.get_object("Service", NS, "iris"), bool, "the Service"
        )
        claim = await cluster.get_object("PersistentVolumeClaim", NS, "iris-storage")
        assert claim is not None
        for obj in (deployment, service):
            [reference] = obj["metadata"]["ownerReferences"]
            assert (reference["kind"], reference["uid"]) == ("MLModel", uid)
            assert reference["controller"] is True and reference["blockOwnerDeletion"] is True
        starting = await cluster.wait_for_phase(NS, "iris", "Starting", timeout=TIMEOUT)
        assert condition(starting, "Ready")["status"] == "False"

        await sim.rollout_done(NS, "iris")
        obj = await ready(cluster)
        status = status_of(obj)
        assert status["phase"] == "Running"
        assert status["endpoints"] == [ENDPOINT]
        assert status["observedGeneration"] == 1
        assert status["runner"]["type"] == "kubernetes"
        assert status["runner"]["workloadId"] == deployment["metadata"]["uid"]
        assert status["runner"]["deployment"] == "iris"
        assert status["runner"]["claim"] == "iris-storage"
        events = [e.get("reason") for e in cluster.events(namespace=NS, name="iris")]
        assert "Created" in events


async def test_a_spec_change_keeps_ready_true_while_the_previous_pod_serves() -> None:
    async with workload_cluster() as cluster, kubernetes_operator_running(cluster, SETTINGS):
        sim = ClusterSimulator(cluster)
        first = await serving(cluster, sim)

        changed = spec(image="registry.example.com/iris:1.1")
        await cluster.patch(NS, "iris", {"spec": changed})
        deployment = await eventually(
            lambda: cluster.get_object("Deployment", NS, "iris"),
            lambda d: d["spec"]["template"]["spec"]["containers"][0]["image"].endswith("1.1"),
            "the Deployment's new template",
        )
        assert deployment["metadata"]["generation"] == 2
        await sim.observe_generation(NS, "iris")
        await sim.crash_loop(NS, "iris", exit_code=4)  # the new pod fails; the old one serves
        rolling = await cluster.wait_for(
            NS,
            "iris",
            lambda o: (
                status_of(o).get("observedGeneration") == 2
                and condition(o, "Updating").get("reason") == "CrashLoopBackOff"
            ),
            timeout=TIMEOUT,
        )
        # The previous pod serves: Ready stays True; Updating says how the update goes.
        assert condition(rolling, "Ready")["status"] == "True"
        assert condition(rolling, "Updating")["status"] == "True"
        assert "exited with code 4" in condition(rolling, "Updating")["message"]
        assert status_of(rolling)["phase"] == "Running"
        assert status_of(rolling)["endpoints"] == [ENDPOINT]
        assert status_of(rolling)["runner"]["revision"] == status_of(first)["runner"]["revision"]

        await sim.rollout_done(NS, "iris")
        done = await cluster.wait_for(
            NS,
            "iris",
            lambda o: condition(o, "Updating").get("status") == "False",
            timeout=TIMEOUT,
        )
        assert condition(done, "Updating")["reason"] == "UpToDate"
        assert condition(done, "Ready")["status"] == "True"
        assert status_of(done)["runner"]["revision"] != status_of(first)["runner"]["revision"]
        assert len(await objects(cluster, "Deployment")) == 1


async def test_suspend_scales_to_zero_and_keeps_service_and_claim_resume_scales_up() -> None:
    async with workload_cluster() as cluster, kubernetes_operator_running(cluster, SETTINGS):
        sim = ClusterSimulator(cluster)
        await serving(cluster, sim)

        await cluster.patch(NS, "iris", {"spec": {"suspend": True}})
        await eventually(
            lambda: cluster.get_object("Deployment", NS, "iris"),
            lambda d: d["spec"]["replicas"] == 0,
            "replicas 0",
        )
        await sim.scale_down(NS, "iris")
        stopped = await cluster.wait_for_phase(NS, "iris", "Stopped", timeout=TIMEOUT)
        assert condition(stopped, "Ready")["reason"] == "Suspended"
        assert status_of(stopped)["endpoints"] == []
        assert await cluster.get_object("Service", NS, "iris") is not None
        assert await cluster.get_object("PersistentVolumeClaim", NS, "iris-storage") is not None
        assert await sim.pods(NS, "iris") == []

        await cluster.patch(NS, "iris", {"spec": {"suspend": False}})
        await eventually(
            lambda: cluster.get_object("Deployment", NS, "iris"),
            lambda d: d["spec"]["replicas"] == 1,
            "replicas 1",
        )
        await sim.rollout_done(NS, "iris")
        await cluster.wait_for_phase(NS, "iris", "Running", timeout=TIMEOUT)


async def test_delete_needs_no_finalizer_and_removes_deployment_and_service() -> None:
    async with workload_cluster() as cluster, kubernetes_operator_running(cluster, SETTINGS):
        sim = ClusterSimulator(cluster)
        model = await serving(cluster, sim)
        # Its objects are the garbage collector's to remove: nothing holds the MLModel.
        assert not model["metadata"].get("finalizers")
        assert not any(
            k.startswith("mlplatform.dev/") for k in model["metadata"].get("annotations") or {}
        )

        await cluster.delete(NS, "iris")
        assert await cluster.get(NS, "iris") is None
        # The operator deletes them as well (an emulator has no garbage collector).
        await eventually(
            lambda: cluster.get_object("Deployment", NS, "iris"), lambda d: d is None, "gone"
        )
        await eventually(
            lambda: cluster.get_object("Service", NS, "iris"), lambda s: s is None, "gone"
        )
        # Storage is kept unless RUNNERS_KUBERNETES_DELETE_CLAIM says otherwise.
        assert await cluster.get_object("PersistentVolumeClaim", NS, "iris-storage") is not None


async def test_the_finalizer_follows_where_the_workload_lives_when_the_runner_changes() -> None:
    async with workload_cluster() as cluster, kubernetes_operator_running(cluster, SETTINGS):
        # A Docker model (its runner is off here: it only reports so) is held by a finalizer.
        await cluster.create(mlmodel("iris", namespace=NS, spec={**spec(), "runner": "docker"}))

        def finalizers(obj: dict[str, Any] | None) -> list[str]:
            return list(((obj or {}).get("metadata") or {}).get("finalizers") or [])

        await eventually(lambda: cluster.get(NS, "iris"), lambda o: bool(finalizers(o)), "held")
        await cluster.patch(NS, "iris", {"spec": {"runner": "kubernetes"}})
        await eventually(
            lambda: cluster.get(NS, "iris"), lambda o: not finalizers(o), "finalizer removed"
        )
        await eventually(lambda: cluster.get_object("Deployment", NS, "iris"), bool, "Deployment")


async def test_a_model_deleted_while_no_operator_runs_goes_at_once_and_its_objects_later() -> None:
    async with workload_cluster() as cluster:
        async with kubernetes_operator_running(cluster, SETTINGS):
            await cluster.create(mlmodel("iris", namespace=NS, spec=spec()))
            await eventually(lambda: cluster.get_object("Service", NS, "iris"), bool, "the Service")
        await cluster.delete(NS, "iris")
        assert await cluster.get(NS, "iris") is None  # no operator needed to delete it
        assert await cluster.get_object("Deployment", NS, "iris") is not None
        async with kubernetes_operator_running(cluster, SETTINGS):
            # The next operator's first resync finds the owner gone: what a cluster's garbage
            # collector would have done already.
            await eventually(
                lambda: cluster.get_object("Deployment", NS, "iris"), lambda d: d is None, "gone"
            )
            await eventually(
                lambda: cluster.get_object("Service", NS, "iris"), lambda s: s is None, "gone"
            )


async def test_an_operator_given_namespaces_lists_and_watches_only_in_them() -> None:
    async with (
        workload_cluster() as cluster,
        kubernetes_operator_running(cluster, SETTINGS, namespaces=(NS,)) as op,
    ):
        sim = ClusterSimulator(cluster)
        await serving(cluster, sim)
        resync = await asyncio.to_thread(op.controller.resync)
        assert resync is not None and resync.stale == frozenset()
        workload_paths = {
            request.url.path
            for request in cluster.emulator
            if any(
                part in request.url.path
                for part in ("/deployments", "/services", "/pods", "/persistentvolumeclaims")
            )
        }
        assert workload_paths, "the runner made no request at all"
        # Under a Role in each namespace, a cluster-wide list or watch would be refused.
        assert all(
            path.startswith(("/apis/apps/v1/namespaces/models/", "/api/v1/namespaces/models/"))
            for path in workload_paths
        ), sorted(workload_paths)


async def test_a_restarted_operator_adopts_what_it_finds_without_duplicates() -> None:
    async with workload_cluster() as cluster:
        sim = ClusterSimulator(cluster)
        async with kubernetes_operator_running(cluster, SETTINGS):
            before = await serving(cluster, sim)
        deployment = await cluster.get_object("Deployment", NS, "iris")
        assert deployment is not None
        async with kubernetes_operator_running(cluster, SETTINGS) as op:
            registry = op.reconciler.metrics.registry

            def reconciled() -> float:
                value = registry.get_sample_value("mlplatform_reconcile_total", {"result": "ok"})
                return value or 0.0

            await until(lambda: reconciled() >= 1, what="a reconcile by the new operator")
            # One listing finds the adopted workload in sync with the status: nothing to do.
            resync = await asyncio.to_thread(op.controller.resync)
            assert resync is not None
            assert resync.stale == frozenset() and resync.removed == ()
            after = await ready(cluster)
            assert [d["metadata"]["uid"] for d in await objects(cluster, "Deployment")] == [
                deployment["metadata"]["uid"]
            ]
            assert len(await objects(cluster, "Service")) == 1
            assert len(await objects(cluster, "PersistentVolumeClaim")) == 1
            assert (
                status_of(after)["runner"]["workloadId"]
                == (status_of(before)["runner"]["workloadId"])
            )


async def test_a_deleted_or_hand_edited_deployment_is_restored() -> None:
    async with workload_cluster() as cluster, kubernetes_operator_running(cluster, SETTINGS):
        sim = ClusterSimulator(cluster)
        await cluster.create(mlmodel("iris", namespace=NS, spec=spec()))
        first = await eventually(
            lambda: cluster.get_object("Deployment", NS, "iris"), bool, "Deployment"
        )
        await sim.rollout_done(NS, "iris")
        await ready(cluster)

        await cluster.delete_object("Deployment", NS, "iris")
        restored = await eventually(
            lambda: cluster.get_object("Deployment", NS, "iris"),
            lambda d: d is not None and d["metadata"]["uid"] != first["metadata"]["uid"],
            "the Deployment re-created",
        )
        assert restored["spec"]["template"]["spec"]["containers"][0]["image"].endswith("1.0")

        await cluster.patch_object(
            "Deployment",
            NS,
            "iris",
            [
                {"op": "replace", "path": "/spec/replicas", "value": 3},
                {
                    "op": "replace",
                    "path": "/spec/template/spec/containers/0/image",
                    "value": "evil/miner:1",
                },
            ],
        )
        patched_back = await eventually(
            lambda: cluster.get_object("Deployment", NS, "iris"),
            lambda d: (
                d["spec"]["replicas"] == 1
                and d["spec"]["template"]["spec"]["containers"][0]["image"].endswith("iris:1.0")
            ),
            "the Deployment patched back",
        )
        assert patched_back["metadata"]["uid"] == restored["metadata"]["uid"]
        assert len(await objects(cluster, "Deployment")) == 1


async def test_the_pods_trouble_reaches_the_mlmodel_status_with_the_clusters_words() -> None:
    async with workload_cluster() as cluster, kubernetes_operator_running(cluster, SETTINGS):
        sim = ClusterSimulator(cluster)
        await cluster.create(mlmodel("iris", namespace=NS, spec=spec()))
        await eventually(lambda: cluster.get_object("Deployment", NS, "iris"), bool, "Deployment")

        pulling = 'Back-off pulling image "registry.example.com/iris:1.0"'
        await sim.image_pull_backoff(NS, "iris", pulling)
        failed = await cluster.wait_for(
            NS,
            "iris",
            lambda o: condition(o, "Ready").get("reason") == "ImagePullFailed",
            timeout=TIMEOUT,
        )
        assert status_of(failed)["phase"] == "Failed"
        assert pulling in condition(failed, "Ready")["message"]
        assert condition(failed, "ImageReady")["status"] == "False"

        await sim.unschedulable(NS, "iris", "0/3 nodes are available: 3 Insufficient memory.")
        unschedulable = await cluster.wait_for(
            NS,
            "iris",
            lambda o: condition(o, "Ready").get("reason") == "Unschedulable",
            timeout=TIMEOUT,
        )
        assert "Insufficient memory" in condition(unschedulable, "Ready")["message"]

        await sim.crash_loop(NS, "iris", exit_code=3, restarts=4)
        crashing = await cluster.wait_for(
            NS,
            "iris",
            lambda o: condition(o, "Ready").get("reason") == "CrashLoopBackOff",
            timeout=TIMEOUT,
        )
        assert "exited with code 3" in condition(crashing, "Ready")["message"]
        assert status_of(crashing)["restartCount"] == 4
        wanted = {"ImagePullFailed", "Unschedulable", "CrashLoopBackOff"}
        await until(
            lambda: wanted <= {e.get("reason") for e in cluster.events(namespace=NS, name="iris")},
            what=f"Events {wanted}",
        )
