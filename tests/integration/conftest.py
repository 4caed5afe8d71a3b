"""Fixtures for tests against the real Docker engine (started by scripts/ensure-docker.sh)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mlplatform.runners.docker_runner import DockerRunner
from tests.support.docker_env import DockerEnv
from tests.support.images import TestImages, ensure_test_images


@pytest.fixture(scope="session")
def test_images() -> TestImages:
    """The locally built test images (HTTP server, exit code, OOM), built once per session."""
    return ensure_test_images()


@pytest.fixture
def docker_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockerEnv]:
    """A private network, controller and folders on the shared engine; cleaned up after."""
    env = DockerEnv.create(tmp_path_factory.mktemp("docker"))
    try:
        yield env
    finally:
        env.cleanup()


@pytest.fixture
def docker_runner(docker_env: DockerEnv, test_images: TestImages) -> Iterator[DockerRunner]:
    """A Docker runner confined to this test's network, controller and folders."""
    runner = DockerRunner(docker_env.settings())
    try:
        yield runner
    finally:
        runner.close()
