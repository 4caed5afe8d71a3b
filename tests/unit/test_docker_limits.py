"""Every Docker model has limits: the spec's, else the settings' defaults, never above a cap."""

from __future__ import annotations

from typing import Any

import pytest

from mlplatform import errors
from mlplatform.config import Settings
from mlplatform.models.spec import MLModelSpec
from mlplatform.runners import base
from mlplatform.runners.docker_plan import plan, resource_limits


def workload(**container: Any) -> base.Workload:
    spec = MLModelSpec.model_validate(
        {"id": "iris:1", "container": {"image": "x/iris:1", "ports": [8080], **container}}
    )
    return base.Workload(owner=base.Owner("models", "iris", "uid-1"), spec=spec)


def test_a_model_without_resources_gets_the_default_limits_pids_and_a_rotated_log() -> None:
    settings = Settings.load(environ={})
    limits = resource_limits(workload(), settings)
    assert limits["mem_limit"] == limits["memswap_limit"] == 2 * 2**30
    assert limits["nano_cpus"] == 2 * 10**9
    assert limits["pids_limit"] == 1024
    assert limits["log_config"] == {
        "type": "json-file",
        "config": {"max-size": "10m", "max-file": "3"},
    }


def test_the_specs_own_resources_win_over_the_defaults() -> None:
    settings = Settings.load(environ={"RUNNERS_DOCKER_DEFAULT_MEMORY": "64Mi"})
    limits = resource_limits(workload(resources={"cpu": "500m", "memory": "1Gi"}), settings)
    assert limits["mem_limit"] == 2**30 and limits["nano_cpus"] == 5 * 10**8


@pytest.mark.parametrize(
    ("resources", "words"),
    [
        ({"memory": "8Gi"}, "spec.container.resources.memory 8Gi is more than this runner "
                            "allows (RUNNERS_DOCKER_MAX_MEMORY=4Gi)"),
        ({"cpu": "3"}, "spec.container.resources.cpu 3 is more than this runner allows "
                       "(RUNNERS_DOCKER_MAX_CPU=2)"),
    ],
)  # fmt: skip
def test_a_spec_above_the_administrators_cap_is_refused_naming_the_setting(
    resources: dict[str, str], words: str
) -> None:
    settings = Settings.load(
        environ={"RUNNERS_DOCKER_MAX_MEMORY": "4Gi", "RUNNERS_DOCKER_MAX_CPU": "2"}
    )
    with pytest.raises(errors.OverLimit) as refused:
        plan(workload(resources=resources), settings, debug_base=None)
    assert str(refused.value) == words
    assert not refused.value.retryable


def test_a_change_of_the_defaults_is_a_change_of_the_container() -> None:
    before = plan(workload(), Settings.load(environ={}), debug_base=None)
    after = plan(
        workload(), Settings.load(environ={"RUNNERS_DOCKER_PIDS_LIMIT": "64"}), debug_base=None
    )
    assert before.spec_hash != after.spec_hash
    assert after.create_args["pids_limit"] == 64
