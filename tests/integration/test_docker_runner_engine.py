"""The engine connection: disabled runner, unreachable engine, recovery, events, selection."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from mlplatform import errors
from mlplatform.config import Settings
from mlplatform.runners.base import RunnerEvent
from mlplatform.runners.docker_runner import DockerRunner
from mlplatform.runners.selection import runner_for
from tests.support.docker_env import DockerEnv, wait_until
from tests.support.images import TestImages

ENGINE_SOCKET = Path("/var/run/docker.sock")


def test_a_disabled_runner_refuses_every_call_and_creates_nothing(
    docker_env: DockerEnv, test_images: TestImages
) -> None:
    runner = DockerRunner(docker_env.settings(runners_docker_enabled=False))
    workload = docker_env.workload("off", test_images.http)
    calls = [
        lambda: runner.apply(workload),
        lambda: runner.observe(workload),
        lambda: runner.delete(workload),
        runner.list_owned,
        runner.events,
    ]
    for call in calls:
        with pytest.raises(errors.RunnerDisabled, match="RUNNERS_DOCKER_ENABLED"):
            call()
    assert docker_env.session_containers() == []
    assert docker_env.client.networks.list(names=[docker_env.network]) == []


def test_an_unreachable_engine_is_reported_as_unavailable_quickly(
    docker_env: DockerEnv, test_images: TestImages
) -> None:
    nobody = f"unix:///tmp/mlpt-nobody-{docker_env.token}.sock"
    settings = Settings.load(
        environ={"DOCKER_HOST": nobody, "RUNNERS_DOCKER_ENABLED": "true"},
        runners_docker_network=docker_env.network,
        controller=docker_env.controller,
        storage_dir=docker_env.storage_dir,
    )
    runner = DockerRunner(settings)
    workload = docker_env.workload("down", test_images.http)
    for call in (runner.apply, runner.observe, runner.delete):
        started = time.monotonic()
        with pytest.raises(errors.RunnerUnavailable, match=nobody) as raised:
            call(workload)
        assert time.monotonic() - started < 2.0
        assert raised.value.retryable
        assert raised.value.__cause__ is not None


@pytest.mark.skipif(not ENGINE_SOCKET.exists(), reason="the engine is not on the default socket")
def test_the_runner_connects_again_when_the_engine_comes_back(
    docker_env: DockerEnv, test_images: TestImages
) -> None:
    socket = Path(f"/tmp/mlpt-engine-{docker_env.token}.sock")
    runner = DockerRunner(docker_env.settings(docker_host=f"unix://{socket}"))
    workload = docker_env.workload("back", test_images.http)
    try:
        with pytest.raises(errors.RunnerUnavailable):
            runner.observe(workload)
        socket.symlink_to(ENGINE_SOCKET)  # the engine "comes back" at that address
        assert runner.apply(workload).workload_id is not None
    finally:
        runner.close()
        socket.unlink(missing_ok=True)


def test_events_report_what_happens_to_managed_containers_and_close_from_another_thread(
    docker_env: DockerEnv, docker_runner: DockerRunner, test_images: TestImages
) -> None:
    stream = docker_runner.events()
    seen: list[RunnerEvent] = []
    reader = threading.Thread(target=lambda: seen.extend(stream), daemon=True)
    reader.start()
    workload = docker_env.workload("evt", test_images.exit)
    docker_env.run_helper(test_images.exit)  # not managed: never reported
    docker_runner.apply(workload)

    wait_until(lambda: {"start", "die"} <= {e.action for e in seen})
    assert {e.model_id for e in seen} == {workload.spec.id}
    assert seen[0].owner == workload.owner

    stream.close()
    reader.join(timeout=5)
    assert not reader.is_alive()


def test_spec_runner_selects_the_docker_runner_and_pod_is_not_available(
    docker_env: DockerEnv, test_images: TestImages
) -> None:
    settings = docker_env.settings()
    assert isinstance(runner_for("docker", settings), DockerRunner)
    pod = runner_for("pod", settings)
    assert pod.type == "pod"
    with pytest.raises(errors.RunnerNotImplemented, match='runner "pod" is not available'):
        pod.apply(docker_env.workload("pod", test_images.http))
    assert pod.list_owned() == []


def test_a_network_that_would_bypass_isolation_is_refused(docker_env: DockerEnv) -> None:
    for network in ("host", "bridge", "none"):
        with pytest.raises(errors.ConfigurationError, match="user-defined network"):
            DockerRunner(docker_env.settings(runners_docker_network=network))
