"""Debug ports published on the host for one model at a time (real engine)."""

from __future__ import annotations

import contextlib
import functools
import socket
import threading
from collections.abc import Iterator

import pytest

from mlplatform import errors
from mlplatform.runners.base import LABEL_MODEL_ID, Action, DebugPorts, State
from mlplatform.runners.docker_runner import DockerRunner
from tests.support.docker_env import DockerEnv, applied_until_replaced, http_get, wait_until
from tests.support.images import TestImages


def _free_port_pair() -> int:
    """A port P with P and P+1 free on this host (no promise beyond this instant)."""
    for _ in range(50):
        with socket.socket() as first:
            first.bind(("127.0.0.1", 0))
            port = int(first.getsockname()[1])
            if port >= 65535:
                continue
            with socket.socket() as second:
                try:
                    second.bind(("0.0.0.0", port + 1))
                except OSError:
                    continue
                return port
    raise RuntimeError("no two consecutive free ports")


@pytest.fixture
def first(docker_env: DockerEnv) -> int:
    """RUNNERS_DOCKER_HOST_PORT_DEBUG for this test: the first of two free host ports."""
    return _free_port_pair()


@pytest.fixture
def debug_runner(
    docker_env: DockerEnv, test_images: TestImages, first: int
) -> Iterator[DockerRunner]:
    runner = DockerRunner(docker_env.settings(runners_docker_host_port_debug=first))
    try:
        yield runner
    finally:
        runner.close()


def test_debug_ports_answer_on_localhost_only_for_the_claimer_and_others_name_the_holder(
    docker_env: DockerEnv, debug_runner: DockerRunner, test_images: TestImages, first: int
) -> None:
    claimer = docker_env.workload(
        "dbg-a", test_images.http, ports=[8080, 8081], args=["8080", "8081"], debug=True
    )
    other = docker_env.workload("dbg-b", test_images.http, debug=True)

    held = debug_runner.apply(claimer)
    assert held.debug_endpoints == [f"http://127.0.0.1:{first}", f"http://127.0.0.1:{first + 1}"]
    assert held.details["hostPorts"] == {"8080": first, "8081": first + 1}
    assert held.debug == DebugPorts(bound=True, holder=None)
    for endpoint in held.debug_endpoints:
        assert wait_until(functools.partial(http_get, f"{endpoint}/health")) == "ok\n"
    gateway = _gateway(docker_env)
    assert http_get(f"http://{gateway}:{first}/health") is None  # bound to 127.0.0.1 only

    refused = debug_runner.apply(other)
    assert refused.debug_endpoints == []
    assert refused.details["hostPorts"] == {}
    assert refused.debug is not None and not refused.debug.bound
    assert refused.debug.holder == claimer.spec.id
    assert f"debug ports are held by {claimer.spec.id}" in refused.message
    inspected = docker_env.client.containers.get(str(refused.workload_id)).attrs
    assert not inspected["HostConfig"]["PortBindings"]

    assert debug_runner.apply(claimer).action is Action.NONE  # the holder keeps its claim


def test_the_debug_claim_passes_on_when_the_holder_is_removed(
    docker_env: DockerEnv, debug_runner: DockerRunner, test_images: TestImages, first: int
) -> None:
    claimer = docker_env.workload("dbg-c", test_images.http, debug=True)
    waiting = docker_env.workload("dbg-d", test_images.http, debug=True)
    debug_runner.apply(claimer)
    held = debug_runner.apply(waiting).debug
    assert held is not None and (held.bound, held.holder) == (False, claimer.spec.id)

    debug_runner.delete(claimer)
    taken = debug_runner.apply(waiting)
    assert taken.action is Action.REPLACED
    assert taken.debug == DebugPorts(bound=True, holder=None)
    assert taken.debug_endpoints == [f"http://127.0.0.1:{first}"]
    assert wait_until(lambda: http_get(f"http://127.0.0.1:{first}/health")) == "ok\n"


def test_a_model_without_debug_publishes_nothing(
    docker_env: DockerEnv, debug_runner: DockerRunner, test_images: TestImages
) -> None:
    status = debug_runner.apply(docker_env.workload("dbg-e", test_images.http))
    assert (status.debug_endpoints, status.details["hostPorts"], status.debug) == ([], {}, None)


def test_a_debug_port_taken_on_the_host_is_reported_and_leaves_no_container(
    docker_env: DockerEnv, debug_runner: DockerRunner, test_images: TestImages, first: int
) -> None:
    workload = docker_env.workload("dbg-f", test_images.http, debug=True)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", first))
        squatter.listen()
        with pytest.raises(errors.PortInUse, match=str(first)):
            debug_runner.apply(workload)
    assert debug_runner.observe(workload).state is State.MISSING


def _gateway(env: DockerEnv) -> str:
    """The host's address on the models' network: not loopback, reachable from the host."""
    network = env.client.networks.get(env.network)
    return str(network.attrs["IPAM"]["Config"][0]["Gateway"])


def test_the_debug_port_holder_is_replaced_in_place_with_a_short_gap_said_in_its_status(
    docker_env: DockerEnv, debug_runner: DockerRunner, test_images: TestImages, first: int
) -> None:
    # Only one container at a time can bind the host ports, so no new container can come up
    # behind the serving one: the documented exception to updates without a gap.
    held = debug_runner.apply(docker_env.workload("dbg-upd", test_images.http, debug=True))
    changed = docker_env.workload(
        "dbg-upd", test_images.http, debug=True, env=[{"name": "V", "value": "2"}]
    )
    replaced = debug_runner.apply(changed)
    assert replaced.action is Action.REPLACED
    assert replaced.rollout is None
    assert replaced.workload_id != held.workload_id
    assert "short gap" in replaced.message
    assert replaced.debug_endpoints == [f"http://127.0.0.1:{first}"]
    assert [c.id for c in docker_env.session_containers()] == [replaced.workload_id]


# --- the claim belongs to the model, not to a container (a holder keeps it) ----------------


class _Lifecycle:
    """The engine's create and destroy events of one model's containers, in order (live: the
    engine keeps few past events and other sessions churn through them)."""

    def __init__(self, env: DockerEnv, model_id: str) -> None:
        self.seen: list[tuple[str, str]] = []
        self._stream = env.client.events(
            decode=True,
            filters={"type": "container", "label": f"{LABEL_MODEL_ID}={model_id}"},
        )
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        with contextlib.suppress(Exception):  # the stream ends with an error when closed
            for event in self._stream:
                if event.get("Action") in ("create", "destroy"):
                    self.seen.append((str(event["Action"]), str(event["id"])))

    def close(self) -> list[tuple[str, str]]:
        self._stream.close()
        self._thread.join(5)
        return self.seen


def test_the_holder_keeps_the_debug_ports_across_its_own_updates_and_the_waiter_is_untouched(
    docker_env: DockerEnv, debug_runner: DockerRunner, test_images: TestImages, first: int
) -> None:
    # Issue 25: the holder's new container is newer than the waiter's; the claim used to go
    # by container age, so the holder's next apply gave the ports away (and a replacement
    # loop between the two models began).
    holder = docker_env.workload("dbg-h", test_images.http, debug=True)
    # (Named to sort before the holder: a claim by age, to the second, would favour it.)
    waiter = docker_env.workload("dbg-g", test_images.http, debug=True)
    debug_runner.apply(holder)
    waiting = debug_runner.apply(waiter)
    changed = docker_env.workload(
        "dbg-h", test_images.http, debug=True, env=[{"name": "V", "value": "2"}]
    )
    lifecycle = _Lifecycle(docker_env, changed.spec.id)

    replaced = debug_runner.apply(changed)

    assert replaced.action is Action.REPLACED
    assert replaced.debug_endpoints == [f"http://127.0.0.1:{first}"]
    for _ in range(3):  # as the reconcile loop's requeues and the waiter's polls do
        again = debug_runner.apply(changed)
        assert (again.action, again.workload_id) == (Action.NONE, replaced.workload_id)
        assert again.debug == DebugPorts(bound=True, holder=None)
        still = debug_runner.apply(waiter)
        assert (still.action, still.workload_id) == (Action.NONE, waiting.workload_id)
        assert still.debug is not None and still.debug.holder == holder.spec.id
    assert wait_until(lambda: http_get(f"http://127.0.0.1:{first}/health")) == "ok\n"
    # The new container existed (with the claim's label) before the old one went: no
    # reading of the engine in between found the ports free.
    wait_until(lambda: len(lifecycle.seen) >= 2)
    events = lifecycle.close()
    assert events[:2] == [("create", str(replaced.workload_id)), ("destroy", held_id(events))]


def held_id(events: list[tuple[str, str]]) -> str:
    """The id of the first container destroyed in ``events``."""
    return next(container for action, container in events if action == "destroy")


def test_a_holder_whose_container_stopped_is_restarted_with_the_ports_and_the_waiter_waits(
    docker_env: DockerEnv, debug_runner: DockerRunner, test_images: TestImages, first: int
) -> None:
    holder = docker_env.workload("dbg-t", test_images.http, debug=True)
    waiter = docker_env.workload("dbg-s", test_images.http, debug=True)
    held = debug_runner.apply(holder)
    waiting = debug_runner.apply(waiter)
    docker_env.client.containers.get(str(held.workload_id)).stop(timeout=1)

    # Stopped, it is still the holder: the waiter does not take the ports.
    still = debug_runner.apply(waiter)
    assert (still.action, still.workload_id) == (Action.NONE, waiting.workload_id)
    assert still.debug is not None and still.debug.holder == holder.spec.id
    restarted = debug_runner.apply(holder)
    assert restarted.action is Action.REPLACED
    assert restarted.debug_endpoints == [f"http://127.0.0.1:{first}"]
    assert debug_runner.apply(holder).action is Action.NONE
    assert debug_runner.apply(waiter).workload_id == waiting.workload_id


def test_a_holder_that_stops_asking_is_rolled_out_without_a_gap_then_the_waiter_takes_over(
    docker_env: DockerEnv, debug_runner: DockerRunner, test_images: TestImages, first: int
) -> None:
    holder = docker_env.workload("dbg-x", test_images.http, debug=True)
    waiter = docker_env.workload("dbg-y", test_images.http, debug=True)
    debug_runner.apply(holder)
    debug_runner.apply(waiter)
    plain = docker_env.workload("dbg-x", test_images.http, debug=False)

    # Its new container publishes nothing, so it can come up behind the serving one.
    first_step = debug_runner.apply(plain)
    assert first_step.action is Action.NONE and first_step.rollout is not None
    done = applied_until_replaced(debug_runner, plain)
    assert "without a gap" in done.message
    assert done.debug_endpoints == [] and done.debug is None

    taken = debug_runner.apply(waiter)
    assert taken.action is Action.REPLACED
    assert taken.debug == DebugPorts(bound=True, holder=None)
    assert debug_runner.apply(waiter).action is Action.NONE
