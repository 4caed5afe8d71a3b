"""Whole-lifecycle measurements: one-shot convergence, teardown, and updates under load.

- **one-shot** (local mode only): ``mlplatform local DIR --once`` of N models, process start
  to exit, against the floor: docker-py starting the same N containers 8 at a time until
  each answers HTTP, plus the minimum ready time the core waits before calling a model Ready
  (the floor would have to wait it too to say the same thing).
- **teardown**: N running models removed — ``mlplatform local DIR --down`` (process start to
  exit), or the operator's deletes (DELETE of N objects until their containers are gone) —
  against the floor: docker-py stopping the same kind of containers gracefully, all at once,
  then removing them. The models run busybox ``httpd`` as PID 1, which ignores SIGTERM, so
  every stop costs the whole grace period (10 s, the default of both Docker and the spec):
  the figure says whether stops run one after another or together.
- **update under load**: one model served on its stable endpoint, a client on the models'
  network requesting it 20 times a second (``tests/support/load.py``), then an env change;
  the requests that failed, and the seconds from the change until the model's only container
  is the new one, under its contract name.
"""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import docker
import yaml
from tests.support.load import LoadClient

from bench import stats
from bench.env import BENCH_LABEL, MLPLATFORM, BenchEnv, wait_until
from bench.observe import HTTP_PATH, HTTP_PORT, container_address, wait_http
from bench.systems import manifest
from mlplatform.models.rules import GRACE_PERIOD_DEFAULT_SECONDS
from mlplatform.models.spec import container_name
from mlplatform.runners.base import LABEL_MODEL_ID, MIN_READY_SECONDS

TIMEOUT = 180.0
FLOOR_THREADS = 8
# busybox httpd as PID 1: no SIGTERM handler, so the kernel ignores the signal and a stop
# waits out the grace period, as it does for many real servers.
SLOW_STOP = {"command": ["httpd", "-f", "-p", str(HTTP_PORT), "-h", "/www"]}


def floor_start(
    env: BenchEnv,
    proxied: docker.DockerClient,
    direct: docker.DockerClient,
    image: str,
    names: Sequence[str],
    *,
    command: Sequence[str] | None = None,
) -> tuple[float, list[str]]:
    """Start containers ``names`` FLOOR_THREADS at a time; (seconds until all answer, ids)."""
    started = time.monotonic()
    deadline = started + TIMEOUT

    def one(name: str) -> tuple[str, float]:
        container = proxied.containers.run(
            image,
            entrypoint=list(command) if command else None,
            name=name,
            detach=True,
            network=env.network,
            labels={BENCH_LABEL: env.token},
        )
        address = container_address(direct, str(container.id), env.network, deadline=deadline)
        return str(container.id), wait_http(address, deadline=deadline)

    with concurrent.futures.ThreadPoolExecutor(FLOOR_THREADS) as pool:
        done = list(pool.map(one, names))
    return max(at for _, at in done) - started, [container_id for container_id, _ in done]


def floor_stop_all(proxied: docker.DockerClient, ids: Sequence[str], grace: int) -> float:
    """Stop (``grace`` seconds) and remove every container at once; seconds taken."""
    started = time.monotonic()

    def one(container_id: str) -> None:
        proxied.api.stop(container_id, timeout=grace)
        proxied.api.remove_container(container_id)

    with concurrent.futures.ThreadPoolExecutor(max(1, len(ids))) as pool:
        list(pool.map(one, ids))
    return time.monotonic() - started


def _floor_names(env: BenchEnv, tag: str, n: int) -> list[str]:
    return [f"mlpt-b{env.token}-{tag}{i}" for i in range(n)]


def floor_once(
    env: BenchEnv, proxied: docker.DockerClient, direct: docker.DockerClient, image: str, n: int
) -> dict[str, Any]:
    """The floor of ``--once``: N containers until they answer, plus the minimum ready time."""
    answered, ids = floor_start(env, proxied, direct, image, _floor_names(env, "fonce", n))
    env.remove_containers(direct, models=False)
    return {
        "n": n,
        "threads": FLOOR_THREADS,
        "answered": round(answered, 3),
        "min_ready": MIN_READY_SECONDS,
        "total": round(answered + MIN_READY_SECONDS, 3),
        "started_ids": len(ids),
    }


def floor_teardown(
    env: BenchEnv,
    *,
    proxied: docker.DockerClient,
    direct: docker.DockerClient,
    image: str,
    n: int,
    grace: int = GRACE_PERIOD_DEFAULT_SECONDS,
) -> dict[str, Any]:
    """The floor of a teardown: N slow-stopping containers stopped and removed at once."""
    command = SLOW_STOP["command"]
    _, ids = floor_start(
        env, proxied, direct, image, _floor_names(env, "fdown", n), command=command
    )
    total = floor_stop_all(proxied, ids, grace)
    env.remove_containers(direct, models=False)
    return {"n": n, "grace": grace, "total": round(total, 3)}


def write_manifests(folder: Path, model_ids: Sequence[str], image: str, **container: Any) -> None:
    """One manifest per model in ``folder`` (created)."""
    folder.mkdir(parents=True, exist_ok=True)
    for model_id in model_ids:
        name = model_id.partition(":")[0]
        (folder / f"{name}.yaml").write_text(yaml.safe_dump(manifest(model_id, image, **container)))


def local_oneshot(
    env: BenchEnv,
    proxied: docker.DockerClient,
    direct: docker.DockerClient,
    image: str,
    n: int,
) -> dict[str, Any]:
    """``local --once`` of N models, then ``local --down`` of them, each beside its floor."""
    ids = [env.model_id("oneshot", i) for i in range(n)]
    folder = env.root / f"oneshot-{n}"
    write_manifests(folder, ids, image, **SLOW_STOP)
    result: dict[str, Any] = {"n": n}

    result["once_floor"] = floor_once(env, proxied, direct, image, n)
    once, code = _run_local(env, "local-once", folder, "--once")
    result["once"] = {"total": round(once, 3), "exit_code": code}
    print(f"bench: local --once N={n}: {once:.2f}s (exit {code})", flush=True)
    if code != 0:
        raise RuntimeError(f"mlplatform local --once exited {code}")

    result["down_floor"] = floor_teardown(env, proxied=proxied, direct=direct, image=image, n=n)
    down, code = _run_local(env, "local-down", folder, "--down")
    result["down"] = {"total": round(down, 3), "exit_code": code}
    print(f"bench: local --down N={n}: {down:.2f}s (exit {code})", flush=True)
    left = _containers_of(direct, ids)
    if code != 0 or left:
        raise RuntimeError(f"mlplatform local --down exited {code}, left {len(left)} container(s)")
    return result


def _run_local(env: BenchEnv, name: str, folder: Path, *flags: str) -> tuple[float, int]:
    """Seconds from process start to exit of ``mlplatform local FOLDER FLAGS``, exit code."""
    started = time.monotonic()
    process = env.spawn(name, [str(MLPLATFORM), "local", str(folder), *flags], env.sut_environ())
    code = process.popen.wait(TIMEOUT)
    return time.monotonic() - started, code


def _containers_of(direct: docker.DockerClient, model_ids: Sequence[str]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for model_id in model_ids:
        found += direct.api.containers(all=True, filters={"label": f"{LABEL_MODEL_ID}={model_id}"})
    return found


def updated(direct: docker.DockerClient, model_id: str, marker: str) -> bool:
    """Whether the model's only container runs ``marker``, under its contract name."""
    containers = _containers_of(direct, [model_id])
    if len(containers) != 1 or containers[0]["State"] != "running":
        return False
    attrs = direct.api.inspect_container(containers[0]["Id"])
    if str(attrs["Name"]).lstrip("/") != container_name(model_id):
        return False
    env: list[str] = attrs["Config"]["Env"] or []
    return f"MARK={marker}" in env


def update_under_load(
    env: BenchEnv,
    *,
    direct: docker.DockerClient,
    client_image: str,
    model_id: str,
    stable_host: str,
    change: Any,
) -> dict[str, Any]:
    """Load on ``stable_host`` while ``change()`` sets MARK=1; failures and seconds taken."""
    name = f"mlpt-b{env.token}-load-{model_id.partition(':')[0]}"
    labels = {BENCH_LABEL: env.token}
    with LoadClient(
        direct,
        client_image,
        stable_host,
        HTTP_PORT,
        HTTP_PATH,
        network=env.network,
        name=name,
        labels=labels,
    ) as load:
        load.wait_serving(timeout=30)
        started = time.monotonic()
        change()
        wait_until(
            lambda: updated(direct, model_id, "1"),
            timeout=TIMEOUT,
            interval=0.05,
            what=f"{model_id} updated",
        )
        duration = time.monotonic() - started
        # Keep the load on the model for a moment with only the new container serving.
        settle = time.monotonic() + 1.0
        wait_until(lambda: time.monotonic() > settle, timeout=2.0)
        tally = load.stop()
    return {
        "duration": round(duration, 3),
        "requests": tally.sent,
        "failed": tally.failed,
        "failures": tally.failures[:5],
    }


def summarize_updates(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    return {
        "reps": len(runs),
        "failed": sum(r["failed"] for r in runs),
        "requests": sum(r["requests"] for r in runs),
        "duration": stats.summary([r["duration"] for r in runs]),
        "runs": list(runs),
    }
