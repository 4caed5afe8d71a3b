"""Endpoints and readiness over the models' network (real engine)."""

from __future__ import annotations

import functools
from concurrent.futures import ThreadPoolExecutor

from docker.models.containers import Container

from mlplatform.runners.base import MANAGED_BY, ProbeResult, RunnerStatus, State, Workload
from mlplatform.runners.docker_engine import Engine
from mlplatform.runners.docker_network import ModelsNetwork
from mlplatform.runners.docker_runner import DockerRunner
from mlplatform.runners.docker_status import holds_alias
from tests.support.docker_env import DockerEnv, wait_until
from tests.support.images import TestImages


def test_the_network_is_created_when_missing_and_labelled(
    docker_env: DockerEnv, docker_runner: DockerRunner, test_images: TestImages
) -> None:
    assert docker_env.client.networks.list(names=[docker_env.network]) == []
    docker_runner.apply(docker_env.workload("net", test_images.http))
    (network,) = docker_env.client.networks.list(names=[docker_env.network])
    assert network.attrs["Driver"] == "bridge"
    assert network.attrs["Labels"]["mlplatform.dev/managed-by"] == MANAGED_BY


def test_endpoints_answer_from_another_container_on_the_network(
    docker_env: DockerEnv, docker_runner: DockerRunner, test_images: TestImages
) -> None:
    workload = docker_env.workload(
        "ep", test_images.http, ports=[8080, 9090], args=["8080", "9090"]
    )
    status = docker_runner.apply(workload)
    name = f"mlpt-ep-{docker_env.token}-1"
    # The stable endpoint (<metadata.name>.<namespace>) first, then the per-version name.
    assert status.endpoints == [
        "http://ep.test:8080",
        "http://ep.test:9090",
        f"http://{name}:8080",
        f"http://{name}:9090",
    ]

    for endpoint in status.endpoints:
        answer = functools.partial(_answer, docker_env, test_images, f"{endpoint}/health")
        code, output = wait_until(answer, timeout=20)
        assert (code, output) == (0, "ok\n")


def _answer(env: DockerEnv, images: TestImages, url: str) -> tuple[int, str] | None:
    code, output = env.client_run(images.http, ["wget", "-qO-", url])
    return (code, output) if code == 0 else None


def test_the_readiness_probe_passes_when_the_server_answers(
    docker_env: DockerEnv, docker_runner: DockerRunner, test_images: TestImages
) -> None:
    probe = {"httpGet": {"path": "/health", "port": 8080}, "timeoutSeconds": 2}
    workload = docker_env.workload("ready", test_images.http, readinessProbe=probe)
    status = docker_runner.apply(workload)
    result = wait_until(lambda: _probe(docker_runner, workload, status, ok=True))
    assert "answered 200" in result.message


def test_the_readiness_probe_fails_on_a_missing_path_and_a_closed_port(
    docker_env: DockerEnv, docker_runner: DockerRunner, test_images: TestImages
) -> None:
    missing = {"httpGet": {"path": "/nothing-here", "port": 8080}}
    workload = docker_env.workload("nready", test_images.http, readinessProbe=missing)
    status = docker_runner.apply(workload)
    wait_until(lambda: docker_runner.observe(workload).state is State.RUNNING)
    # Running comes before the server listens (a refused connection); wait for an answer.
    result = wait_until(lambda: _answered(docker_runner, workload, status))
    assert not result.ok
    assert "answered 404" in result.message

    closed = {"httpGet": {"path": "/health", "port": 9090}}
    workload = docker_env.workload(
        "nready", test_images.http, ports=[8080, 9090], readinessProbe=closed
    )
    status = docker_runner.apply(workload)
    result = docker_runner.probe(workload, status)
    assert not result.ok
    assert "9090" in result.message


def _probe(
    runner: DockerRunner, workload: Workload, status: RunnerStatus, *, ok: bool
) -> ProbeResult | None:
    result = runner.probe(workload, status)
    return result if result.ok is ok else None


def _answered(runner: DockerRunner, workload: Workload, status: RunnerStatus) -> ProbeResult | None:
    result = runner.probe(workload, status)
    return result if " answered " in result.message else None


def test_concurrent_first_applies_create_one_network(
    docker_env: DockerEnv, docker_runner: DockerRunner, test_images: TestImages
) -> None:
    workloads = [docker_env.workload(f"par{i}", test_images.http) for i in range(4)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        statuses = list(pool.map(docker_runner.apply, workloads))
    assert all(s.workload_id for s in statuses)
    assert len(docker_env.client.networks.list(names=[docker_env.network])) == 1


# Held open by the client until /tmp/go exists, then one GET; the first line of the answer.
_HELD_REQUEST = (
    "(while [ ! -e /tmp/go ]; do sleep 0.05; done; printf 'GET /health HTTP/1.0\\r\\n\\r\\n')"
    " | timeout 10 nc {address} 8080 | head -n 1"
)


def test_a_retired_container_leaves_the_alias_and_keeps_its_address_and_connections(
    docker_env: DockerEnv, docker_runner: DockerRunner, test_images: TestImages
) -> None:
    """What an update's hand-over relies on: out of the alias, a request in flight answered."""
    docker_runner.apply(docker_env.workload("held", test_images.http))
    old = docker_env.client.containers.get(f"mlpt-held-{docker_env.token}-1")
    settings = docker_env.settings()
    engine = Engine(settings)
    models = ModelsNetwork(engine, settings)
    address = models.address(old)
    assert address is not None and holds_alias(old, docker_env.network, "held.test")
    script = _HELD_REQUEST.format(address=address)
    held = docker_env.run_helper(test_images.client, entrypoint=["sh", "-c", script])
    # Its connection is established (port 8080 = 1F90, state 01) before the old one retires.
    wait_until(lambda: ":1F90 " in _established(old), timeout=20)

    try:
        assert models.retire(docker_env.client.networks.get(docker_env.network), old)
    finally:
        engine.close()

    assert models.address(old) == address
    assert not holds_alias(old, docker_env.network, "held.test")
    held.exec_run(["sh", "-c", "echo > /tmp/go"])
    assert held.wait(timeout=20)["StatusCode"] == 0
    answer = held.logs().decode(errors="replace")
    assert answer.startswith("HTTP/1.") and " 200 " in answer.split("\n")[0], answer


def _established(container: Container) -> str:
    """The container's established TCP connections' local addresses (httpd listens on IPv6,
    so IPv4 clients show in /proc/net/tcp6 as mapped addresses)."""
    _, output = container.exec_run(["cat", "/proc/net/tcp", "/proc/net/tcp6"])
    text = output.decode() if isinstance(output, bytes) else ""
    rows = [line.split() for line in text.splitlines()[1:]]
    return " ".join(f"{row[1]} " for row in rows if len(row) > 3 and row[3] == "01")
