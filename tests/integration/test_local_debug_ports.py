"""Debug ports in ``mlplatform local``: they belong to a model, and pass on once.

Two models ask for the host's debug ports (``debug: true``); one holds them, the other
waits naming it. The holder keeps them across its own updates and restarts; the waiter
takes them over only when the holder stops being a claimer (deleted, suspended), once —
also when the two models live in two folders run by two processes on one engine. Before,
the claim went by container age: an update or a restart of the holder made its container
the younger one, and the two models replaced each other in a loop (issues 23 and 25).

Each test counts the containers each model creates (engine events, live) and, where the
absence of a replacement is the point, watches for ``QUIET`` seconds: long enough for the
waiter to look again twice (``DEBUG_RETRY``) and for a resync.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from docker.models.containers import Container

from mlplatform.core.reconcile import DEBUG_RETRY
from mlplatform.models import timestamps
from mlplatform.runners.base import LABEL_CONTROLLER, LABEL_MODEL_ID
from mlplatform.runners.docker_plan import LABEL_DEBUG_PORTS
from tests.support.docker_env import CreationCounter, http_get, wait_until
from tests.support.local_cli import CLI, LocalCli

pytestmark = pytest.mark.docker

# Seconds in which nothing more may be created: two looks of the waiter and a resync.
QUIET = 2 * DEBUG_RETRY + 1
Counting = Callable[[], dict[str, CreationCounter]]
CHANGED = {"env": [{"name": "V", "value": "2"}]}


@pytest.fixture
def port(local: LocalCli) -> int:
    """A free host port, given to the run as ``RUNNERS_DOCKER_HOST_PORT_DEBUG``."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        found = int(probe.getsockname()[1])
    local.extra_env["RUNNERS_DOCKER_HOST_PORT_DEBUG"] = str(found)
    return found


@pytest.fixture
def count(local: LocalCli) -> Iterator[Callable[[], dict[str, CreationCounter]]]:
    """``count()``: the container creations of models ``a`` and ``b``, counted from then."""
    made: list[CreationCounter] = []

    def start() -> dict[str, CreationCounter]:
        counters = {n: CreationCounter(local.env, local.env.model_id(n)) for n in ("a", "b")}
        made.extend(counters.values())
        return counters

    try:
        yield start
    finally:
        for counter in made:
            counter.close()


def holder(local: LocalCli) -> str | None:
    """The model id whose container carries the debug-port claim (None: nobody's)."""
    found = local.env.client.api.containers(
        all=True,
        filters={"label": [f"{LABEL_CONTROLLER}={local.env.controller}", LABEL_DEBUG_PORTS]},
    )
    ids = {c["Labels"][LABEL_MODEL_ID] for c in found}
    assert len(ids) <= 1, f"two models hold the debug ports: {ids}"
    return ids.pop() if ids else None


def answers(port: int) -> bool:
    return http_get(f"http://127.0.0.1:{port}/health") == "ok\n"


def held_by(local: LocalCli, name: str, port: int) -> bool:
    return holder(local) == local.env.model_id(name) and answers(port)


def a_holds_b_waits(local: LocalCli, port: int) -> None:
    """Wait until ``a`` holds the ports and ``b`` runs without them, and ``b``'s container
    is clearly older (the engine's creation times are whole seconds) than any new one of
    ``a``: a claim by container age would then favour ``b``."""
    wait_until(lambda: held_by(local, "a", port), timeout=60)
    found = local.wait_for(lambda found: set(found) == local.ids("a", "b"), timeout=60)
    waiter = local.env.client.containers.get(found[local.env.model_id("b")])
    wait_until(lambda: up_for(waiter) > 1.5, timeout=30)


def up_for(container: Container) -> float:
    """Seconds since ``container`` started (read again from the engine)."""
    container.reload()
    return time.time() - timestamps.parse(container.attrs["State"]["StartedAt"])


def quiet_period(counters: dict[str, CreationCounter]) -> dict[str, int]:
    """The creations counted once ``QUIET`` seconds have passed (nothing else to wait on:
    the point is that nothing happens)."""
    time.sleep(QUIET)
    return {name: counter.count for name, counter in counters.items()}


def test_an_update_of_the_holder_under_once_replaces_it_once_and_it_keeps_the_ports(
    local: LocalCli, port: int, count: Counting
) -> None:
    local.write("a", debug=True)
    assert local.run("--once").returncode == 0
    local.write("b", debug=True)
    assert local.run("--once").returncode == 0
    a_holds_b_waits(local, port)
    waiter = local.containers()[local.env.model_id("b")]
    made = count()

    local.write("a", debug=True, container=CHANGED)
    result = local.run("--once")

    counts = {name: counter.close() for name, counter in made.items()}  # all made by now
    assert result.returncode == 0, result.stderr
    assert counts == {"a": 1, "b": 0}, result.stderr
    assert held_by(local, "a", port)
    assert local.containers()[local.env.model_id("b")] == waiter
    assert f"debug ports are held by {local.env.model_id('a')}" in result.stdout


def test_an_update_of_the_holder_in_watch_mode_replaces_it_once_and_nothing_follows(
    local: LocalCli, port: int, count: Counting
) -> None:
    local.write("a", debug=True)
    local.start(resync=1)
    wait_until(lambda: held_by(local, "a", port), timeout=60)
    local.write("b", debug=True)
    a_holds_b_waits(local, port)
    waiter = local.containers()[local.env.model_id("b")]
    made = count()

    local.write("a", debug=True, container=CHANGED)
    wait_until(lambda: made["a"].count >= 1, timeout=30)
    counts = quiet_period(made)

    assert counts == {"a": 1, "b": 0}, local.log()
    assert held_by(local, "a", port)
    assert local.containers()[local.env.model_id("b")] == waiter


def test_a_holder_whose_container_stops_is_restarted_with_the_ports_and_the_waiter_waits(
    local: LocalCli, port: int, count: Counting
) -> None:
    # Issue 23: stopping the holder's container made both models be replaced every ~11 s.
    local.write("a", debug=True)
    local.start(resync=1)
    wait_until(lambda: held_by(local, "a", port), timeout=60)
    local.write("b", debug=True)
    a_holds_b_waits(local, port)
    waiter = local.containers()[local.env.model_id("b")]
    made = count()

    local.env.client.containers.get(local.containers()[local.env.model_id("a")]).stop(timeout=1)
    wait_until(lambda: made["a"].count >= 1 and answers(port), timeout=30)
    counts = quiet_period(made)

    assert counts == {"a": 1, "b": 0}, local.log()
    assert held_by(local, "a", port)
    assert local.containers()[local.env.model_id("b")] == waiter


@pytest.mark.parametrize("goes", ["suspended", "deleted"])
def test_the_waiter_takes_the_ports_over_once_when_the_holder_goes(
    local: LocalCli, port: int, count: Counting, goes: str
) -> None:
    local.write("a", debug=True)
    local.start(resync=1)
    wait_until(lambda: held_by(local, "a", port), timeout=60)
    local.write("b", debug=True)
    a_holds_b_waits(local, port)
    made = count()

    if goes == "suspended":
        local.write("a", debug=True, suspend=True)
    else:
        local.remove("a")
    wait_until(lambda: held_by(local, "b", port), timeout=30)
    counts = quiet_period(made)

    assert counts == {"a": 0, "b": 1}, local.log()
    assert held_by(local, "b", port)
    assert set(local.containers()) == local.ids("b")


def test_two_folders_in_two_processes_on_one_engine_share_the_ports_without_a_loop(
    local: LocalCli, port: int, count: Counting, tmp_path: Path
) -> None:
    # (Its own parent folder: the logs of a LocalCli's processes are kept beside its folder.)
    other = LocalCli(local.env, tmp_path / "other" / "manifests", local.images)
    other.extra_env.update(local.extra_env)
    other.folder.mkdir(parents=True)
    local.write("a", debug=True)
    other.write("b", debug=True)
    first = local.start(resync=1)
    wait_until(lambda: held_by(local, "a", port), timeout=60)
    other.start(resync=1)
    try:
        a_holds_b_waits(local, port)
        waiter = local.containers()[local.env.model_id("b")]
        made = count()

        # The holder's update, in the first process: the second's model does not move.
        local.write("a", debug=True, container=CHANGED)
        wait_until(lambda: made["a"].count >= 1, timeout=30)
        counts = quiet_period(made)
        assert counts == {"a": 1, "b": 0}, local.log() + other.log()
        assert held_by(local, "a", port)
        assert local.containers()[local.env.model_id("b")] == waiter

        # The holder's folder brought down: the second process's model takes over, once.
        first.send_signal(signal.SIGINT)
        assert first.wait(30) == 0
        down = subprocess.run(
            [str(CLI), "local", str(local.folder), "--down"],
            env=local.environ(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert down.returncode == 0, down.stderr
        wait_until(lambda: held_by(local, "b", port), timeout=30)
        counts = quiet_period(made)
        assert counts == {"a": 1, "b": 1}, other.log()
    finally:
        other.stop_all()
