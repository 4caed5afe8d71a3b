"""The Kubernetes runner on the real control plane: the real deployment, replica-set,
endpoint-slice and garbage-collector controllers, the real scheduler, kwok's nodes.

Nothing here writes what a controller would: pods are created by the ReplicaSet the real
deployment controller made, bound by the scheduler, and moved to Running/Ready (or to the
faults of ``tests/cluster/kwok/stages.yaml``, chosen by image name) by kwok.
"""

from __future__ import annotations

import threading
from typing import Any

import yaml

from tests.cluster.conftest import ClusterTest
from tests.support.control_plane import condition, is_ready, mlmodel, wait_until

RUNNER_ENV = {"RUNNERS_KUBERNETES_ENABLED": "true", "RUNNERS_DOCKER_ENABLED": "false"}
IMAGE = "registry.example.com/iris:1.0"


def spec(image: str = IMAGE, **extra: Any) -> dict[str, Any]:
    container = {"image": image, "ports": [8080], **extra.pop("container", {})}
    return {
        "id": extra.pop("id", "iris:1.0"),
        "runner": "kubernetes",
        "container": container,
        **extra,
    }


def apply(cluster: ClusterTest, name: str, body: dict[str, Any]) -> None:
    obj = mlmodel(name, cluster.namespace, body)
    cluster.plane.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(obj))


def serving(cluster: ClusterTest, **changes: Any) -> dict[str, Any]:
    """The operator started, MLModel ``iris`` applied (``spec(**changes)``) and Ready."""
    cluster.operator(RUNNER_ENV)
    apply(cluster, "iris", spec(**changes))
    return cluster.plane.wait_for("mlmodel", cluster.namespace, "iris", is_ready, timeout=60)


def pods(cluster: ClusterTest, name: str) -> list[dict[str, Any]]:
    return cluster.plane.items("pods", cluster.namespace, f"mlplatform.dev/owner-name={name}")


def test_deployment_replicaset_and_pod_come_from_the_real_controllers_and_the_model_is_ready(
    cluster: ClusterTest,
) -> None:
    ns = cluster.namespace
    obj = serving(cluster)
    status = obj["status"]
    assert status["phase"] == "Running"
    assert status["endpoints"] == [f"http://iris.{ns}.svc:8080"]
    assert status["runner"]["type"] == "kubernetes"

    deployment = cluster.plane.get("deployment", ns, "iris")
    assert deployment is not None
    assert status["runner"]["workloadId"] == deployment["metadata"]["uid"]
    [owner] = deployment["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["uid"]) == ("MLModel", obj["metadata"]["uid"])
    assert deployment["status"]["availableReplicas"] == 1
    # The ReplicaSet and the pod were made by the real controllers and placed on a node.
    [replica_set] = cluster.plane.items("replicasets", ns, "mlplatform.dev/owner-name=iris")
    assert replica_set["metadata"]["ownerReferences"][0]["uid"] == deployment["metadata"]["uid"]
    [pod] = pods(cluster, "iris")
    assert pod["spec"]["nodeName"].startswith("node-")
    assert pod["status"]["phase"] == "Running"
    # The Service's endpoints are the pod's address (the endpoint-slice controller's work).
    slices = wait_until(
        lambda: [
            s
            for s in cluster.plane.items("endpointslices", ns, "kubernetes.io/service-name=iris")
            if s.get("endpoints")
        ],
        timeout=30,
        what="an EndpointSlice with the pod",
    )
    addresses = [a for s in slices for e in s["endpoints"] for a in e["addresses"]]
    assert pod["status"]["podIP"] in addresses


def test_a_spec_change_rolls_out_through_a_new_replicaset_and_ready_never_drops(
    cluster: ClusterTest,
) -> None:
    ns = cluster.namespace
    serving(cluster)
    seen: list[str] = []
    stop = threading.Event()

    def watch_ready() -> None:
        while not stop.is_set():
            obj = cluster.plane.get("mlmodel", ns, "iris")
            if obj is not None:
                seen.append(condition(obj, "Ready").get("status", "?"))

    watcher = threading.Thread(target=watch_ready, daemon=True)
    watcher.start()
    try:
        apply(cluster, "iris", spec(container={"env": [{"name": "COLOUR", "value": "blue"}]}))
        obj = cluster.plane.wait_for(
            "mlmodel", ns, "iris",
            lambda o: is_ready(o)
            and o["status"]["observedGeneration"] == 2
            and condition(o, "Updating").get("status") != "True",
            timeout=60,
        )  # fmt: skip
    finally:
        stop.set()
        watcher.join(10)
    assert "False" not in seen, seen
    deployment = cluster.plane.get("deployment", ns, "iris")
    assert deployment is not None
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    sets = cluster.plane.items("replicasets", ns, "mlplatform.dev/owner-name=iris")
    assert sorted(s["spec"]["replicas"] for s in sets) == [0, 1]
    [pod] = wait_until(
        lambda: (
            [p for p in pods(cluster, "iris") if "deletionTimestamp" not in p["metadata"]]
            if len(pods(cluster, "iris")) == 1
            else None
        ),
        timeout=30,
        what="one pod left",
    )
    env = pod["spec"]["containers"][0].get("env", [])
    assert {"name": "COLOUR", "value": "blue"} in env
    assert obj["status"]["runner"]["workloadId"] == deployment["metadata"]["uid"]


def test_the_pods_troubles_written_by_the_nodes_reach_the_status_with_their_reasons(
    cluster: ClusterTest,
) -> None:
    cluster.operator(RUNNER_ENV)
    ns = cluster.namespace
    cases = {
        "pull": (spec("fault.invalid/image-pull-error:1", id="pull:1"), "ImagePullFailed",
                 "not found"),
        "crash": (spec("fault.invalid/exit-3:1", id="crash:1"), "CrashLoopBackOff", "code 3"),
        "oom": (spec("fault.invalid/oom:1", id="oom:1"), "OOMKilled", ""),
        # Bigger than any node: the real scheduler says why.
        "big": (spec(id="big:1", container={"resources": {"cpu": "64", "memory": "1Gi"}}),
                "Unschedulable", "Insufficient cpu"),
    }  # fmt: skip
    for name, (body, _, _) in cases.items():
        apply(cluster, name, body)
    for name, (_, reason, words) in cases.items():
        obj = cluster.plane.wait_for(
            "mlmodel", ns, name,
            lambda o, r=reason: condition(o, "Ready").get("reason") == r,  # type: ignore[misc]
            timeout=60,
        )  # fmt: skip
        ready = condition(obj, "Ready")
        assert ready["status"] == "False"
        assert words in ready["message"], ready
    crash = cluster.plane.get("mlmodel", ns, "crash")
    assert crash is not None and crash["status"]["restartCount"] == 3


def test_delete_leaves_the_deployment_and_service_to_the_real_garbage_collector(
    cluster: ClusterTest,
) -> None:
    ns = cluster.namespace
    obj = serving(cluster)
    assert not obj["metadata"].get("finalizers")  # nothing to hold up a delete
    cluster.plane.kubectl("delete", "mlmodel", "iris", "-n", ns, "--timeout=30s")
    for kind in ("deployment", "service"):
        cluster.plane.wait_gone(kind, ns, "iris", timeout=60)
    wait_until(lambda: not pods(cluster, "iris"), timeout=60, what="the pods gone")


def test_a_deleted_or_hand_edited_deployment_is_restored(cluster: ClusterTest) -> None:
    ns = cluster.namespace
    serving(cluster)
    first = cluster.plane.get("deployment", ns, "iris")
    assert first is not None
    cluster.plane.kubectl("delete", "deployment", "iris", "-n", ns)
    restored = cluster.plane.wait_for(
        "deployment", ns, "iris",
        lambda d: d["metadata"]["uid"] != first["metadata"]["uid"],
        timeout=60,
    )  # fmt: skip
    assert restored["metadata"]["ownerReferences"][0]["kind"] == "MLModel"
    cluster.plane.wait_for("mlmodel", ns, "iris", is_ready, timeout=60)

    cluster.plane.kubectl("patch", "deployment", "iris", "-n", ns, "--type=json", "-p",
                          '[{"op": "replace", "path": "/spec/template/spec/containers/0/image",'
                          ' "value": "registry.example.com/other:2"}]')  # fmt: skip
    cluster.plane.wait_for(
        "deployment", ns, "iris",
        lambda d: d["spec"]["template"]["spec"]["containers"][0]["image"] == IMAGE,
        timeout=60,
    )  # fmt: skip


def test_the_storage_claim_binds_and_is_kept_after_delete_unless_the_setting_says(
    cluster: ClusterTest,
) -> None:
    cluster.operator({**RUNNER_ENV, "RUNNERS_KUBERNETES_STORAGE_CLASS": "mlplatform-test"})
    ns = cluster.namespace
    cluster.plane.apply([_volume(ns, "iris-storage")])
    apply(cluster, "iris", spec(container={"volumes": ["/storage"]}))
    obj = cluster.plane.wait_for("mlmodel", ns, "iris", is_ready, timeout=60)
    assert obj["status"]["runner"]["claim"] == "iris-storage"
    claim = cluster.plane.wait_for(
        "pvc", ns, "iris-storage", lambda c: c["status"].get("phase") == "Bound", timeout=30
    )
    assert claim["spec"]["volumeName"] == f"pv-{ns}-iris-storage"
    [pod] = pods(cluster, "iris")
    mounted = [v["persistentVolumeClaim"]["claimName"] for v in pod["spec"]["volumes"]
               if "persistentVolumeClaim" in v]  # fmt: skip
    assert mounted == ["iris-storage"]
    cluster.plane.kubectl("delete", "mlmodel", "iris", "-n", ns, "--timeout=30s")
    cluster.plane.wait_gone("deployment", ns, "iris", timeout=60)
    assert cluster.plane.get("pvc", ns, "iris-storage") is not None  # kept: the data outlives
    cluster.plane.kubectl("delete", "pv", f"pv-{ns}-iris-storage", "--wait=false", check=False)


def _volume(namespace: str, claim: str) -> dict[str, Any]:
    """A volume made for the claim (no provisioner runs here), released when the test ends."""
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": f"pv-{namespace}-{claim}"},
        "spec": {
            "capacity": {"storage": "10Gi"},
            "accessModes": ["ReadWriteOnce"],
            "storageClassName": "mlplatform-test",
            "persistentVolumeReclaimPolicy": "Delete",
            "claimRef": {"namespace": namespace, "name": claim},
            "hostPath": {"path": f"/var/lib/mlplatform-test/{namespace}/{claim}"},
        },
    }


def test_a_status_edited_by_hand_is_put_back(cluster: ClusterTest) -> None:
    ns = cluster.namespace
    ready = serving(cluster)
    cluster.plane.kubectl(
        "patch", "mlmodel", "iris", "-n", ns, "--subresource=status", "--type=merge",
        "-p", '{"status": {"phase": "Failed", "endpoints": []}}',
    )  # fmt: skip
    restored = cluster.plane.wait_for(
        "mlmodel", ns, "iris",
        lambda o: o["status"].get("phase") == "Running" and bool(o["status"].get("endpoints")),
        timeout=30,
    )  # fmt: skip
    assert restored["status"]["endpoints"] == ready["status"]["endpoints"]


def test_a_deployment_of_the_models_name_made_by_someone_else_is_a_conflict_naming_its_maker(
    cluster: ClusterTest,
) -> None:
    cluster.operator(RUNNER_ENV)
    ns = cluster.namespace
    cluster.plane.kubectl(
        "create", "deployment", "iris", "-n", ns, "--image=registry.example.com/other:1"
    )
    apply(cluster, "iris", spec())
    refused = cluster.plane.wait_for(
        "mlmodel", ns, "iris",
        lambda o: condition(o, "Ready").get("reason") == "NameConflict", timeout=60,
    )  # fmt: skip
    message = condition(refused, "Ready")["message"]
    assert f"Deployment {ns}/iris exists" in message and "kubectl-create" in message, message
    stranger = cluster.plane.get("deployment", ns, "iris")
    assert stranger is not None
    assert stranger["spec"]["template"]["spec"]["containers"][0]["image"].endswith("other:1")
