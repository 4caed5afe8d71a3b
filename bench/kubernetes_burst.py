"""The Kubernetes runner's bench: N MLModels with ``runner: kubernetes`` created at once.

``python -m bench.kubernetes_burst [--n 1000]`` measures, against the bench's emulator
(``kube_workload_api.py``, its own process, a fresh one per system):

- **floor**: a plain client (the official ``kubernetes`` client, raw responses) creating the
  same N Deployments and N Services the runner plans for those models (``plan.plan``), with
  a pool of T threads for each T in ``--threads``; the best total is the floor;
- **operator**: ``mlplatform operator`` (real kopf settings, peering mode, only the Kubernetes
  runner enabled) while N MLModels are POSTed at once (8 threads, as the other operator
  bench): seconds from the first POST until the last Deployment and Service is created (the
  emulator's request log; checked by listing them), and until every MLModel is Ready;
  the ratio to the floor (target: at most 1.5 times);
- the operator's RSS (VmRSS of its process tree, max over the burst and the idle window;
  target < 250 MB at N = 1,000);
- the API requests per minute of the idle operator with 0 models and with N models
  converged (target: flat in N), counted in the emulator's request log over
  ``--idle-window`` seconds (longer than one resync period). Flat means no request about
  one object while idle: only lists (the resync's one listing per runner, and of the
  MLModels once there are workloads to check for orphans) and watch re-connections, whose
  number does not depend on N.

The emulator completes a Deployment's rollout the moment it is written (there is no
controller-manager): see its module. Results go to ``bench/results/kubernetes-<time>/``
(``results.json``, ``results.md``).
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import datetime
import json
import os
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import kubernetes

from bench import procstat
from bench.env import PYTHON, REPO, BenchEnv, Process, wait_until
from mlplatform.config import Settings
from mlplatform.models.spec import MLModelSpec
from mlplatform.runners import base
from mlplatform.runners.kubernetes import plan

NAMESPACE = "bench"
API_VERSION = "mlplatform.dev/v1alpha1"
IMAGE = "registry.example.com/iris:1.0"
MANAGED = f"{base.LABEL_MANAGED_BY}={base.MANAGED_BY}"
TARGET_RATIO = 1.5
TARGET_RSS_MB = 250.0


def manifest(name: str) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "MLModel",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "id": f"{name}:1",
            "runner": "kubernetes",
            "container": {"image": IMAGE, "ports": [8080]},
        },
    }


def names(n: int) -> list[str]:
    return [f"m{i:05d}" for i in range(n)]


class Emulator:
    """One ``kube_workload_api.py`` process, its kubeconfig, URL and request log."""

    def __init__(self, env: BenchEnv, tag: str) -> None:
        self.kubeconfig = env.root / f"kubeconfig-{tag}.json"
        self.request_log = env.root / f"api-requests-{tag}.log"
        self.process, self.url = env.spawn_api(
            f"kube-workload-api-{tag}",
            [
                str(PYTHON),
                str(REPO / "bench" / "kube_workload_api.py"),
                str(self.kubeconfig),
                str(self.request_log),
            ],
            self.kubeconfig,
        )

    def client(self, pool: int) -> Any:
        configuration = kubernetes.client.Configuration()
        configuration.host = self.url
        configuration.connection_pool_maxsize = pool
        return kubernetes.client.ApiClient(configuration)

    def call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.url + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read() or b"null")

    def requests(self, start: float, end: float) -> list[tuple[float, str, str]]:
        found = []
        for line in self.request_log.read_text().splitlines():
            stamp, _, rest = line.partition(" ")
            if start <= float(stamp) < end:
                method, _, path = rest.partition(" ")
                found.append((float(stamp), method, path))
        return found

    def count(self, collection: str) -> int:
        return len(self.call("GET", f"{collection}?labelSelector={MANAGED}")["items"])


def planned(n: int) -> list[plan.KubernetesPlan]:
    settings = Settings.load({})
    made = []
    for index, name in enumerate(names(n)):
        spec = MLModelSpec.model_validate(manifest(name)["spec"])
        owner = base.Owner(NAMESPACE, name, f"00000000-0000-0000-0000-{index:012d}")
        made.append(plan.plan(base.Workload(owner=owner, spec=spec), settings))
    return made


def floor(env: BenchEnv, n: int, threads: int, *, with_posts: bool = False) -> dict[str, float]:
    """Seconds for a plain client to create the runner's N Deployments and N Services, and
    the emulator's CPU seconds meanwhile; ``with_posts``: while the N MLModels are POSTed as
    in the live burst (same load on the emulator, which serves every request on one core)."""
    emulator = Emulator(env, f"floor-{threads}" + ("-posts" if with_posts else ""))
    try:
        client = emulator.client(threads)
        apps = kubernetes.client.AppsV1Api(client)
        core = kubernetes.client.CoreV1Api(client)
        objects = planned(n)

        def create(made: plan.KubernetesPlan) -> None:
            # Plain dicts in, raw responses out (as the runner does).
            deployment: Any = made.deployment
            service: Any = made.service
            apps.create_namespaced_deployment(NAMESPACE, deployment, _preload_content=False)
            core.create_namespaced_service(NAMESPACE, service, _preload_content=False)

        posting = threading.Thread(target=post_models, args=(emulator, n), daemon=True)
        cpu = procstat.cpu_seconds(emulator.process.pid)
        started = time.monotonic()
        if with_posts:
            posting.start()
        with concurrent.futures.ThreadPoolExecutor(threads) as pool:
            for future in [pool.submit(create, made) for made in objects]:
                future.result()
        took = time.monotonic() - started
        cpu = procstat.cpu_seconds(emulator.process.pid) - cpu
        if with_posts:
            posting.join()
        assert emulator.count("/apis/apps/v1/deployments") == n
        assert emulator.count("/api/v1/services") == n
        client.close()
        return {"s": round(took, 2), "emulator_cpu_s": round(cpu, 2)}
    finally:
        emulator.process.stop()


def same_writes(env: BenchEnv, n: int, threads: int) -> dict[str, float]:
    """Seconds for a plain client to make every write the operator makes for N new models,
    with the MLModel POSTs: per model the POST, the Deployment and the Service, the status
    write and the "Created" Event (what the live burst's request log shows), T threads."""
    emulator = Emulator(env, f"same-writes-{threads}")
    try:
        client = emulator.client(threads)
        apps = kubernetes.client.AppsV1Api(client)
        core = kubernetes.client.CoreV1Api(client)
        custom = kubernetes.client.CustomObjectsApi(client)
        group, version = API_VERSION.split("/")

        def write(made: plan.KubernetesPlan) -> None:
            name = made.name
            raw: dict[str, Any] = {"_preload_content": False}
            custom.create_namespaced_custom_object(
                group, version, NAMESPACE, "mlmodels", manifest(name), **raw
            )
            deployment: Any = made.deployment
            service: Any = made.service
            apps.create_namespaced_deployment(NAMESPACE, deployment, **raw)
            core.create_namespaced_service(NAMESPACE, service, **raw)
            custom.patch_namespaced_custom_object_status(
                group, version, NAMESPACE, "mlmodels", name, {"status": _STATUS}, **raw
            )
            event: Any = {
                "metadata": {"generateName": f"{name}.", "namespace": NAMESPACE},
                "involvedObject": {"apiVersion": API_VERSION, "kind": "MLModel", "name": name},
                "type": "Normal",
                "reason": "Created",
                "message": f"Created workload {name}",
                "source": {"component": "bench"},
            }
            core.create_namespaced_event(NAMESPACE, event, **raw)

        cpu = procstat.cpu_seconds(emulator.process.pid)
        started = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(threads) as pool:
            for future in [pool.submit(write, made) for made in planned(n)]:
                future.result()
        took = time.monotonic() - started
        cpu = procstat.cpu_seconds(emulator.process.pid) - cpu
        assert emulator.count("/apis/apps/v1/deployments") == n
        client.close()
        return {"s": round(took, 2), "emulator_cpu_s": round(cpu, 2)}
    finally:
        emulator.process.stop()


# A Ready model's status, as the operator writes it (the size of the write matters, not more).
_STATUS: dict[str, Any] = {
    "phase": "Running",
    "observedGeneration": 1,
    "endpoints": [f"http://model.{NAMESPACE}.svc:8080"],
    "conditions": [
        {
            "type": kind,
            "status": "True",
            "reason": reason,
            "lastTransitionTime": "2026-01-01T00:00:00Z",
        }
        for kind, reason in (
            ("Ready", "Ready"),
            ("Available", "Running"),
            ("ImageReady", "Present"),
        )
    ],
    "runner": {"type": "kubernetes", "workload": "model"},
}


def post_models(emulator: Emulator, n: int) -> float:
    """POST the N MLModels at once (8 threads, as the other operator bench); seconds taken."""
    collection = f"/apis/{API_VERSION}/namespaces/{NAMESPACE}/mlmodels"
    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        for future in [
            pool.submit(emulator.call, "POST", collection, manifest(name)) for name in names(n)
        ]:
            future.result()
    return time.monotonic() - started


class RssSampler:
    """The max RSS of a process tree, sampled every second in a thread."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.max_bytes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.max_bytes = max(self.max_bytes, procstat.rss_bytes(self.pid))
            self._stop.wait(1.0)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.max_bytes / 2**20


class Cpu:
    """CPU seconds of the emulator and the operator from now on."""

    def __init__(self, emulator_pid: int, operator_pid: int) -> None:
        self.pids = (emulator_pid, operator_pid)
        self.start = [procstat.cpu_seconds(pid) for pid in self.pids]

    def taken(self, n: int) -> dict[str, float]:
        emulator, operator = (
            procstat.cpu_seconds(pid) - start
            for pid, start in zip(self.pids, self.start, strict=True)
        )
        return {
            "emulator_cpu_s": round(emulator, 2),
            "operator_cpu_ms_per_model": round(operator * 1000 / n, 2),
        }


def idle(emulator: Emulator, window: float) -> dict[str, Any]:
    started = time.time()
    time.sleep(window)
    seen = emulator.requests(started, started + window)
    kinds = collections.Counter(f"{method} {_shape(path)}" for _, method, path in seen)
    return {
        "window_s": window,
        "requests": len(seen),
        "per_object": sum(1 for _, _, path in seen if _per_model(path)),
        "per_minute": round(len(seen) * 60.0 / window, 1),
        "kinds": dict(kinds.most_common()),
    }


def _per_model(path: str) -> bool:
    """A request about one namespaced object (a model, its Deployment, ...): the kind that
    would grow with N. Lists, watches and kopf's cluster-wide peering object do not."""
    shape = _shape(path)
    return "/namespaces/{ns}/" in shape and shape.endswith(("{name}", "/status"))


def _shape(path: str) -> str:
    """A request path with the object names taken out (``.../deployments/{name}``)."""
    parts = path.split("/")
    for index, part in enumerate(parts[:-1]):
        if part == "namespaces" and index + 1 < len(parts):
            parts[index + 1] = "{ns}"
    if parts[-1] == "status":
        parts = parts[:-1]
        suffix = "/status"
    else:
        suffix = ""
    if len(parts) > 1 and parts[-2] in {
        "deployments",
        "services",
        "mlmodels",
        "pods",
        "persistentvolumeclaims",
        "events",
        "kopfpeerings",
        "clusterkopfpeerings",
    }:
        parts[-1] = "{name}"
    return "/".join(parts) + suffix


def spawn_operator(env: BenchEnv, emulator: Emulator, args: argparse.Namespace) -> Process:
    """``mlplatform operator`` on the emulator (peering mode, only the Kubernetes runner)."""
    environ = env.sut_environ()
    environ.update(
        {
            "KUBECONFIG": str(emulator.kubeconfig),
            "RUNNERS_DOCKER_ENABLED": "false",
            "RUNNERS_KUBERNETES_ENABLED": "true",
        }
    )
    process = env.spawn(
        "mlplatform-operator-kubernetes",
        [
            str(PYTHON),
            "-m",
            "mlplatform",
            "operator",
            "--all-namespaces",
            "--liveness",
            "",
            "--metrics-port",
            "0",
            "--resync-interval",
            str(args.resync_interval),
        ],
        environ,
    )
    # Up: kopf has started watching the MLModels.
    wait_until(
        lambda: _listed_models(emulator, 0.0) is not None or not process.alive(),
        timeout=60,
        what="the operator watching MLModels",
    )
    return process


def _listed_models(emulator: Emulator, since: float) -> float | None:
    """When the operator first listed (or watched) the MLModels after ``since``."""
    for stamp, method, path in emulator.requests(since, time.time() + 1):
        if method == "GET" and path.endswith("/mlmodels"):
            return stamp
    return None


def wait_created(
    emulator: Emulator, process: Process, n: int, since: float, timeout: float
) -> float:
    """Wait until the operator created all N Deployments and Services; the wall-clock time
    of the last create."""

    def creates() -> list[float]:
        return [
            stamp
            for stamp, method, path in emulator.requests(since, time.time() + 1)
            if method == "POST" and path.endswith(("/deployments", "/services"))
        ]

    def created() -> bool:
        if not process.alive():
            raise RuntimeError(f"the operator exited:\n{process.tail()}")
        return len(creates()) >= 2 * n

    wait_until(created, timeout=timeout, interval=0.5, what="all objects created")
    assert emulator.count("/apis/apps/v1/deployments") == n
    assert emulator.count("/api/v1/services") == n
    return max(creates())


def wait_ready(emulator: Emulator, n: int, timeout: float) -> None:
    collection = f"/apis/{API_VERSION}/namespaces/{NAMESPACE}/mlmodels"

    def all_ready() -> bool:
        items = emulator.call("GET", collection)["items"]
        ready = sum(
            1
            for item in items
            if any(
                c.get("type") == "Ready" and c.get("status") == "True"
                for c in (item.get("status") or {}).get("conditions") or []
            )
        )
        return ready == n

    wait_until(all_ready, timeout=timeout, interval=2.0, what="every MLModel Ready")


def requests_by_kind(emulator: Emulator, since: float, until: float) -> dict[str, int]:
    seen = emulator.requests(since, until)
    return dict(collections.Counter(f"{m} {_shape(p)}" for _, m, p in seen).most_common())


def operator(env: BenchEnv, n: int, args: argparse.Namespace) -> dict[str, Any]:
    """The live burst: N MLModels POSTed at once while the operator runs."""
    emulator = Emulator(env, "operator")
    process = spawn_operator(env, emulator, args)
    try:
        time.sleep(args.idle_settle)
        result: dict[str, Any] = {"idle_0": idle(emulator, args.idle_window)}
        rss = RssSampler(process.pid)
        cpu = Cpu(emulator.process.pid, process.pid)
        started_wall = time.time()
        started = time.monotonic()
        result["posted_s"] = round(post_models(emulator, n), 2)
        last = wait_created(emulator, process, n, started_wall, args.timeout)
        result["objects_s"] = round(last - started_wall, 2)
        result.update(cpu.taken(n))
        wait_ready(emulator, n, args.timeout)
        statuses = [
            stamp
            for stamp, method, path in emulator.requests(started_wall, time.time())
            if method == "PATCH" and path.endswith("/status")
        ]
        result["statuses_s"] = round(max(statuses) - started_wall, 2)
        result["ready_s"] = round(time.monotonic() - started, 2)
        kinds = requests_by_kind(emulator, started_wall, time.time())
        result["burst_requests"] = sum(kinds.values())
        result["burst_request_kinds"] = kinds
        time.sleep(args.idle_settle)
        result[f"idle_{n}"] = idle(emulator, args.idle_window)
        result["rss_max_mb"] = round(rss.stop(), 1)
        result["rss_idle_mb"] = round(procstat.rss_bytes(process.pid) / 2**20, 1)
        return result
    finally:
        process.stop()
        emulator.process.stop()


def backlog(env: BenchEnv, n: int, args: argparse.Namespace) -> dict[str, Any]:
    """N MLModels exist at once before the operator starts: from its first listing of them
    until every Deployment and Service exists (its start-up before that is not counted)."""
    emulator = Emulator(env, "backlog")
    process: Process | None = None
    try:
        post_models(emulator, n)
        spawned = time.time()
        process = spawn_operator(env, emulator, args)
        listed = _listed_models(emulator, spawned)
        assert listed is not None
        cpu = Cpu(emulator.process.pid, process.pid)
        last = wait_created(emulator, process, n, listed, args.timeout)
        kinds = requests_by_kind(emulator, listed, last + 0.001)
        return {
            "startup_s": round(listed - spawned, 2),
            "objects_s": round(last - listed, 2),
            "requests": sum(kinds.values()),
            "request_kinds": kinds,
            **cpu.taken(n),  # from a moment after the listing: a little less than it was
        }
    finally:
        if process is not None:
            process.stop()
        emulator.process.stop()


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The Kubernetes runner's targets, as ``report.judge``'s rows (system "kubernetes")."""
    n = results["n"]
    op = results["operator"]
    best = results["floor_best_s"]
    rows: list[dict[str, Any]] = []

    def against(target: str, took: float, floor_s: float, note: str) -> None:
        value = round(took / floor_s, 2)
        rows.append(
            {
                "system": "kubernetes",
                "target": target,
                "measured": value,
                "met": value <= TARGET_RATIO,
                "note": f"{took:.1f} s vs {floor_s:.1f} s; {note}",
            }
        )

    if "floor_with_posts_s" in results:
        against(
            f"live burst of N={n}: all {2 * n} objects ≤ {TARGET_RATIO}x a plain client "
            "under the same MLModel POSTs",
            op["objects_s"],
            results["floor_with_posts_s"],
            "from the first MLModel POST",
        )
    against(
        f"live burst of N={n}: the same ≤ {TARGET_RATIO}x a plain client alone",
        op["objects_s"],
        best,
        f"the {n} MLModel POSTs counted against the operator",
    )
    if "backlog" in results:
        against(
            f"backlog of N={n}: all {2 * n} objects ≤ {TARGET_RATIO}x a plain client",
            results["backlog"]["objects_s"],
            best,
            "from the operator's first listing",
        )
    rows.append(
        {
            "system": "kubernetes",
            "target": f"operator RSS at N={n} < {TARGET_RSS_MB:.0f} MB",
            "measured": op["rss_max_mb"],
            "met": op["rss_max_mb"] < TARGET_RSS_MB,
            "note": "max over the burst and the idle window",
        }
    )
    per_object = op[f"idle_{n}"]["per_object"]
    rows.append(
        {
            "system": "kubernetes",
            "target": "idle API requests flat in N (none about one object)",
            "measured": per_object,
            "met": per_object == 0,
            "note": f"{op['idle_0']['per_minute']}/min at N=0, "
            f"{op[f'idle_{n}']['per_minute']}/min at N={n}",
        }
    )
    return rows


def render(results: dict[str, Any]) -> str:
    n = results["n"]
    op = results["operator"]
    lines = [
        f"# Kubernetes runner bench (N = {n})",
        "",
        f"Run {results['started']} on {results['machine']}.",
        "",
        "| target | measured | met | note |",
        "|---|---|---|---|",
        *(
            f"| {row['target']} | {row['measured']} | {'yes' if row['met'] else 'no'} | "
            f"{row['note']} |"
            for row in targets(results)
        ),
        "",
        "Plain client (official client, raw responses), by threads: "
        + ", ".join(f"{t}: {s:.1f} s" for t, s in results["floor_s"].items())
        + _busy("emulator", results.get("floor_emulator_cpu_s"), results["floor_best_s"])
        + (
            f"; under the MLModel POSTs {results['floor_with_posts_s']:.1f} s"
            + _busy(
                "emulator",
                results.get("floor_with_posts_emulator_cpu_s"),
                results["floor_with_posts_s"],
            )
            if "floor_with_posts_s" in results
            else ""
        )
        + ".",
        "",
        f"Operator, live burst: MLModels POSTed in {op['posted_s']:.1f} s; every MLModel Ready "
        f"after {op['ready_s']:.1f} s; {op['burst_requests']} API requests during the burst "
        f"({op['burst_requests'] / n:.1f} per model, the POST of the MLModel included; the "
        "plain client makes 2)"
        + _busy("emulator", op.get("emulator_cpu_s"), op["objects_s"])
        + _cpu_per_model(op)
        + ".",
    ]
    if "floor_same_writes_s" in results and "statuses_s" in op:
        same = results["floor_same_writes_s"]
        lines += [
            "",
            "The same writes (not a target; what the ratio above is made of): a plain client "
            f"making every write the operator makes for a new model (the MLModel POST, the "
            f"Deployment, the Service, the status, the Event: {5 * n} requests) takes "
            f"{same:.1f} s"
            + _busy("emulator", results.get("floor_same_writes_emulator_cpu_s"), same)
            + f"; the operator's last status write came {op['statuses_s']:.1f} s after the "
            f"first POST: {op['statuses_s'] / same:.2f}x.",
        ]
    if "backlog" in results:
        back = results["backlog"]
        lines += [
            "",
            f"Operator, backlog: started in {back['startup_s']:.1f} s (process start to its "
            f"first listing, not counted); {back['requests']} API requests until the last "
            f"object ({back['requests'] / n:.1f} per model)"
            + _busy("emulator", back.get("emulator_cpu_s"), back["objects_s"])
            + _cpu_per_model(back)
            + ".",
        ]
    lines += ["", "Requests during the live burst, by kind:", ""]
    lines += [f"- {kind}: {count}" for kind, count in op["burst_request_kinds"].items()]
    for key in ("idle_0", f"idle_{n}"):
        lines += ["", f"Idle window {key} ({op[key]['window_s']:.0f} s), by kind:", ""]
        lines += [f"- {kind}: {count}" for kind, count in op[key]["kinds"].items()]
    return "\n".join(lines) + "\n"


def _busy(who: str, cpu_s: float | None, window_s: float) -> str:
    """How busy a process was over a window (its CPU seconds / the window)."""
    if cpu_s is None or window_s <= 0:
        return ""
    return f" ({who} busy {100 * cpu_s / window_s:.0f}% of the window)"


def _cpu_per_model(result: dict[str, Any]) -> str:
    cost = result.get("operator_cpu_ms_per_model")
    return "" if cost is None else f"; operator CPU {cost:.1f} ms per model"


def rerender(folder: Path) -> None:
    """Write ``results.md`` again from ``results.json`` (judged by the current rules)."""
    results = json.loads((folder / "results.json").read_text())
    n = results["n"]
    for key in ("idle_0", f"idle_{n}"):
        window = results["operator"][key]
        window["per_object"] = sum(
            count for kind, count in window["kinds"].items() if _per_model(kind.partition(" ")[2])
        )
    (folder / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (folder / "results.md").write_text(render(results))


def measure(env: BenchEnv, args: argparse.Namespace) -> dict[str, Any]:
    """Every measurement of this bench (``args`` as ``parser`` makes them)."""
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    results: dict[str, Any] = {
        "n": args.n,
        "started": stamp,
        "machine": f"{os.cpu_count()} cores",
        "settings": {k: v for k, v in vars(args).items() if k != "rerender"},
    }
    threads = [int(t) for t in str(args.threads).split(",") if t.strip()]
    floors = {t: floor(env, args.n, t) for t in threads}
    results["floor_s"] = {t: f["s"] for t, f in floors.items()}
    best_threads = min(results["floor_s"], key=results["floor_s"].__getitem__)
    results["floor_best_s"] = floors[best_threads]["s"]
    results["floor_emulator_cpu_s"] = floors[best_threads]["emulator_cpu_s"]
    same = same_writes(env, args.n, best_threads)
    results["floor_same_writes_s"] = same["s"]
    results["floor_same_writes_emulator_cpu_s"] = same["emulator_cpu_s"]
    with_posts = floor(env, args.n, best_threads, with_posts=True)
    results["floor_with_posts_s"] = with_posts["s"]
    results["floor_with_posts_emulator_cpu_s"] = with_posts["emulator_cpu_s"]
    print(f"bench: kubernetes floor {results['floor_s']}", file=sys.stderr, flush=True)
    results["operator"] = operator(env, args.n, args)
    results["backlog"] = backlog(env, args.n, args)
    return results


def parser() -> argparse.ArgumentParser:
    made = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    made.add_argument("--n", type=int, default=1000)
    made.add_argument("--threads", default="8,16,32")
    made.add_argument("--idle-window", type=float, default=70.0)
    made.add_argument("--idle-settle", type=float, default=5.0)
    made.add_argument("--resync-interval", type=float, default=60.0)
    made.add_argument("--timeout", type=float, default=900.0)
    made.add_argument("--rerender", type=Path, help="write results.md of this folder again")
    return made


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.rerender is not None:
        rerender(args.rerender)
        return 0
    env = BenchEnv.create()
    try:
        results = measure(env, args)
    finally:
        env.cleanup()
    folder = REPO / "bench" / "results" / f"kubernetes-{results['started']}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (folder / "results.md").write_text(render(results))
    print(render(results))
    print(f"results in {folder}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
