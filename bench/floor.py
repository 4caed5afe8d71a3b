"""The floor: what raw Docker does with the same image and the same HTTP wait (docker-py).

- time to running: ``containers.run`` (create, inspect, start) on the run's network, then
  the container's IP, then ``GET /health`` until 200; one container at a time.
- burst: N containers started by a pool of T threads, each answering as above; tried with a
  few T and the best total kept (the engine's best concurrency on this machine).
There is no floor for drift repair: raw Docker does not replace a killed container.
"""

from __future__ import annotations

import concurrent.futures
import secrets
import threading
import time
from collections.abc import Sequence
from typing import Any

import docker

from bench import phases, stats
from bench.env import BENCH_LABEL, BenchEnv
from bench.observe import container_address, wait_http

TIMEOUT = 120.0


def _run(client: docker.DockerClient, env: BenchEnv, image: str, name: str) -> str:
    container = client.containers.run(
        image, name=name, detach=True, network=env.network, labels={BENCH_LABEL: env.token}
    )
    return str(container.id)


class Floor:
    """The floor's measurements for one run: its clients, image and names."""

    def __init__(
        self, env: BenchEnv, proxied: docker.DockerClient, direct: docker.DockerClient, image: str
    ) -> None:
        self.env = env
        self.proxied = proxied
        self.direct = direct
        self.image = image
        self._count = 0
        self.best_threads: dict[int, int] = {}

    def one(self) -> tuple[float, dict[str, Any]]:
        """One container to running: (seconds, where the time went); removed after."""
        name = f"mlpt-b{self.env.token}-floor{self._count}-1"
        self._count += 1
        wall, started = time.time(), time.monotonic()
        container_id = _run(self.proxied, self.env, self.image, name)
        deadline = started + TIMEOUT
        address = container_address(self.direct, container_id, self.env.network, deadline=deadline)
        elapsed = wait_http(address, deadline=deadline) - started
        spent = phases.docker_phases(self.env, wall, wall + elapsed, name)
        self.direct.api.remove_container(container_id, force=True)
        return elapsed, spent

    def time_to_running(self, reps: int) -> dict[str, Any]:
        runs = [self.one() for _ in range(reps)]
        result = stats.summary([elapsed for elapsed, _ in runs])
        result["phases"] = phases.phases_summary([spent for _, spent in runs])
        return result

    def burst(self, n: int, threads: int | None = None) -> dict[str, Any]:
        """N containers at the given (default: the best found) concurrency."""
        threads = threads or self.best_threads.get(n) or 4
        return burst_once(self.env, self.proxied, self.direct, self.image, n=n, threads=threads)

    def find_best(self, sizes: Sequence[int], thread_counts: Sequence[int]) -> dict[str, Any]:
        """For each N, every thread count tried; the best (smallest total) is kept."""
        results: dict[str, Any] = {}
        for n in sizes:
            tries = [self.burst(n, t) for t in thread_counts]
            good = [t for t in tries if t["total"] is not None]
            best = min(good, key=lambda t: t["total"]) if good else None
            if best:
                self.best_threads[n] = best["threads"]
            results[str(n)] = {"best": best, "tries": tries}
            shown = ", ".join(f"T={t['threads']}: {t['total']}s" for t in tries)
            print(f"bench: floor burst N={n}: {shown}", flush=True)
        return results


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
        name = f"mlpt-b{env.token}-fb{n}x{threads}n{index}-{secrets.token_hex(2)}"
        container_id = _run(proxied, env, image, name)
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
