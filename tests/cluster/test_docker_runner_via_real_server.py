"""The Docker runner driven through the real API server: ``kubectl`` in, containers out.

The operator runs as a process with its ServiceAccount's token, so every call it makes
(watch, finalizer patches, the status subresource, Events) passes the real RBAC authorizer.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.cluster.conftest import ClusterTest, docker_runner_env
from tests.support.control_plane import is_ready, mlmodel, wait_until
from tests.support.docker_env import DockerEnv
from tests.support.images import TestImages

pytestmark = pytest.mark.docker
FINALIZER = "mlplatform.dev/finalizer"


def spec_for(env: DockerEnv, images: TestImages, name: str, **extra: Any) -> dict[str, Any]:
    container = {"image": images.http, "ports": [8080], **extra.pop("container", {})}
    return {"id": env.model_id(name), "container": container, **extra}


def containers(env: DockerEnv, model_id: str) -> list[Any]:
    return env.client.containers.list(
        all=True, ignore_removed=True, filters={"label": f"mlplatform.dev/model-id={model_id}"}
    )


def apply(cluster: ClusterTest, obj: dict[str, Any]) -> None:
    cluster.plane.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(obj))


def test_a_model_applied_with_kubectl_runs_and_its_status_comes_through_the_subresource(
    cluster: ClusterTest, docker_env: DockerEnv, test_images: TestImages
) -> None:
    cluster.operator(docker_runner_env(docker_env))
    spec = spec_for(docker_env, test_images, "apply")
    apply(cluster, mlmodel("iris", cluster.namespace, spec))
    obj = cluster.plane.wait_for("mlmodel", cluster.namespace, "iris", is_ready, timeout=60)
    status = obj["status"]
    assert status["phase"] == "Running"
    assert status["observedGeneration"] == 1
    assert status["endpoints"][0] == f"http://iris.{cluster.namespace}:8080"
    assert FINALIZER in obj["metadata"]["finalizers"]
    (container,) = containers(docker_env, spec["id"])
    assert container.status == "running"
    assert container.id == status["runner"]["containerId"]
    assert container.labels["mlplatform.dev/owner-uid"] == obj["metadata"]["uid"]
    # `kubectl get` shows the printer columns the CRD declares, from the real status.
    table = cluster.plane.kubectl("get", "mlpm", "iris", "-n", cluster.namespace).stdout
    assert "Running" in table and spec["id"] in table, table
    wait_until(
        lambda: any(
            e["reason"] == "Created" for e in cluster.plane.events(cluster.namespace, "iris")
        ),
        timeout=30,
        what="a Created event",
    )


def test_spec_change_suspend_resume_and_delete_with_the_finalizer(
    cluster: ClusterTest, docker_env: DockerEnv, test_images: TestImages
) -> None:
    cluster.operator(docker_runner_env(docker_env))
    ns = cluster.namespace
    spec = spec_for(docker_env, test_images, "life")
    apply(cluster, mlmodel("life", ns, spec))
    first = cluster.plane.wait_for("mlmodel", ns, "life", is_ready, timeout=60)
    old_id = first["status"]["runner"]["containerId"]

    spec["container"]["env"] = [{"name": "COLOUR", "value": "blue"}]
    apply(cluster, mlmodel("life", ns, spec))
    changed = cluster.plane.wait_for(
        "mlmodel", ns, "life",
        lambda o: is_ready(o) and o["status"]["runner"]["containerId"] != old_id,
        timeout=60,
    )  # fmt: skip
    assert changed["status"]["observedGeneration"] == 2
    (container,) = containers(docker_env, spec["id"])
    assert "COLOUR=blue" in container.attrs["Config"]["Env"]

    cluster.plane.kubectl("patch", "mlmodel", "life", "-n", ns, "--type=merge",
                          "-p", '{"spec": {"suspend": true}}')  # fmt: skip
    cluster.plane.wait_for(
        "mlmodel", ns, "life", lambda o: o.get("status", {}).get("phase") == "Stopped"
    )
    wait_until(lambda: not containers(docker_env, spec["id"]), timeout=30, what="no container")
    cluster.plane.kubectl("patch", "mlmodel", "life", "-n", ns, "--type=merge",
                          "-p", '{"spec": {"suspend": false}}')  # fmt: skip
    cluster.plane.wait_for("mlmodel", ns, "life", is_ready, timeout=60)

    cluster.plane.kubectl("delete", "mlmodel", "life", "-n", ns, "--timeout=60s")
    assert cluster.plane.get("mlmodel", ns, "life") is None
    assert not containers(docker_env, spec["id"])


def test_a_container_removed_by_hand_is_recreated_and_a_restarted_operator_adopts_it(
    cluster: ClusterTest, docker_env: DockerEnv, test_images: TestImages
) -> None:
    env = docker_runner_env(docker_env)
    first = cluster.operator(env)
    ns = cluster.namespace
    spec = spec_for(docker_env, test_images, "repair")
    apply(cluster, mlmodel("repair", ns, spec))
    obj = cluster.plane.wait_for("mlmodel", ns, "repair", is_ready, timeout=60)
    (container,) = containers(docker_env, spec["id"])
    container.remove(force=True)
    repaired = cluster.plane.wait_for(
        "mlmodel", ns, "repair",
        lambda o: is_ready(o) and o["status"]["runner"]["containerId"] != container.id,
        timeout=60,
    )  # fmt: skip
    assert repaired["status"]["restartCount"] >= obj["status"]["restartCount"]

    assert first.stop() == 0
    (kept,) = containers(docker_env, spec["id"])
    cluster.operator(env)
    # Adopted: the same container serves, no second one was made, Ready stays True.
    cluster.plane.wait_for("mlmodel", ns, "repair", is_ready, timeout=60)
    (adopted,) = containers(docker_env, spec["id"])
    assert adopted.id == kept.id


def test_the_webhook_on_the_real_server_refuses_a_second_model_with_a_held_id(
    cluster: ClusterTest, docker_env: DockerEnv, test_images: TestImages
) -> None:
    cluster.operator(docker_runner_env(docker_env), args=cluster.webhook())
    ns = cluster.namespace
    spec = spec_for(docker_env, test_images, "held")
    apply(cluster, mlmodel("holder", ns, spec))
    cluster.plane.wait_for("mlmodel", ns, "holder", is_ready, timeout=60)
    refused = cluster.plane.kubectl(
        "apply", "-f", "-", stdin=yaml.safe_dump(mlmodel("taker", ns, spec)), check=False
    )
    assert refused.returncode != 0
    assert "spec.id" in refused.stderr and f"{ns}/holder" in refused.stderr, refused.stderr
    assert cluster.plane.get("mlmodel", ns, "taker") is None
    assert len(containers(docker_env, spec["id"])) == 1
