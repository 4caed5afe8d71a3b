"""``status.runner`` in the CRD: the common fields typed, each runner's own keys kept."""

from __future__ import annotations

from typing import Any

from mlplatform.models.status import Failure, MLModelStatus, Reason, RunnerDetails
from tests.support import cel_harness


def mlmodel(status: MLModelStatus) -> dict[str, Any]:
    return {
        "apiVersion": "mlplatform.dev/v1alpha1",
        "kind": "MLModel",
        "metadata": {"name": "iris", "namespace": "models"},
        "spec": {"id": "iris:1.0", "container": {"image": "iris:1", "ports": [8080]}},
        "status": status.to_wire(),
    }


def docker_status() -> MLModelStatus:
    runner = RunnerDetails.model_validate(
        {
            "type": "docker",
            "workloadId": "3f2a",
            "revision": "9c1e",
            "startedAt": "2026-12-02T10:00:00Z",
            "containerId": "3f2a",
            "containerName": "iris-1.0",
            "imageId": "sha256:77",
            "hostPorts": {"8080": 7000},
        }
    )
    failure = Failure(reason=Reason.OOM_KILLED, time="2026-12-02T09:59:00Z", workload_id="1b")
    return MLModelStatus(runner=runner, last_failure=failure)


def test_a_docker_status_with_its_own_runner_keys_is_accepted() -> None:
    obj = mlmodel(docker_status())
    assert obj["status"]["runner"]["hostPorts"] == {"8080": 7000}
    assert cel_harness.validate(obj) == []


def test_another_runners_keys_are_accepted_too() -> None:
    status = MLModelStatus(
        runner=RunnerDetails.model_validate(
            {"type": "kubernetes", "workloadId": "uid-1", "deployment": "iris-1-0", "replicas": 1}
        )
    )
    assert cel_harness.validate(mlmodel(status)) == []


def test_unknown_keys_outside_status_runner_are_still_refused() -> None:
    obj = mlmodel(docker_status())
    obj["status"]["lastFailure"]["podName"] = "x"
    assert any("podName" in problem for problem in cel_harness.validate(obj))
