"""Fixtures shared by every suite that talks to the real Docker engine, and the figures."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mlplatform.runners.docker_runner import DockerRunner
from tests.reliability import figures
from tests.support.docker_env import DockerEnv
from tests.support.images import TestImages, ensure_test_images
from tests.support.local_cli import LocalCli


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    figures.summary(terminalreporter.write_line, terminalreporter.write_sep)


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


@pytest.fixture
def local(docker_env: DockerEnv, test_images: TestImages, tmp_path: Path) -> Iterator[LocalCli]:
    """Manifests in ``tmp_path/manifests`` and ``mlplatform local`` run on them, killed after."""
    folder = tmp_path / "manifests"
    folder.mkdir()
    run = LocalCli(docker_env, folder, test_images)
    try:
        yield run
    finally:
        run.stop_all()
