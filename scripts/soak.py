#!/usr/bin/env python3
"""Soak ``mlplatform local``: 100 models under random applies, changes, deletes and kills.

    .venv/bin/python scripts/soak.py [--minutes 5] [--models 100] [--crash-minutes 2]

For ``--minutes`` it loops over random actions on the manifests and the engine: apply a new
model, change one (replacing its container), delete one, kill or remove a container. Then
it stops acting and waits for actual == desired: exactly one running container per model
manifest and no other container of its controller. All along it samples the RSS of the
``mlplatform local`` process. Then, unless ``--crash-minutes 0``, it runs one crash-looping
model for that long and counts its container creations (back-off must keep them few).

Everything lives on a private controller, network and folders (``mlpt-`` names) and is
removed at the end. Exits 1 when it did not converge. Prints the figures as JSON last.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.docker_env import CreationCounter, DockerEnv, wait_until  # noqa: E402
from tests.support.images import ensure_test_images  # noqa: E402
from tests.support.local_cli import LocalCli  # noqa: E402


def rss_kib(pid: int) -> int:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def soak(local: LocalCli, *, models: int, minutes: float, seed: int) -> dict[str, object]:
    rng = random.Random(seed)
    names = [f"soak{i}" for i in range(models)]
    desired: set[str] = set()
    version: dict[str, int] = {}
    for name in names:
        local.write(name)
        desired.add(name)
    process = local.start("--workers", "4", resync=10)
    samples: list[tuple[float, int]] = []
    stop = threading.Event()

    def sample() -> None:
        started = time.monotonic()
        while not stop.wait(2.0):
            samples.append((time.monotonic() - started, rss_kib(process.pid)))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    counts = {"apply": 0, "change": 0, "delete": 0, "kill": 0, "remove": 0}
    first_converged = _wait(local, desired, timeout=600)
    deadline = time.monotonic() + minutes * 60
    while time.monotonic() < deadline:
        action = rng.choice(list(counts))
        name = rng.choice(names)
        if action == "apply" and name not in desired:
            local.write(name)
            desired.add(name)
        elif action == "change" and name in desired:
            version[name] = version.get(name, 0) + 1
            local.write(name, container={"env": [{"name": "V", "value": str(version[name])}]})
        elif action == "delete" and name in desired:
            local.remove(name)
            desired.discard(name)
            version.pop(name, None)
        elif action in ("kill", "remove"):
            running = local.managed(running=True)
            if not running:
                continue
            container = rng.choice(running)
            with contextlib.suppress(Exception):  # it may be replaced under our feet
                container.kill() if action == "kill" else container.remove(force=True)
        else:
            continue
        counts[action] += 1
        time.sleep(rng.uniform(0.05, 0.5))
    settle_started = time.monotonic()
    converged = _wait(local, desired, timeout=600)
    settle_seconds = time.monotonic() - settle_started
    stop.set()
    sampler.join(5)
    alive = process.poll() is None
    rss = [value for _, value in samples if value]
    quarter = max(1, len(rss) // 4)
    return {
        "models_desired_at_end": len(desired),
        "actions": counts,
        "faults_injected": counts["kill"] + counts["remove"],
        "first_convergence_ok": first_converged,
        "converged": converged,
        "settle_seconds": round(settle_seconds, 1),
        "process_alive": alive,
        "rss_mib_first_quarter_avg": round(sum(rss[:quarter]) / quarter / 1024, 1) if rss else 0,
        "rss_mib_last_quarter_avg": round(sum(rss[-quarter:]) / quarter / 1024, 1) if rss else 0,
        "rss_mib_max": round(max(rss) / 1024, 1) if rss else 0,
        "rss_samples": len(rss),
    }


def _wait(local: LocalCli, desired: set[str], *, timeout: float) -> bool:
    def converged() -> bool:
        with contextlib.suppress(Exception):  # an engine call failing under load: ask again
            return local.converged(sorted(desired))
        return False

    try:
        wait_until(converged, timeout=timeout, interval=1.0)
    except TimeoutError:
        return False
    return True


def crash_loop(local: LocalCli, *, minutes: float) -> dict[str, object]:
    counter = CreationCounter(local.env, local.env.model_id("soakcrash"))
    local.write(
        "soakcrash", local.images.exit, container={"env": [{"name": "EXIT_CODE", "value": "3"}]}
    )
    time.sleep(minutes * 60)  # the window is the measurement: creations counted in it
    created = counter.close()
    local.remove("soakcrash")
    return {"crash_loop_minutes": minutes, "crash_loop_creations": created}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--models", type=int, default=100)
    parser.add_argument("--crash-minutes", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    images = ensure_test_images()
    with tempfile.TemporaryDirectory(prefix="mlpt-soak-") as tmp:
        root = Path(tmp)
        env = DockerEnv.create(root / "docker")
        folder = root / "manifests"
        folder.mkdir()
        local = LocalCli(env, folder, images)
        try:
            figures = soak(local, models=args.models, minutes=args.minutes, seed=args.seed)
            if args.crash_minutes > 0:
                figures.update(crash_loop(local, minutes=args.crash_minutes))
        finally:
            local.stop_all()
            env.cleanup()
    print(json.dumps(figures, indent=2))
    ok = bool(figures["converged"]) and bool(figures["process_alive"])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
