"""The mlplatform bench: raw Docker (the floor), ``mlplatform local`` and the operator.

Run it with ``./bench/run.sh [--quick]`` (sets up .venv, the bench extra and the test images
first). Results go to ``bench/results/<timestamp>/`` and ``bench/results/latest/``: JSON, a
Markdown report and PNG plots. See ``bench/README.md`` for what is measured and how.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import os
import platform
import shutil
import signal
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
from tests.support.images import ensure_test_images

from bench import kubernetes_burst, lifecycle, report
from bench.env import REPO, BenchEnv
from bench.floor import Floor
from bench.scenarios import Bench
from bench.systems import LocalMode, OperatorMode, System

RESULTS = REPO / "bench" / "results"


@dataclass(frozen=True)
class Plan:
    """How much to measure: the full run or a quick one (< 5 minutes)."""

    reps: int
    floor_bursts: tuple[int, ...]
    floor_threads: tuple[int, ...]
    bursts: tuple[int, ...]
    drift_reps: int
    idle_sizes: tuple[int, ...]
    idle_window: float
    idle_settle: float
    lifecycle_n: int = 50  # local --once / --down and teardown (0: skip)
    update_reps: int = 3  # updates under load (0: skip)
    kubernetes_n: int = 1000  # the Kubernetes runner's burst against the emulator (0: skip)
    kubernetes_idle_window: float = 70.0


FULL = Plan(10, (10, 50, 100), (2, 4, 8), (10, 50, 100), 10, (0, 50, 200), 60.0, 5.0)
QUICK = Plan(5, (10, 20), (4, 8), (10, 20), 5, (0, 20), 31.0, 2.0, 50, 2, 200, 31.0)


def _sizes(text: str) -> tuple[int, ...]:
    return tuple(int(n) for n in text.split(",") if n.strip())


def _overridden(plan: Plan, args: argparse.Namespace) -> Plan:
    changes: dict[str, Any] = {}
    if args.reps is not None:
        changes["reps"] = args.reps
    if args.bursts is not None:
        changes["bursts"] = changes["floor_bursts"] = _sizes(args.bursts)
    if args.drift_reps is not None:
        changes["drift_reps"] = args.drift_reps
    if args.idle_sizes is not None:
        changes["idle_sizes"] = _sizes(args.idle_sizes)
    if args.idle_window is not None:
        changes["idle_window"] = args.idle_window
    if args.lifecycle_n is not None:
        changes["lifecycle_n"] = args.lifecycle_n
    if args.update_reps is not None:
        changes["update_reps"] = args.update_reps
    return dataclasses.replace(plan, **changes)


def machine(client: docker.DockerClient, token: str) -> dict[str, Any]:
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.partition(":")[2].strip()
            break
    memory_kb = int(Path("/proc/meminfo").read_text().split()[1])
    others = [c for c in client.api.containers() if not any(token in n for n in c.get("Names", []))]
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(memory_kb / 2**20, 1),
        "kernel": f"{platform.system()} {platform.release()}",
        "docker": client.version().get("Version"),
        "python": platform.python_version(),
        "load_before": round(os.getloadavg()[0], 2),
        "other_containers": len(others),
    }


def measure_system(
    env: BenchEnv,
    system: System,
    direct: docker.DockerClient,
    *,
    floor: Floor | None,
    plan: Plan,
    profile: Path | None,
    client_image: str,
) -> dict[str, Any]:
    result: dict[str, Any] = {"status": "measured"}
    bench = Bench(env, system, direct, floor, profile)
    try:
        result["warm_up"] = round(bench.warm_up(), 3)
        print(f"bench: {system.name} up, first model in {result['warm_up']}s", flush=True)
        if plan.reps:
            result["time_to_running"] = bench.time_to_running(plan.reps)
            print(f"bench: {system.name} time to running {result['time_to_running']}", flush=True)
        result["burst"] = {}
        for n in plan.bursts:
            result["burst"][str(n)] = bench.burst(n)
            print(
                f"bench: {system.name} burst N={n} {result['burst'][str(n)]['total']}s", flush=True
            )
        if plan.drift_reps:
            result["drift"] = bench.drift(plan.drift_reps)
            print(f"bench: {system.name} drift {result['drift']}", flush=True)
        result["idle"] = bench.idle(plan.idle_sizes, plan.idle_window, plan.idle_settle)
        if plan.lifecycle_n:
            result["teardown"] = bench.teardown(plan.lifecycle_n)
            print(f"bench: {system.name} teardown {result['teardown']}", flush=True)
        if plan.update_reps:
            result["updates"] = bench.updates(plan.update_reps, client_image)
    except Exception as error:
        traceback.print_exc()
        measured = any(k != "status" for k in result)
        result["status"] = "partial" if measured else "not measured"
        result["reason"] = f"{type(error).__name__}: {str(error)[:500]}"
        result["log_tail"] = system.process.tail(20) if _started(system) else ""
    finally:
        bench.close()
        system.stop()
        env.remove_containers(direct)
    return result


def _oneshot(
    env: BenchEnv, proxied: docker.DockerClient, direct: docker.DockerClient, image: str, n: int
) -> dict[str, Any]:
    try:
        return lifecycle.local_oneshot(env, proxied, direct, image, n)
    except Exception as error:
        traceback.print_exc()
        return {"n": n, "reason": f"{type(error).__name__}: {str(error)[:500]}"}
    finally:
        env.remove_containers(direct)


def _started(system: System) -> bool:
    try:
        return system.process is not None
    except AssertionError:
        return False


def _link_latest(folder: Path) -> None:
    """``bench/results/latest`` → ``folder``: a link, not a copy, and not tracked by git (a
    run is committed once, under its own name, when the write-up quotes it)."""
    latest = RESULTS / "latest"
    if latest.is_symlink() or latest.is_file():
        latest.unlink()
    elif latest.exists():
        shutil.rmtree(latest)
    latest.symlink_to(folder.name)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="smaller N, shorter windows (< 5 min)")
    parser.add_argument(
        "--systems",
        default="floor,local,operator,kubernetes",
        help="comma-separated subset of floor,local,operator,kubernetes (default: all)",
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="results folder (default: timestamped)"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="sample the systems with py-spy during bursts and idle windows (adds load)",
    )
    parser.add_argument("--reps", type=int, help="override: time-to-running repetitions (0: skip)")
    parser.add_argument("--bursts", help="override: comma-separated burst sizes ('' : skip)")
    parser.add_argument("--drift-reps", type=int, help="override: drift repetitions (0: skip)")
    parser.add_argument("--idle-sizes", help="override: comma-separated idle N ('' : skip)")
    parser.add_argument("--idle-window", type=float, help="override: idle window seconds")
    parser.add_argument(
        "--lifecycle-n", type=int, help="override: N of --once/--down and teardown (0: skip)"
    )
    parser.add_argument("--update-reps", type=int, help="override: updates under load (0: skip)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    selected = set(args.systems.split(","))
    plan = _overridden(QUICK if args.quick else FULL, args)
    started_at = datetime.datetime.now(datetime.UTC)
    stamp = started_at.strftime("%Y%m%dT%H%M%SZ")
    folder = args.out or RESULTS / (stamp + ("-quick" if args.quick else ""))

    images = ensure_test_images()
    env = BenchEnv.create()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally below
    begun = time.monotonic()
    results: dict[str, Any] = {
        "started": started_at.isoformat(timespec="seconds"),
        "mode": "quick" if args.quick else "full",
        "plan": plan.__dict__,
        "image": images.http,
        "systems": {},
    }
    try:
        env.start_proxy()
        direct = env.direct_client()
        proxied = env.proxied_client()
        results["machine"] = machine(direct, env.token)
        env.ensure_network(direct)
        floor = Floor(env, proxied, direct, images.http) if "floor" in selected else None
        if floor is not None:
            print("bench: floor (docker-py)", flush=True)
            results["floor"] = {
                "time_to_running": floor.time_to_running(plan.reps) if plan.reps else {},
                "burst": floor.find_best(plan.floor_bursts, plan.floor_threads),
            }
            print(f"bench: floor time to running {results['floor']['time_to_running']}", flush=True)
        for name, make in (("local", LocalMode), ("operator", OperatorMode)):
            if name in selected:
                print(f"bench: {name}", flush=True)
                results["systems"][name] = measure_system(
                    env,
                    make(env, images.http),
                    direct,
                    floor=floor,
                    plan=plan,
                    profile=folder / "profiles" if args.profile else None,
                    client_image=images.client,
                )
            if name == "local" and name in selected and plan.lifecycle_n:
                # With the watcher stopped: --once and --down are processes of their own.
                results["systems"]["local"]["oneshot"] = _oneshot(
                    env, proxied, direct, images.http, plan.lifecycle_n
                )
        if "kubernetes" in selected and plan.kubernetes_n:
            print(f"bench: kubernetes runner, N = {plan.kubernetes_n}", flush=True)
            results["kubernetes"] = kubernetes_burst.measure(
                env,
                kubernetes_burst.parser().parse_args(
                    [
                        f"--n={plan.kubernetes_n}",
                        f"--idle-window={plan.kubernetes_idle_window}",
                        f"--idle-settle={plan.idle_settle}",
                        f"--resync-interval={plan.kubernetes_idle_window - 1}",
                    ]
                ),
            )
    finally:
        env.cleanup()
    results["machine"]["load_after"] = round(os.getloadavg()[0], 2)
    results["duration"] = round(time.monotonic() - begun, 1)
    report.write(results, folder)
    print((folder / "results.md").read_text())
    if args.out is None:  # a run into a folder of one's choosing is not "the latest"
        _link_latest(folder)
        print(f"bench: results in {folder} (bench/results/latest links to it)", flush=True)
    else:
        print(f"bench: results in {folder}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
