"""The four measurements, the same for every system under test (``systems.System``).

Times are wall-clock from the user's action (a manifest written, an object created, a
``docker kill``) until the model's container answers ``GET /health`` from the host.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import os
import shutil
import signal
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import docker

from bench import lifecycle, procstat, stats
from bench.env import BenchEnv, wait_until
from bench.floor import Floor
from bench.observe import Observer
from bench.phases import docker_phases, phases_summary, shape
from bench.systems import System
from mlplatform.models.spec import container_name
from mlplatform.runners.base import LABEL_CONTROLLER, Owner
from mlplatform.runners.docker_plan import stable_alias

TIMEOUT = 180.0


@contextlib.contextmanager
def profiled(env: BenchEnv, pid: int, stage: str, folder: Path | None) -> Iterator[None]:
    """With ``folder``: py-spy samples ``pid`` (CPU, all threads) for the block; the
    collapsed stacks go to ``folder/<stage>.txt`` (flamegraph input; biggest first)."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if folder is None or not Path(spy).exists():
        yield
        return
    folder.mkdir(parents=True, exist_ok=True)
    output = folder / f"{stage}.txt"
    process = env.spawn(
        f"py-spy-{stage}",
        [
            spy,
            "record",
            "--pid",
            str(pid),
            "--format",
            "raw",
            "--rate",
            "200",
            "--nonblocking",
            "--output",
            str(output),
        ],
    )
    try:
        yield
    finally:
        if process.alive():
            os.killpg(process.pid, signal.SIGINT)
            with contextlib.suppress(Exception):
                process.popen.wait(20)
        process.stop()


class Bench:
    """One system under test, its observer and the run's environment."""

    def __init__(
        self,
        env: BenchEnv,
        system: System,
        direct: docker.DockerClient,
        floor: Floor | None,
        profile: Path | None = None,
    ) -> None:
        self.env = env
        self.profile = profile
        self.floor = floor
        self.system = system
        self.direct = direct
        self.observer = Observer(direct, controller=env.controller, network=env.network)
        self._counter = 0

    def new_ids(self, tag: str, count: int) -> list[str]:
        ids = [self.env.model_id(tag, self._counter + i) for i in range(count)]
        self._counter += count
        return ids

    def check_alive(self) -> None:
        if not self.system.process.alive():
            raise RuntimeError(
                f"{self.system.name} exited ({self.system.process.popen.returncode}):\n"
                f"{self.system.process.tail()}"
            )

    def wait_all(self, model_ids: Sequence[str], started: float) -> list[float]:
        """Seconds from ``started`` until each model answers (one waiter thread each)."""
        answered: list[float] = []
        failures: list[str] = []
        lock = threading.Lock()

        def wait(model_id: str) -> None:
            try:
                _, done = self.observer.wait_answering(container_name(model_id), timeout=TIMEOUT)
                with lock:
                    answered.append(done - started)
            except Exception as error:
                with lock:
                    failures.append(f"{model_id}: {error!r}")

        waiters = [threading.Thread(target=wait, args=(m,)) for m in model_ids]
        for waiter in waiters:
            waiter.start()
        for waiter in waiters:
            waiter.join()
        if failures:
            self.check_alive()
            raise RuntimeError(f"{len(failures)} model(s) never answered: {failures[:3]}")
        return answered

    def running_names(self) -> set[str]:
        containers = self.direct.api.containers(
            all=True, filters={"label": f"{LABEL_CONTROLLER}={self.env.controller}"}
        )
        return {n.lstrip("/") for c in containers for n in c["Names"]}

    def remove_and_wait(self, model_ids: Sequence[str]) -> float:
        """Remove the models; seconds until their containers are gone."""
        names = {container_name(m) for m in model_ids}
        started = time.monotonic()
        self.system.remove(model_ids)
        wait_until(
            lambda: not (names & self.running_names()),
            timeout=TIMEOUT,
            interval=0.1,
            what=f"{len(names)} container(s) removed by {self.system.name}",
        )
        return time.monotonic() - started

    # --- the measurements ---------------------------------------------------------------

    def warm_up(self, timeout: float = 60.0) -> float:
        """Start the system; seconds until a first model answers (imports, connections)."""
        started = time.monotonic()
        self.system.start()
        ids = self.new_ids("warm", 1)
        self.system.apply(ids)
        try:
            self.observer.wait_answering(container_name(ids[0]), timeout=timeout)
        except TimeoutError:
            self.check_alive()
            raise
        elapsed = time.monotonic() - started
        self.remove_and_wait(ids)
        return elapsed

    def time_to_running(self, reps: int) -> dict[str, Any]:
        """One model at a time; each repetition paired with a floor start right before it
        (same moment, same background load), so the ratio compares like with like."""
        durations, phases = [], []
        floor_durations, floor_phases = [], []
        for _ in range(reps):
            if self.floor is not None:
                elapsed, spent = self.floor.one()
                floor_durations.append(elapsed)
                floor_phases.append(spent)
            ids = self.new_ids("one", 1)
            wall, started = time.time(), time.monotonic()
            self.system.apply(ids)
            elapsed = self.wait_all(ids, started)[0]
            durations.append(elapsed)
            phases.append(docker_phases(self.env, wall, wall + elapsed, container_name(ids[0])))
            self.remove_and_wait(ids)
        result = stats.summary(durations)
        result["phases"] = phases_summary(phases)
        if floor_durations:
            result["floor_paired"] = stats.summary(floor_durations)
            result["floor_paired"]["phases"] = phases_summary(floor_phases)
        return result

    def burst(self, n: int) -> dict[str, Any]:
        """N models at once; the floor's burst of N (best concurrency) right before it."""
        floor = self.floor.burst(n) if self.floor is not None else None
        ids = self.new_ids(f"burst{n}x", n)
        stage = f"{self.system.name}-burst-{n}"
        helpers = [
            profiled(self.env, pid, f"{stage}-{name}", self.profile)
            for name, pid in self.system.helper_pids().items()
        ]
        with contextlib.ExitStack() as stack:
            stack.enter_context(profiled(self.env, self.system.process.pid, stage, self.profile))
            for helper in helpers:
                stack.enter_context(helper)
            started = time.monotonic()
            self.system.apply(ids)
            answered = self.wait_all(ids, started)
        teardown = self.remove_and_wait(ids)
        return {
            "n": n,
            "total": round(max(answered), 4),
            "per_model": stats.summary(answered),
            "teardown": round(teardown, 3),
            "floor_paired": floor,
        }

    def drift(self, reps: int) -> dict[str, Any]:
        """``docker kill`` each of ``reps`` running models once; seconds to a new answer."""
        ids = self.new_ids("drift", reps)
        self.system.apply(ids)
        self.wait_all(ids, time.monotonic())
        durations = []
        for model_id in ids:
            name = container_name(model_id)
            old = set(self.observer.started_ids(name))
            started = time.monotonic()
            self.direct.api.kill(name)
            try:
                _, done = self.observer.wait_answering(name, exclude=old, timeout=60)
            except TimeoutError:
                self.check_alive()
                raise
            durations.append(done - started)
        self.remove_and_wait(ids)
        return stats.summary(durations)

    def idle(self, sizes: Sequence[int], window: float, settle: float) -> list[dict[str, Any]]:
        """With N models converged and nothing changing: RSS, CPU and Docker requests."""
        results = []
        present: list[str] = []
        for n in sorted(sizes):
            extra = self.new_ids("idle", n - len(present))
            if extra:
                self.system.apply(extra)
                self.wait_all(extra, time.monotonic())
                present += extra
            time.sleep(settle)
            self.check_alive()
            pid = self.system.process.pid
            cpu_before = procstat.cpu_seconds(pid)
            wall_start, mono_start = time.time(), time.monotonic()
            rss_samples = []
            with profiled(self.env, pid, f"{self.system.name}-idle-{n}", self.profile):
                while time.monotonic() - mono_start < window:
                    rss_samples.append(procstat.rss_bytes(pid))
                    time.sleep(min(1.0, max(0.0, window - (time.monotonic() - mono_start))))
            elapsed = time.monotonic() - mono_start
            cpu = procstat.cpu_seconds(pid) - cpu_before
            rss_samples.append(procstat.rss_bytes(pid))
            requests = self.env.requests_between(wall_start, wall_start + elapsed)
            kinds = collections.Counter(f"{m} {shape(p)}" for _, m, p in requests)
            results.append(
                {
                    "n": n,
                    "window": round(elapsed, 2),
                    "rss_mb": round(rss_samples[-1] / 2**20, 1),
                    "rss_max_mb": round(max(rss_samples) / 2**20, 1),
                    "cpu_seconds": round(cpu, 3),
                    "cpu_percent": round(100 * cpu / elapsed, 3),
                    "requests": len(requests),
                    "requests_per_minute": round(len(requests) * 60 / elapsed, 1),
                    "request_kinds": dict(kinds.most_common(8)),
                    "threads": procstat.thread_count(pid),
                }
            )
            print(f"bench: {self.system.name} idle {results[-1]}", flush=True)
        if present:
            self.remove_and_wait(present)
        return results

    def teardown(self, n: int) -> dict[str, Any]:
        """N running models whose servers ignore SIGTERM, removed by the system (local: the
        manifests deleted and pruned; operator: the objects deleted), beside the floor
        stopping as many such containers at once."""
        floor = (
            lifecycle.floor_teardown(
                self.env,
                proxied=self.floor.proxied,
                direct=self.direct,
                image=self.floor.image,
                n=n,
            )
            if self.floor is not None
            else None
        )
        ids = self.new_ids(f"down{n}x", n)
        self.system.apply(ids, **lifecycle.SLOW_STOP)
        self.wait_all(ids, time.monotonic())
        total = self.remove_and_wait(ids)
        return {"n": n, "total": round(total, 3), "floor_paired": floor}

    def updates(self, reps: int, client_image: str) -> dict[str, Any]:
        """An env change of one model under load, ``reps`` times (see ``lifecycle``)."""
        runs = []
        for _ in range(reps):
            (model_id,) = self.new_ids("upd", 1)
            self.system.apply([model_id], env=[{"name": "MARK", "value": "0"}])
            self.wait_all([model_id], time.monotonic())
            owner = Owner(namespace=self.system.namespace, name=model_id.partition(":")[0], uid="")
            runs.append(
                lifecycle.update_under_load(
                    self.env,
                    direct=self.direct,
                    client_image=client_image,
                    model_id=model_id,
                    stable_host=stable_alias(owner),
                    change=functools.partial(
                        self.system.update, model_id, env=[{"name": "MARK", "value": "1"}]
                    ),
                )
            )
            print(f"bench: {self.system.name} update {runs[-1]}", flush=True)
            self.remove_and_wait([model_id])
        return lifecycle.summarize_updates(runs)

    def close(self) -> None:
        self.observer.close()
