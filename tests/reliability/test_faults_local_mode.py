"""Faults injected under ``mlplatform local`` (watch mode), each ending in convergence.

Every test breaks something — the process (SIGKILL mid-burst), a container (killed,
removed, replaced by a stranger), the image (a crash loop), the engine (a private dockerd
stopped and started) — then waits, with a timeout, until the engine holds exactly one
running container per desired model and nothing else of this controller.
"""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlplatform.models.spec import container_name, split_id
from mlplatform.runners.base import LABEL_MODEL_ID
from tests.reliability import figures, private_engine
from tests.support.docker_env import CreationCounter, DockerEnv, wait_until
from tests.support.images import TestImages
from tests.support.local_cli import LocalCli

pytestmark = pytest.mark.docker


def _converge(local: LocalCli, names: list[str], timeout: float = 90) -> None:
    try:
        wait_until(lambda: local.converged(names), timeout=timeout, interval=0.25)
    except TimeoutError:
        pytest.fail(f"not converged: {local.by_model()}\n{local.log()[-3000:]}")


def test_sigkill_in_the_middle_of_a_burst_of_20_leaves_one_container_per_model(
    local: LocalCli,
) -> None:
    names = [f"burst{i}" for i in range(20)]
    for name in names:
        local.write(name)
    process = local.start("--workers", "4")
    wait_until(lambda: len(local.managed()) >= 5, timeout=60, interval=0.02)
    process.send_signal(signal.SIGKILL)
    process.wait(10)
    created_before_kill = len(local.managed())
    assert created_before_kill < 20, "the burst finished before the kill; nothing was proven"

    local.start("--workers", "4")
    _converge(local, names)
    figures.add("faults survived")
    figures.record("burst: containers created before SIGKILL (of 20)", created_before_kill)


def test_a_killed_or_removed_container_is_recreated_and_a_stranger_with_its_name_is_left_alone(
    local: LocalCli, docker_env: DockerEnv, test_images: TestImages, tmp_path: Path
) -> None:
    status = tmp_path / "status.json"
    local.write("killed")
    local.write("removed")
    local.start("--status-file", str(status))
    _converge(local, ["killed", "removed"])
    ids = {m: c[0] for m, c in local.by_model().items()}

    killed = docker_env.client.containers.get(ids[docker_env.model_id("killed")])
    killed.kill()
    docker_env.client.containers.get(ids[docker_env.model_id("removed")]).remove(force=True)
    _converge(local, ["killed", "removed"])
    new_ids = {m: c[0] for m, c in local.by_model().items()}
    assert set(new_ids.values()).isdisjoint(ids.values())

    # A stranger holds the name of a model about to be applied: reported, never touched.
    stranger = docker_env.run_helper(
        test_images.http, name=container_name(docker_env.model_id("taken"))
    )
    local.write("taken")
    wait_until(lambda: status.exists() and "NameConflict" in status.read_text(), timeout=30)
    stranger.reload()
    assert stranger.status == "running"
    assert LABEL_MODEL_ID not in stranger.labels
    assert local.converged(["killed", "removed"])
    figures.add("faults survived", 3)


# The crash loop is watched for this long here (the soak script watches two minutes).
CRASH_WINDOW_SECONDS = 40.0


def test_a_crash_looping_model_backs_off_and_its_creations_stay_bounded(
    local: LocalCli, docker_env: DockerEnv, test_images: TestImages, tmp_path: Path
) -> None:
    status = tmp_path / "status.json"
    model_id = docker_env.model_id("crash")
    local.write("crash", test_images.exit, container={"env": [{"name": "EXIT_CODE", "value": "3"}]})
    counter = CreationCounter(docker_env, model_id)
    started = time.monotonic()
    local.start("--status-file", str(status))
    wait_until(lambda: status.exists() and "CrashLoopBackOff" in status.read_text(), timeout=60)
    # The window is the measurement itself: a fixed time to count creations in.
    time.sleep(max(0.0, CRASH_WINDOW_SECONDS - (time.monotonic() - started)))
    count = counter.close()
    text = status.read_text()
    figures.record(f"crash loop: container creations in {CRASH_WINDOW_SECONDS:.0f}s", count)
    # Doubling from 1 s (capped at 60 s): 0+1+2+4+8+16 s between attempts → ~7 in 40 s; a
    # loop without back-off would create one every second or so.
    assert 3 <= count <= 9, count
    assert "CrashLoopBackOff" in text and "3" in text
    assert "exit code 3" in text.lower() or '"exitCode": 3' in text, text[-2000:]
    figures.add("faults survived")


def _storage_file(docker_env: DockerEnv, name: str) -> Path:
    model_name, version = split_id(docker_env.model_id(name))
    return docker_env.storage_dir / "services-ml" / model_name / version / "storage" / "kept"


def _running_container(local: LocalCli, name: str) -> str:
    _converge(local, [name])
    return local.by_model(running=True)[local.env.model_id(name)][0]


def _read_inside(local: LocalCli, container_id: str) -> str:
    result = local.env.client.containers.get(container_id).exec_run(["cat", "/storage/kept"])
    assert result.exit_code == 0, result.output
    assert isinstance(result.output, bytes)
    return result.output.decode()


def test_storage_survives_replacement_process_restart_and_delete_then_recreate(
    local: LocalCli, docker_env: DockerEnv
) -> None:
    local.write("keep", container={"volumes": ["/storage"]})
    process = local.start()
    first = _running_container(local, "keep")
    exec_result = docker_env.client.containers.get(first).exec_run(
        ["sh", "-c", "echo precious > /storage/kept"]
    )
    assert exec_result.exit_code == 0

    local.write("keep", container={"volumes": ["/storage"], "env": [{"name": "V", "value": "2"}]})
    wait_until(
        lambda: first not in local.by_model(running=True).get(local.env.model_id("keep"), [first]),
        timeout=60,
    )
    second = _running_container(local, "keep")
    assert _read_inside(local, second) == "precious\n"

    process.send_signal(signal.SIGKILL)
    process.wait(10)
    process = local.start()
    assert _read_inside(local, _running_container(local, "keep")) == "precious\n"
    # The restarted process must have read the folder before it empties: a folder that is
    # empty at start-up is refused (it would remove every model under it).
    wait_until(lambda: "Watching" in local.log(), timeout=60)

    local.remove("keep")
    wait_until(lambda: not local.managed(), timeout=60)
    assert _storage_file(docker_env, "keep").read_text() == "precious\n"
    local.write("keep", container={"volumes": ["/storage"]})
    assert _read_inside(local, _running_container(local, "keep")) == "precious\n"
    figures.add("faults survived", 3)


@pytest.fixture
def engine() -> Iterator[private_engine.PrivateEngine]:
    reason = private_engine.available()
    if reason:
        pytest.skip(reason)
    engine = private_engine.PrivateEngine()
    try:
        engine.start()
        yield engine
    finally:
        engine.close()


def test_a_private_engine_stopped_while_models_run_and_changes_are_in_flight_converges_after(
    engine: private_engine.PrivateEngine,
    test_images: TestImages,
    tmp_path: Path,
) -> None:
    engine.load_images(test_images.http)
    env = DockerEnv.create(tmp_path / "engine")
    env.client.close()
    env.client = engine.client()
    folder = tmp_path / "manifests"
    folder.mkdir()
    local = LocalCli(env, folder, test_images, extra_env={"DOCKER_HOST": engine.host})
    status = tmp_path / "status.json"
    try:
        for name in ("e0", "e1", "e2"):
            local.write(name, container={"volumes": ["/storage"]})
        process = local.start("--status-file", str(status))
        _converge(local, ["e0", "e1", "e2"])
        first = local.by_model(running=True)[env.model_id("e0")][0]
        env.client.containers.get(first).exec_run(["sh", "-c", "echo kept > /storage/kept"])

        engine.stop()
        local.write("e3")  # an apply in flight
        local.remove("e1")  # a delete in flight
        local.write("e2", container={"volumes": ["/storage"], "env": [{"name": "V", "value": "2"}]})
        wait_until(
            lambda: status.exists() and "RunnerUnavailable" in status.read_text(), timeout=60
        )
        assert process.poll() is None, local.log()[-3000:]

        engine.start()
        env.client.close()
        env.client = engine.client()
        _converge(local, ["e0", "e2", "e3"], timeout=120)
        assert process.poll() is None
        e2 = env.client.containers.get(local.by_model(running=True)[env.model_id("e2")][0])
        assert "V=2" in e2.attrs["Config"]["Env"]
        e0 = local.by_model(running=True)[env.model_id("e0")][0]
        kept = env.client.containers.get(e0).exec_run(["cat", "/storage/kept"])
        assert kept.output == b"kept\n"
        figures.add("faults survived", 2)
    finally:
        local.stop_all()
        with contextlib.suppress(Exception):
            env.cleanup()
