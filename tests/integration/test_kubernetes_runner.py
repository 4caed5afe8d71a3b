"""The Kubernetes runner against the KMock emulator, with a simulator playing the cluster's part.

The runner's calls are synchronous (the official client), the emulator runs on the test's
event loop: every runner call goes through ``asyncio.to_thread``.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import kubernetes
import pytest
import pytest_asyncio

from mlplatform import errors
from mlplatform.config import Settings
from mlplatform.models.spec import MLModelSpec
from mlplatform.models.status import Reason
from mlplatform.runners import base
from mlplatform.runners.kubernetes.runner import KubernetesRunner
from tests.support.kube_cluster import until
from tests.support.kube_workloads import ClusterSimulator, WorkloadCluster, workload_cluster

T = TypeVar("T")
NS = "models"
SETTINGS = Settings.load({"RUNNERS_KUBERNETES_MODELS_CLAIM": "weights"})


@dataclass
class Env:
    cluster: WorkloadCluster
    sim: ClusterSimulator
    runner: KubernetesRunner

    async def call(self, method: Callable[..., T], *args: Any) -> T:
        return await asyncio.to_thread(method, *args)

    def new_runner(self, settings: Settings = SETTINGS) -> KubernetesRunner:
        return KubernetesRunner(settings, _client(self.cluster))


def _client(cluster: WorkloadCluster) -> Any:
    configuration = kubernetes.client.Configuration()
    configuration.host = cluster.url
    return kubernetes.client.ApiClient(configuration)


@pytest_asyncio.fixture
async def env() -> AsyncIterator[Env]:
    async with workload_cluster() as cluster:
        client = _client(cluster)
        yield Env(cluster, ClusterSimulator(cluster), KubernetesRunner(SETTINGS, client))
        client.close()


# A Service of the model's name that someone else made.
STRANGER = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "iris", "namespace": NS, "labels": {"app": "someone-else"}},
    "spec": {"ports": [{"port": 80}]},
}


def workload(name: str = "iris", *, uid: str = "uid-iris-1", **changes: Any) -> base.Workload:
    container: dict[str, Any] = {
        "image": "registry.example.com/iris:1.0",
        "ports": [8080],
        "volumes": ["/storage", "/models"],
    }
    container.update(changes.pop("container", {}))
    spec = MLModelSpec.model_validate(
        {"id": "iris:1.0", "runner": "kubernetes", "container": container, **changes}
    )
    return base.Workload(owner=base.Owner(NS, name, uid), spec=spec)


async def test_apply_creates_the_deployment_service_and_claim(env: Env) -> None:
    applied = await env.call(env.runner.apply, workload())
    assert applied.action == base.Action.CREATED
    deployment = await env.cluster.get_object("Deployment", NS, "iris")
    service = await env.cluster.get_object("Service", NS, "iris")
    claim = await env.cluster.get_object("PersistentVolumeClaim", NS, "iris-storage")
    assert deployment is not None and service is not None and claim is not None
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"]["rollingUpdate"] == {"maxUnavailable": 0, "maxSurge": 1}
    pod = deployment["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert [v["name"] for v in pod["volumes"]] == ["storage", "models"]
    assert [p["port"] for p in service["spec"]["ports"]] == [8080]
    for obj in (deployment, service):
        assert obj["metadata"]["ownerReferences"][0]["uid"] == "uid-iris-1"
        assert obj["metadata"]["labels"]["mlplatform.dev/model-id"] == "iris_1.0"
        assert obj["metadata"]["annotations"]["mlplatform.dev/model-id"] == "iris:1.0"
    # Nothing runs yet: no pod has been scheduled.
    assert applied.state == base.State.STARTING
    assert applied.ready is False
    assert applied.workload_id == deployment["metadata"]["uid"]
    assert applied.details["claim"] == "iris-storage"


async def test_a_second_apply_of_the_same_spec_writes_nothing(env: Env) -> None:
    await env.call(env.runner.apply, workload())
    before = await env.cluster.get_object("Deployment", NS, "iris")
    again = await env.call(env.runner.apply, workload())
    after = await env.cluster.get_object("Deployment", NS, "iris")
    assert again.action == base.Action.NONE
    assert before is not None and after is not None
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]


class CountingClient(kubernetes.client.ApiClient):
    """The official client, recording each request's method and path."""

    def __init__(self, configuration: Any) -> None:
        super().__init__(configuration)
        self.calls: list[str] = []

    def call_api(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        path = url.split("?", maxsplit=1)[0].rsplit(f"/namespaces/{NS}/", maxsplit=1)[-1]
        self.calls.append(f"{method} {path}")
        return super().call_api(method, url, *args, **kwargs)


@contextlib.asynccontextmanager
async def watching(runner: KubernetesRunner) -> AsyncIterator[list[base.RunnerEvent]]:
    """The runner's event stream open and read in a thread (as the drift watcher does)."""
    stream = await asyncio.to_thread(runner.events)
    seen: list[base.RunnerEvent] = []
    ended = threading.Event()

    def consume() -> None:
        try:
            seen.extend(stream)
        finally:
            ended.set()

    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    try:
        yield seen
    finally:
        await asyncio.to_thread(stream.close)
        await until(ended.is_set, timeout=10, what="the stream to end on close()")
        thread.join(5)


async def test_with_its_watches_running_the_runner_reads_from_their_cache(env: Env) -> None:
    configuration = kubernetes.client.Configuration()
    configuration.host = env.cluster.url
    client = CountingClient(configuration)
    runner = KubernetesRunner(SETTINGS, client)
    plain = workload(container={"volumes": []})

    def step() -> tuple[base.RunnerStatus, base.RunnerStatus]:
        return runner.observe(plain), runner.apply(plain)

    async with watching(runner) as seen:
        client.calls.clear()  # the watches' listings
        observed, applied = await asyncio.to_thread(step)
        assert observed.state == base.State.MISSING
        assert applied.action == base.Action.CREATED
        assert [c for c in client.calls if "watch" not in c] == [
            "POST deployments",
            "POST services",
        ]
        # In sync: no request at all, however soon after the write.
        client.calls.clear()
        again = await env.call(runner.apply, plain)
        assert again.action == base.Action.NONE
        assert [c for c in client.calls if "watch" not in c] == []
        # A change the cluster makes reaches the cache through the watch.
        await env.sim.rollout_done(NS, "iris")
        await until(
            lambda: (
                any(e.action == "deployment-modified" for e in seen)
                and any(e.action == "pod-added" for e in seen)
            ),
            what="the Deployment's and the pod's events",
        )
        client.calls.clear()
        ready = await env.call(runner.observe, plain)
        deadline = asyncio.get_running_loop().time() + 10
        while not ready.ready and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)  # the simulator's later writes are on their way
            ready = await env.call(runner.observe, plain)
        assert ready.ready is True and ready.state == base.State.RUNNING
        assert [c for c in client.calls if "watch" not in c] == []
        # A deleted Deployment is missing from the cache once its event came: created again.
        await env.cluster.delete_object("Deployment", NS, "iris")
        await until(
            lambda: any(e.action == "deployment-deleted" for e in seen), what="the deletion"
        )
        restored = await env.call(runner.apply, plain)
        assert restored.action == base.Action.CREATED
        assert await env.cluster.get_object("Deployment", NS, "iris") is not None
    # The watches ended: the runner asks the API server again.
    client.calls.clear()
    await env.call(runner.observe, plain)
    assert client.calls[:2] == ["GET deployments/iris", "GET services/iris"]
    client.close()  # type: ignore[no-untyped-call]


async def test_an_object_of_the_name_that_is_not_in_the_cache_is_still_a_conflict(
    env: Env,
) -> None:
    runner = env.new_runner()
    async with watching(runner):
        await env.cluster.create_object("Service", STRANGER)
        # The watches select managed objects only: the create answers 409, the runner reads.
        with pytest.raises(errors.ContainerConflict, match="not managed by mlplatform"):
            await env.call(runner.apply, workload())
    service = await env.cluster.get_object("Service", NS, "iris")
    assert service is not None and service["metadata"]["labels"] == {"app": "someone-else"}


async def test_rollout_done_is_ready_with_the_service_endpoint(env: Env) -> None:
    await env.call(env.runner.apply, workload(container={"ports": [8080, 9090]}))
    await env.sim.rollout_done(NS, "iris", restarts=2)
    seen = await env.call(env.runner.observe, workload(container={"ports": [8080, 9090]}))
    assert seen.state == base.State.RUNNING
    assert seen.ready is True
    assert seen.problem is None
    assert seen.endpoints == ["http://iris.models.svc:8080", "http://iris.models.svc:9090"]
    assert seen.restart_count == 2
    assert seen.details["replicas"] == {"desired": 1, "updated": 1, "ready": 1, "available": 1}
    probe = await env.call(env.runner.probe, workload(), seen)
    assert probe.ok


async def test_image_pull_back_off_is_image_pull_failed_with_the_kubelets_message(
    env: Env,
) -> None:
    await env.call(env.runner.apply, workload())
    message = 'Back-off pulling image "registry.example.com/iris:1.0": not found'
    await env.sim.image_pull_backoff(NS, "iris", message)
    seen = await env.call(env.runner.observe, workload())
    assert seen.ready is False
    assert seen.state == base.State.STARTING
    assert seen.problem is not None
    assert seen.problem.reason == Reason.IMAGE_PULL_FAILED
    assert message in seen.problem.message
    assert seen.endpoints == []


async def test_a_crash_loop_reports_the_exit_code_and_the_kubelets_restart_count(
    env: Env,
) -> None:
    await env.call(env.runner.apply, workload())
    await env.sim.crash_loop(NS, "iris", exit_code=3, restarts=4)
    seen = await env.call(env.runner.observe, workload())
    assert seen.problem is not None and seen.problem.reason == Reason.CRASH_LOOP
    assert "code 3" in seen.problem.message
    assert seen.termination is not None and seen.termination.exit_code == 3
    assert seen.restart_count == 4
    assert seen.ready is False


async def test_an_oom_kill_is_reported_as_such(env: Env) -> None:
    await env.call(env.runner.apply, workload())
    await env.sim.oom_killed(NS, "iris")
    seen = await env.call(env.runner.observe, workload())
    assert seen.problem is not None and seen.problem.reason == Reason.OOM_KILLED
    assert seen.termination is not None and seen.termination.oom_killed
    assert seen.termination.exit_code == 137


async def test_an_unschedulable_pod_carries_the_schedulers_message(env: Env) -> None:
    await env.call(env.runner.apply, workload())
    message = "0/3 nodes are available: 3 Insufficient memory."
    await env.sim.unschedulable(NS, "iris", message)
    seen = await env.call(env.runner.observe, workload())
    assert seen.problem is not None and seen.problem.reason == Reason.UNSCHEDULABLE
    assert message in seen.problem.message


async def test_a_progress_deadline_exceeded_is_a_failed_rollout(env: Env) -> None:
    await env.call(env.runner.apply, workload())
    await env.sim.progress_deadline_exceeded(NS, "iris")
    seen = await env.call(env.runner.observe, workload())
    assert seen.problem is not None
    assert seen.problem.reason == Reason.PROGRESS_DEADLINE_EXCEEDED
    assert "timed out progressing" in seen.problem.message


async def test_a_spec_change_rolls_out_a_new_revision_while_the_old_pod_serves(env: Env) -> None:
    await env.call(env.runner.apply, workload())
    await env.sim.rollout_done(NS, "iris")
    first = await env.call(env.runner.observe, workload())
    assert first.ready is True

    changed = workload(container={"image": "registry.example.com/iris:1.1"})
    applied = await env.call(env.runner.apply, changed)
    assert applied.action == base.Action.REPLACED
    # The status describes the serving pod (its revision); the new one is the rollout's.
    assert applied.revision == first.revision
    assert applied.rollout is not None and applied.rollout.revision != first.revision
    assert applied.rollout.waiting is None
    deployment = await env.sim.deployment(NS, "iris")
    assert deployment["metadata"]["generation"] == 2
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"].endswith("iris:1.1")
    # The controller has not seen generation 2 yet: the old pod serves, the model stays Ready.
    assert applied.ready is True
    assert applied.state == base.State.RUNNING
    assert applied.endpoints == ["http://iris.models.svc:8080"]
    assert "generation 2" in applied.message

    await env.sim.observe_generation(NS, "iris")
    rolling = await env.call(env.runner.observe, changed)
    assert rolling.ready is True and rolling.state == base.State.RUNNING
    assert "rolling out" in rolling.message and "previous pod keeps serving" in rolling.message

    assert rolling.rollout is not None and rolling.rollout.message == rolling.message

    await env.sim.rollout_done(NS, "iris")
    done = await env.call(env.runner.observe, changed)
    assert done.ready is True and done.rollout is None
    assert done.revision == applied.rollout.revision
    assert len(await env.sim.pods(NS, "iris")) == 1


async def test_a_new_revision_that_crash_loops_leaves_the_old_pod_serving_and_ready(
    env: Env,
) -> None:
    await env.call(env.runner.apply, workload())
    await env.sim.rollout_done(NS, "iris")
    broken = workload(container={"image": "registry.example.com/iris:broken"})
    await env.call(env.runner.apply, broken)
    await env.sim.crash_loop(NS, "iris", exit_code=2)
    seen = await env.call(env.runner.observe, broken)
    assert seen.ready is True and seen.state == base.State.RUNNING
    assert seen.problem is None  # the update's trouble, not the serving model's
    assert seen.rollout is not None and seen.rollout.waiting is not None
    assert seen.rollout.waiting.reason == Reason.CRASH_LOOP
    assert seen.rollout.termination is None  # the kubelet retries: nothing for the core to count
    assert seen.restart_count == 0  # the serving pod's, not the crashing one's
    assert "exited with code 2" in seen.message
    assert seen.endpoints == ["http://iris.models.svc:8080"]
    # Without the previous pod (it was never there: a first rollout) the same is a failure.
    await env.call(env.runner.apply, workload("fresh", uid="uid-fresh-1"))
    await env.sim.crash_loop(NS, "fresh", exit_code=2)
    fresh = await env.call(env.runner.observe, workload("fresh", uid="uid-fresh-1"))
    assert fresh.ready is False
    assert fresh.problem is not None and fresh.problem.reason == Reason.CRASH_LOOP


async def test_a_patch_from_a_stale_copy_never_writes_over_an_object_made_again(
    env: Env,
) -> None:
    runner = env.new_runner()
    async with watching(runner):
        await env.call(runner.apply, workload())
        ours = await env.cluster.get_object("Deployment", NS, "iris")
        assert ours is not None
        # Someone deletes our Deployment and makes one of their own under its name; the
        # runner's cache has not heard yet (its copy is put back as it was).
        await env.cluster.delete_object("Deployment", NS, "iris")
        stranger = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": "iris",
                "namespace": NS,
                "labels": {"app": "someone-else"},
                "annotations": {"owner": "someone-else"},
            },
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "someone-else"}}},
        }
        await env.cluster.create_object("Deployment", stranger)
        await until(
            lambda: runner._cache.get("Deployment", NS, "iris") is None,
            what="the deletion's event",
        )
        runner._cache.written("Deployment", ours, None)  # the stale copy
        # A spec change: the patch computed from the stale copy is refused by the uid it
        # carries, the runner reads the API server and finds someone else's Deployment.
        with pytest.raises(errors.ContainerConflict, match="not managed by mlplatform"):
            await env.call(runner.apply, workload(container={"ports": [8080, 9090]}))
    theirs = await env.cluster.get_object("Deployment", NS, "iris")
    assert theirs is not None
    assert theirs["metadata"]["labels"] == {"app": "someone-else"}
    assert theirs["spec"]["replicas"] == 3


async def test_a_larger_storage_setting_grows_the_claim_a_smaller_one_leaves_it(env: Env) -> None:
    await env.call(env.runner.apply, workload())

    async def size() -> str:
        claim = await env.cluster.get_object("PersistentVolumeClaim", NS, "iris-storage")
        assert claim is not None
        return str(claim["spec"]["resources"]["requests"]["storage"])

    assert await size() == "1Gi"
    bigger = env.new_runner(
        Settings.load(
            {"RUNNERS_KUBERNETES_MODELS_CLAIM": "weights", "RUNNERS_KUBERNETES_STORAGE_SIZE": "2Gi"}
        )
    )
    await env.call(bigger.apply, workload())
    assert await size() == "2Gi"
    smaller = env.new_runner(
        Settings.load(
            {
                "RUNNERS_KUBERNETES_MODELS_CLAIM": "weights",
                "RUNNERS_KUBERNETES_STORAGE_SIZE": "512Mi",
            }
        )
    )
    await env.call(smaller.apply, workload())
    assert await size() == "2Gi"  # a claim never shrinks


async def test_a_refused_claim_growth_is_asked_once_per_claim_version_and_the_model_runs(
    env: Env,
) -> None:
    await env.call(env.runner.apply, workload())
    runner = env.new_runner(
        Settings.load(
            {"RUNNERS_KUBERNETES_MODELS_CLAIM": "weights", "RUNNERS_KUBERNETES_STORAGE_SIZE": "2Gi"}
        )
    )
    asked: list[str] = []
    patch = runner._api.patch

    def refusing(kind: str, namespace: str, name: str, ops: list[Any]) -> dict[str, Any]:
        # As an API server whose StorageClass does not allow expansion answers.
        if any(op.get("path") == "/spec/resources/requests/storage" for op in ops):
            asked.append(name)
            raise errors.StartFailed("only dynamically provisioned pvc can be resized")
        return patch(kind, namespace, name, ops)

    runner._api.patch = refusing  # type: ignore[method-assign]
    for _ in range(3):
        applied = await env.call(runner.apply, workload())
        assert applied.state != base.State.MISSING
    assert asked == ["iris-storage"]
    # The claim changed (a new version): the size is asked for again.
    await env.cluster.patch_object(
        "PersistentVolumeClaim", NS, "iris-storage", {"metadata": {"labels": {"x": "y"}}}
    )
    await env.call(runner.apply, workload())
    assert asked == ["iris-storage", "iris-storage"]


async def test_suspend_scales_to_zero_and_keeps_the_service_and_the_claim(env: Env) -> None:
    await env.call(env.runner.apply, workload())
    await env.sim.rollout_done(NS, "iris")
    applied = await env.call(env.runner.apply, workload(suspend=True))
    assert applied.action == base.Action.REPLACED
    deployment = await env.sim.deployment(NS, "iris")
    assert deployment["spec"]["replicas"] == 0
    await env.sim.scale_down(NS, "iris")
    seen = await env.call(env.runner.observe, workload(suspend=True))
    assert seen.state == base.State.REMOVED
    assert seen.ready is False
    assert await env.cluster.get_object("Service", NS, "iris") is not None
    assert await env.cluster.get_object("PersistentVolumeClaim", NS, "iris-storage") is not None


async def test_delete_removes_deployment_and_service_and_keeps_the_claim(env: Env) -> None:
    await env.call(env.runner.apply, workload())
    removed = await env.call(env.runner.delete, workload())
    assert removed.action == base.Action.REMOVED
    assert await env.cluster.get_object("Deployment", NS, "iris") is None
    assert await env.cluster.get_object("Service", NS, "iris") is None
    assert await env.cluster.get_object("PersistentVolumeClaim", NS, "iris-storage") is not None
    again = await env.call(env.runner.delete, workload())
    assert again.action == base.Action.NONE


async def test_delete_takes_the_claim_when_the_settings_say_so(env: Env) -> None:
    runner = env.new_runner(
        Settings.load(
            {"RUNNERS_KUBERNETES_MODELS_CLAIM": "weights", "RUNNERS_KUBERNETES_DELETE_CLAIM": "1"}
        )
    )
    await env.call(runner.apply, workload())
    claim = await env.cluster.get_object("PersistentVolumeClaim", NS, "iris-storage")
    assert claim is not None and claim["metadata"]["ownerReferences"][0]["kind"] == "MLModel"
    await env.call(runner.delete, workload())
    assert await env.cluster.get_object("PersistentVolumeClaim", NS, "iris-storage") is None


async def test_a_new_runner_adopts_what_it_finds_without_duplicates(env: Env) -> None:
    await env.call(env.runner.apply, workload())
    await env.sim.rollout_done(NS, "iris")
    restarted = env.new_runner()
    owned = await env.call(restarted.list_owned)
    assert [(o.owner.key, o.model_id, o.state) for o in owned] == [
        ("models/iris", "iris:1.0", base.State.RUNNING)
    ]
    applied = await env.call(restarted.apply, workload())
    assert applied.action == base.Action.NONE
    assert applied.ready is True
    assert len(await env.cluster.objects("Deployment", NS)) == 1
    assert len(await env.cluster.objects("Service", NS)) == 1
    assert len(await env.cluster.objects("PersistentVolumeClaim", NS)) == 1


async def test_a_deleted_deployment_is_restored(env: Env) -> None:
    await env.call(env.runner.apply, workload())
    await env.cluster.delete_object("Deployment", NS, "iris")
    restored = await env.call(env.runner.apply, workload())
    assert restored.action == base.Action.CREATED
    assert await env.cluster.get_object("Deployment", NS, "iris") is not None


async def test_a_hand_edited_deployment_and_service_are_patched_back(env: Env) -> None:
    await env.call(env.runner.apply, workload())
    await env.cluster.patch_object(
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
            {"op": "remove", "path": "/metadata/labels/mlplatform.dev~1model-id"},
        ],
    )
    await env.cluster.patch_object("Service", NS, "iris", {"spec": {"ports": []}})
    restored = await env.call(env.runner.apply, workload())
    assert restored.action == base.Action.REPLACED
    deployment = await env.sim.deployment(NS, "iris")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"].endswith("iris:1.0")
    assert deployment["metadata"]["labels"]["mlplatform.dev/model-id"] == "iris_1.0"
    service = await env.cluster.get_object("Service", NS, "iris")
    assert service is not None and [p["port"] for p in service["spec"]["ports"]] == [8080]


async def test_an_object_that_is_not_ours_is_a_conflict_and_left_alone(env: Env) -> None:
    await env.cluster.create_object("Service", STRANGER)
    with pytest.raises(errors.ContainerConflict, match="not managed by mlplatform"):
        await env.call(env.runner.apply, workload())
    service = await env.cluster.get_object("Service", NS, "iris")
    assert service is not None and service["metadata"]["labels"] == {"app": "someone-else"}


async def test_data_without_a_configured_claim_creates_nothing(env: Env) -> None:
    with pytest.raises(errors.StorageNotConfigured, match="RUNNERS_KUBERNETES_DATA_CLAIM"):
        await env.call(env.runner.apply, workload(container={"volumes": ["/data"]}))
    assert await env.cluster.objects("Deployment", NS) == []
    assert await env.cluster.objects("PersistentVolumeClaim", NS) == []


async def test_remove_owned_removes_that_orphan_only(env: Env) -> None:
    await env.call(env.runner.apply, workload())
    await env.call(env.runner.apply, workload("other", uid="uid-other"))
    owned = {o.owner.name: o for o in await env.call(env.runner.list_owned)}
    assert set(owned) == {"iris", "other"}
    await env.call(env.runner.remove_owned, owned["other"])
    assert await env.cluster.get_object("Deployment", NS, "other") is None
    assert await env.cluster.get_object("Service", NS, "other") is None
    assert await env.cluster.get_object("Deployment", NS, "iris") is not None


async def test_events_name_the_owner_of_each_changed_object_and_close_ends_them(
    env: Env,
) -> None:
    stream = await env.call(env.runner.events)
    seen: list[base.RunnerEvent] = []
    failures: list[Exception] = []
    ended = threading.Event()

    def consume() -> None:
        try:
            for event in stream:
                seen.append(event)
        except Exception as error:
            failures.append(error)
        ended.set()

    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    try:
        await env.call(env.runner.apply, workload())
        await env.sim.observe_generation(NS, "iris")  # the Deployment controller writes
        await until(
            lambda: any(e.action == "deployment-modified" for e in seen),
            what="deployment-modified",
        )
        await env.sim.crash_loop(NS, "iris", exit_code=1)
        await until(lambda: any(e.action.startswith("pod-") for e in seen), what="a pod event")
        await env.cluster.delete_object("Service", NS, "iris")
        await until(
            lambda: any(e.action == "service-deleted" for e in seen), what="service-deleted"
        )
        assert {e.owner for e in seen} == {base.Owner(NS, "iris", "uid-iris-1")}
        assert {e.model_id for e in seen} == {"iris:1.0"}
        # The runner's own creates are not news (each watch delivers in order, so they
        # would have come before the changes above).
        actions = [e.action for e in seen]
        assert "deployment-added" not in actions and "service-added" not in actions
    finally:
        await env.call(stream.close)
        await until(ended.is_set, timeout=10, what="the stream to end on close()")
        thread.join(5)
    assert failures == []


async def test_an_unreachable_api_is_runner_unavailable() -> None:
    configuration = kubernetes.client.Configuration()
    configuration.host = "http://127.0.0.1:9"
    runner = KubernetesRunner(
        Settings.load({"RUNNERS_KUBERNETES_TIMEOUT": "2"}),
        kubernetes.client.ApiClient(configuration),
    )
    with pytest.raises(errors.RunnerUnavailable):
        await asyncio.to_thread(runner.observe, workload(container={"volumes": []}))
    with pytest.raises(errors.RunnerUnavailable):
        await asyncio.to_thread(runner.events)
