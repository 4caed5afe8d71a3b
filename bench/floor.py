"""The floor: what raw Docker does with the same image and the same HTTP wait (docker-py).

- time to running: ``containers.run`` (create, inspect, start) on the run's network, then
  the container's IP, then ``GET /health`` until 200; one container at a time.
- burst: N containers started by a pool of T threads, each answering as above; tried with a
  few T and the best total kept (the engine's best concurrency on this machine).
There is no floor for drift repair: raw Docker does not replace a killed container.
"""

from __future__ import annotations

import concurrent.futures
import threading
import time
from collections.abc import Sequence
from typing import Any

import docker

from bench import scenarios, stats
from bench.env import BENCH_LABEL, BenchEnv
from bench.observe import container_address, wait_http

TIMEOUT = 120.0


def _run(client: docker.DockerClient, env: BenchEnv, image: str, name: str) -> str:
    container = client.containers.run(
        image, name=name, detach=True, network=env.network, labels={BENCH_LABEL: env.token}
    )
    return str(container.id)


def time_to_running(
    env: BenchEnv, proxied: docker.DockerClient, direct: docker.DockerClient, image: str, reps: int
) -> dict[str, Any]:
    durations = []
    phases = []
    for index in range(reps):
        name = f"mlpt-b{env.token}-floor{index}-1"
        wall, started = time.time(), time.monotonic()
        container_id = _run(proxied, env, image, name)
        deadline = started + TIMEOUT
        address = container_address(direct, container_id, env.network, deadline=deadline)
        elapsed = wait_http(address, deadline=deadline) - started
        durations.append(elapsed)
        phases.append(scenarios.docker_phases(env, wall, wall + elapsed, name))
        direct.api.remove_container(container_id, force=True)
    result = stats.summary(durations)
    result["phases"] = scenarios.phases_summary(phases)
    return result


def burst_once(
    env: BenchEnv,
    proxied: docker.DockerClient,
    direct: docker.DockerClient,
    image: str,
    *,
    n: int,
    threads: int,
) -> dict[str, Any]:
    """N containers through a pool of ``threads``; per-container time from the burst start."""
    answered: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    waiters: list[threading.Thread] = []
    started = time.monotonic()
    deadline = started + TIMEOUT

    def wait(container_id: str) -> None:
        try:
            address = container_address(direct, container_id, env.network, deadline=deadline)
            done = wait_http(address, deadline=deadline)
            with lock:
                answered.append(done - started)
        except Exception as error:
            with lock:
                errors.append(repr(error))

    def start(index: int) -> None:
        container_id = _run(proxied, env, image, f"mlpt-b{env.token}-burst{n}x{threads}n{index}-1")
        waiter = threading.Thread(target=wait, args=(container_id,))
        with lock:
            waiters.append(waiter)
        waiter.start()

    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        for future in [pool.submit(start, i) for i in range(n)]:
            try:
                future.result()
            except Exception as error:
                errors.append(repr(error))
    for waiter in list(waiters):
        waiter.join()
    result = {"n": n, "threads": threads, "errors": errors[:5], "failed": len(errors)}
    result["total"] = round(max(answered), 4) if answered and not errors else None
    result["per_model"] = stats.summary(answered)
    env.remove_containers(direct, models=False)
    return result


def burst(
    env: BenchEnv,
    proxied: docker.DockerClient,
    direct: docker.DockerClient,
    image: str,
    *,
    sizes: Sequence[int],
    thread_counts: Sequence[int],
) -> dict[str, Any]:
    """For each N, every thread count tried; the best (smallest total) is the floor."""
    results: dict[str, Any] = {}
    for n in sizes:
        tries = [burst_once(env, proxied, direct, image, n=n, threads=t) for t in thread_counts]
        good = [t for t in tries if t["total"] is not None]
        best = min(good, key=lambda t: t["total"]) if good else None
        results[str(n)] = {"best": best, "tries": tries}
        shown = ", ".join(f"T={t['threads']}: {t['total']}s" for t in tries)
        print(f"bench: floor burst N={n}: {shown}", flush=True)
    return results
