"""Reachable images: the pull policy, typed errors naming the image (real engine, no registry)."""

from __future__ import annotations

import pytest

from mlplatform import errors
from mlplatform.runners.base import State
from mlplatform.runners.docker_runner import DockerRunner
from tests.support.docker_env import DockerEnv
from tests.support.images import TestImages


def test_a_present_image_is_used_without_pulling_even_with_policy_never(
    docker_env: DockerEnv, docker_runner: DockerRunner, test_images: TestImages
) -> None:
    workload = docker_env.workload("here", test_images.http, imagePullPolicy="Never")
    status = docker_runner.apply(workload)
    assert status.state in (State.RUNNING, State.STARTING)
    assert not status.image_pulled


def test_policy_never_with_a_missing_image_fails_naming_the_image(
    docker_env: DockerEnv, docker_runner: DockerRunner
) -> None:
    image = f"mlpt-absent-{docker_env.token}/model:1"
    workload = docker_env.workload("never", image, imagePullPolicy="Never")
    with pytest.raises(errors.ImageNotFound) as raised:
        docker_runner.apply(workload)
    assert image in raised.value.message
    assert "Never" in raised.value.message
    assert docker_runner.observe(workload).state is State.MISSING


@pytest.mark.parametrize("policy", ["IfNotPresent", "Always"])
def test_an_image_that_cannot_be_pulled_is_a_typed_error_naming_it(
    docker_env: DockerEnv, docker_runner: DockerRunner, policy: str
) -> None:
    image = f"mlpt-nowhere-{docker_env.token}.invalid/model:1"
    workload = docker_env.workload("unpullable", image, imagePullPolicy=policy)
    with pytest.raises((errors.ImagePullFailed, errors.ImageNotFound)) as raised:
        docker_runner.apply(workload)
    assert image in str(raised.value)
    assert raised.value.__cause__ is not None  # the engine's error is chained
    assert docker_runner.observe(workload).state is State.MISSING
