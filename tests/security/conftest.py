"""Fixtures of the security suite (the same as tests/reliability), and the figures at the end."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.reliability import figures
from tests.reliability.local_harness import LocalRun
from tests.support.docker_env import DockerEnv
from tests.support.images import TestImages, ensure_test_images


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    figures.summary(terminalreporter.write_line, terminalreporter.write_sep)


@pytest.fixture(scope="session")
def test_images() -> TestImages:
    return ensure_test_images()


@pytest.fixture
def docker_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockerEnv]:
    env = DockerEnv.create(tmp_path_factory.mktemp("docker"))
    try:
        yield env
    finally:
        env.cleanup()


@pytest.fixture
def local(docker_env: DockerEnv, test_images: TestImages, tmp_path: Path) -> Iterator[LocalRun]:
    folder = tmp_path / "manifests"
    folder.mkdir()
    run = LocalRun(docker_env, folder, test_images)
    try:
        yield run
    finally:
        run.stop_all()
