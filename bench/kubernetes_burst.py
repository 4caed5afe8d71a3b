"""The Kubernetes runner's bench: N MLModels with ``runner: kubernetes``, on a real control plane.

``python -m bench.kubernetes_burst [--n 1000]`` measures, in one run, on the control plane of
``scripts/kube-up.sh`` (kube-apiserver, etcd, kube-controller-manager, kube-scheduler and
kwok's simulated nodes, built from source; ``bench.cluster``), each measurement in a fresh
namespace whose deletion is waited for before the next one starts:

- **(b) the objects floor**: a plain client (the official client's pool, plain JSON in and
  out, as the runner sends them) creating the N Deployments and N Services the runner plans
  for N models (``plan.plan``; without the owner references, as there is no owner), with
  T threads for each T in ``--threads``; the best total is the floor;
- **(a) the same writes**: a plain client making every write the operator makes for a new
  model — the MLModel POST (as the user: admin), then with a token of the operator's
  ServiceAccount the Deployment and the Service (owned by that MLModel), the status write and
  the ``Created`` Event — with T threads for each T, the best kept by its last status write;
  and once more at that T with the N MLModels already there (the backlog's counterpart);
- **the operator** (``mlplatform operator --namespace <ns>``: real kopf settings, its default
  peering mode, only the Kubernetes runner, as its ServiceAccount): the **live burst** — N
  MLModels POSTed at once (8 threads) while it runs: seconds from the first POST until the
  last of its 2N creates, until every model has had its first status write (the write the
  plain client makes once), and **(c)** until every MLModel is Ready (its pod Ready on a
  simulated node, the Deployment available, the operator's status says so); and the
  **backlog** — N MLModels exist, the operator starts: the same, from its first listing of
  them.

Also: the operator's API requests per model by kind, its CPU per model, its RSS (max over
the burst and the idle window; target < 250 MB), and its API requests per minute while idle
with 0 models and with N Ready (``--idle-window``, longer than one resync; flat in N: none
about one model's objects). Requests are read from the API server's audit log, told apart by
the token that made them; CPU from /proc, for the operator, the bench's own process (the
plain client) and each process of the control plane: on 2 cores they share the machine.

Results go to ``bench/results/kubernetes-<time>/`` (``results.json``, ``results.md``).
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import copy
import datetime
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from tests.support.control_plane import is_ready

from bench import procstat
from bench.cluster import (
    COMPONENTS,
    DEPLOYMENTS,
    EVENTS,
    MLMODEL_STATUS,
    MLMODELS,
    SERVICES,
    AuditTail,
    Cluster,
    Cpu,
    Request,
    read,
    server_cpu,
)
from bench.env import PYTHON, REPO, BenchEnv, Process, wait_until
from mlplatform.config import Settings
from mlplatform.models.spec import MLModelSpec
from mlplatform.runners import base
from mlplatform.runners.kubernetes import plan
from mlplatform.runners.kubernetes.rest import MERGE_PATCH, Rest

API_VERSION = "mlplatform.dev/v1alpha1"
IMAGE = "registry.example.com/iris:1.0"
TARGET_SAME_WRITES = 1.25
TARGET_OBJECTS = 1.5
TARGET_RSS_MB = 250.0
POST_THREADS = 8  # the user's N MLModel POSTs, as the other operator bench

T = TypeVar("T")


def manifest(name: str, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "MLModel",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "id": f"{name}:1",
            "runner": "kubernetes",
            "container": {"image": IMAGE, "ports": [8080]},
        },
    }


def names(n: int) -> list[str]:
    return [f"m{i:05d}" for i in range(n)]


def planned(namespace: str, n: int, *, owned: bool) -> list[plan.KubernetesPlan]:
    """The runner's plans for N models; ``owned``: with the owner reference (its uid to be
    filled in with ``own``), else without (a plain object with no owner)."""
    settings = Settings.load({})
    made = []
    for name in names(n):
        spec = MLModelSpec.model_validate(manifest(name, namespace)["spec"])
        owner = base.Owner(namespace, name, "")
        made.append(plan.plan(base.Workload(owner=owner, spec=spec), settings))
    if not owned:
        for one in made:
            for obj in (one.deployment, one.service):
                obj["metadata"].pop("ownerReferences", None)
    return made


def own(one: plan.KubernetesPlan, uid: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The plan's Deployment and Service, owned by the MLModel of that uid."""
    objects = []
    for obj in (one.deployment, one.service):
        made = copy.copy(obj)
        made["metadata"] = {
            **obj["metadata"],
            "ownerReferences": [{**r, "uid": uid} for r in obj["metadata"]["ownerReferences"]],
        }
        objects.append(made)
    return objects[0], objects[1]


def first_status(name: str, namespace: str) -> dict[str, Any]:
    """A new model's first status, as the operator writes it (its size is what matters)."""
    return {
        "phase": "Starting",
        "observedGeneration": 1,
        "message": "waiting for the Deployment controller to observe generation 1",
        "restartCount": 0,
        "consecutiveFailures": 0,
        "endpoints": [],
        "debugEndpoints": [],
        "conditions": [
            {
                "type": kind,
                "status": status,
                "reason": reason,
                "message": message,
                "observedGeneration": 1,
                "lastTransitionTime": "2026-01-01T00:00:00Z",
            }
            for kind, status, reason, message in (
                ("ImageReady", "True", "ImagePresent", IMAGE),
                ("ContainerRunning", "False", "ContainerCreating", ""),
                ("Ready", "False", "ContainerCreating", "waiting for the Deployment controller"),
            )
        ],
        "runner": {
            "type": "kubernetes",
            "deployment": name,
            "service": name,
            "namespace": namespace,
            "replicas": {"available": 0, "desired": 1, "ready": 0, "updated": 0},
            "revision": "0" * 32,
            "workloadId": "00000000-0000-0000-0000-000000000000",
        },
    }


def created_event(name: str, namespace: str, uid: str) -> dict[str, Any]:
    """The ``Created`` Event on the MLModel, as kopf posts it."""
    return {
        "metadata": {"generateName": "kopf-event-", "namespace": namespace},
        "involvedObject": {
            "apiVersion": API_VERSION,
            "kind": "MLModel",
            "name": name,
            "namespace": namespace,
            "uid": uid,
        },
        "type": "Normal",
        "reason": "Created",
        "message": f"Created Deployment {name} and Service {name}",
        "source": {"component": "kopf"},
        "firstTimestamp": "2026-01-01T00:00:00Z",
        "lastTimestamp": "2026-01-01T00:00:00Z",
        "reportingComponent": "kopf",
        "reportingInstance": "dev",
    }


def pooled(threads: int, work: Callable[[T], object], items: Iterable[T]) -> None:
    """``work`` on every item, ``threads`` at a time; the first error is raised."""
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        for future in [pool.submit(work, item) for item in items]:
            future.result()


def post_models(user: Rest, namespace: str, n: int) -> tuple[float, dict[str, str]]:
    """POST the N MLModels at once (8 threads) as the user; seconds taken, uids by name."""
    uids: dict[str, str] = {}

    def post(name: str) -> None:
        made = read(
            user.request(
                "create", MLMODELS, namespace=namespace, body=manifest(name, namespace), timeout=60
            )
        )
        uids[name] = str(made["metadata"]["uid"])

    started = time.monotonic()
    pooled(POST_THREADS, post, names(n))
    return time.monotonic() - started, uids


def _namespace(env: BenchEnv, tag: str) -> str:
    return f"bench-{env.token}-{tag}"


# --- the plain clients ----------------------------------------------------------------------


def floor_objects(
    cluster: Cluster, env: BenchEnv, n: int, threads: int, deletions: dict[str, float]
) -> dict[str, Any]:
    """(b) Seconds for a plain client (a token of the operator's ServiceAccount) to create
    the N Deployments and N Services, T threads; the CPU of every process meanwhile."""
    kubeconfig = cluster.token_kubeconfig(f"plain-objects-{threads}")
    with cluster.namespace(_namespace(env, f"objects-{threads}"), deletions) as namespace:
        client = cluster.rest(kubeconfig, pool=threads)
        objects = planned(namespace, n, owned=False)

        def create(one: plan.KubernetesPlan) -> None:
            for resource, body in ((DEPLOYMENTS, one.deployment), (SERVICES, one.service)):
                read(client.request("create", resource, namespace=namespace, body=body, timeout=60))

        cpu = Cpu(cluster, client=os.getpid())
        started = time.monotonic()
        pooled(threads, create, objects)
        took = time.monotonic() - started
        used = cpu.taken()
        assert cluster.count(cluster.admin, DEPLOYMENTS, namespace) == n
        assert cluster.count(cluster.admin, SERVICES, namespace) == n
        return {"threads": threads, "s": round(took, 2), "cpu_s": used}


def same_writes(
    cluster: Cluster,
    env: BenchEnv,
    n: int,
    threads: int,
    deletions: dict[str, float],
    *,
    posted_before: bool = False,
) -> dict[str, Any]:
    """(a) A plain client making every write the operator makes for N new models, T threads:
    per model the MLModel POST (as the user), then as the operator's ServiceAccount its
    Deployment and Service, its status and the ``Created`` Event. ``posted_before``: the
    MLModels exist before the clock starts (the backlog's counterpart). Seconds until the
    last status write (from the audit log) and until the last write."""
    kubeconfig = cluster.token_kubeconfig(f"plain-writes-{threads}")
    credential = cluster.credential(kubeconfig)
    tag = f"writes-{threads}" + ("-posted" if posted_before else "")
    with cluster.namespace(_namespace(env, tag), deletions) as namespace:
        writer = cluster.rest(kubeconfig, pool=threads)
        user = cluster.rest(pool=threads)
        plans = {one.name: one for one in planned(namespace, n, owned=True)}
        uids: dict[str, str] = {}
        if posted_before:
            _, uids = post_models(cluster.admin, namespace, n)
        tail = cluster.audit()

        def write(name: str) -> None:
            uid = uids.get(name)
            if uid is None:
                model = manifest(name, namespace)
                uid = read(
                    user.request("create", MLMODELS, namespace=namespace, body=model, timeout=60)
                )["metadata"]["uid"]
            deployment, service = own(plans[name], str(uid))
            read(
                writer.request(
                    "create", DEPLOYMENTS, namespace=namespace, body=deployment, timeout=60
                )
            )
            read(writer.request("create", SERVICES, namespace=namespace, body=service, timeout=60))
            read(
                writer.request(
                    "patch",
                    MLMODEL_STATUS,
                    namespace=namespace,
                    name=name,
                    body={"status": first_status(name, namespace)},
                    content_type=MERGE_PATCH,
                    timeout=60,
                )
            )
            read(
                writer.request(
                    "create",
                    EVENTS,
                    namespace=namespace,
                    body=created_event(name, namespace, str(uid)),
                    timeout=60,
                )
            )

        cpu = Cpu(cluster, client=os.getpid())
        started_wall, started = time.time(), time.monotonic()
        pooled(threads, write, names(n))
        took = time.monotonic() - started
        used = cpu.taken()
        cluster.barrier(tail)
        statuses = [r for r in tail.of(credential, started_wall) if _status_write(r)]
        assert len(statuses) == n, f"{len(statuses)} status writes logged, not {n}"
        return {
            "threads": threads,
            "s": round(took, 2),
            "statuses_s": round(max(r.completed for r in statuses) - started_wall, 2),
            "cpu_s": used,
        }


# --- the operator ---------------------------------------------------------------------------


def spawn_operator(
    env: BenchEnv, namespace: str, kubeconfig: Path, args: argparse.Namespace, tag: str
) -> Process:
    """``mlplatform operator`` watching ``namespace`` as its ServiceAccount (peering mode,
    only the Kubernetes runner)."""
    environ = env.sut_environ()
    environ.update(
        {
            "KUBECONFIG": str(kubeconfig),
            "RUNNERS_DOCKER_ENABLED": "false",
            "RUNNERS_KUBERNETES_ENABLED": "true",
        }
    )
    return env.spawn(
        f"mlplatform-operator-{tag}",
        [
            str(PYTHON),
            "-m",
            "mlplatform",
            "operator",
            "--namespace",
            namespace,
            "--liveness",
            "",
            "--metrics-port",
            "0",
            "--resync-interval",
            str(args.resync_interval),
        ],
        environ,
    )


def _alive(process: Process) -> None:
    if not process.alive():
        raise RuntimeError(f"the operator exited:\n{process.tail()}")


def _status_write(request: Request) -> bool:
    return request.verb == "patch" and request.resource == "mlmodels/status"


def _create(request: Request) -> bool:
    return (
        request.verb == "create"
        and request.resource in ("deployments", "services")
        and request.code == 201
    )


def wait_listed(
    tail: AuditTail, credential: str, process: Process, since: float, *, controller: bool
) -> float:
    """Wait until the operator listed the MLModels (``controller``: and its runner watches
    the Deployments: the controller runs); when it first listed them (unix time)."""

    def listed() -> bool:
        _alive(process)
        kinds = {r.kind for r in tail.of(credential, since)}
        return "list mlmodels" in kinds and (not controller or "watch deployments" in kinds)

    wait_until(listed, timeout=120, interval=0.05, what="the operator listing the MLModels")
    return min(r.received for r in tail.of(credential, since) if r.kind == "list mlmodels")


def wait_writes(
    tail: AuditTail, credential: str, process: Process, n: int, *, since: float, timeout: float
) -> dict[str, float]:
    """Wait until the operator created the N Deployments and N Services and wrote every
    model's status once; the unix times of the last create and of the last model's first
    status write."""

    def done() -> bool:
        _alive(process)
        made = tail.of(credential, since)
        return (
            sum(1 for r in made if _create(r)) >= 2 * n
            and len({r.name for r in made if _status_write(r)}) >= n
        )

    wait_until(done, timeout=timeout, interval=0.5, what="the operator's creates and statuses")
    made = tail.of(credential, since)
    firsts: dict[str, float] = {}
    for request in sorted((r for r in made if _status_write(r)), key=lambda r: r.completed):
        firsts.setdefault(request.name, request.completed)
    return {
        "objects": max(r.completed for r in made if _create(r)),
        "statuses": max(firsts.values()),
    }


def wait_ready(cluster: Cluster, namespace: str, n: int, process: Process, timeout: float) -> None:
    """Wait until every MLModel of ``namespace`` is Ready for its generation."""

    def all_ready() -> bool:
        _alive(process)
        listing = read(cluster.admin.request("list", MLMODELS, namespace=namespace, timeout=120))
        return sum(1 for item in listing.get("items") or [] if is_ready(item)) == n

    wait_until(all_ready, timeout=timeout, interval=2.0, what="every MLModel Ready")


def idle(cluster: Cluster, tail: AuditTail, credential: str, window: float) -> dict[str, Any]:
    """The operator's requests over an idle window (a window: nothing to wait for)."""
    started = time.time()
    time.sleep(window)
    cluster.barrier(tail)
    seen = tail.of(credential, started, started + window)
    return {
        "window_s": window,
        "requests": len(seen),
        "per_model": sum(1 for r in seen if r.about_one_model),
        "per_minute": round(len(seen) * 60.0 / window, 1),
        "kinds": dict(collections.Counter(r.kind for r in seen).most_common()),
    }


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


def _burst_requests(requests: Sequence[Request], n: int) -> dict[str, Any]:
    kinds = collections.Counter(r.kind for r in requests)
    failed = collections.Counter(f"{r.kind} {r.code}" for r in requests if r.code >= 400)
    return {
        "requests": len(requests),
        "requests_per_model": round(len(requests) / n, 2),
        "status_writes_per_model": round(sum(1 for r in requests if _status_write(r)) / n, 2),
        "request_kinds": dict(kinds.most_common()),
        "failed": dict(failed.most_common()),
    }


def operator_live(
    cluster: Cluster, env: BenchEnv, n: int, args: argparse.Namespace, deletions: dict[str, float]
) -> dict[str, Any]:
    """The live burst: N MLModels POSTed at once while the operator runs."""
    kubeconfig = cluster.token_kubeconfig("operator-live")
    credential = cluster.credential(kubeconfig)
    with cluster.namespace(_namespace(env, "live"), deletions) as namespace:
        tail = cluster.audit()
        spawned = time.time()
        process = spawn_operator(env, namespace, kubeconfig, args, "live")
        try:
            wait_listed(tail, credential, process, spawned, controller=True)
            time.sleep(args.idle_settle)
            result: dict[str, Any] = {"idle_0": idle(cluster, tail, credential, args.idle_window)}
            rss = RssSampler(process.pid)
            cpu = Cpu(cluster, operator=process.pid, client=os.getpid())
            started_wall, started = time.time(), time.monotonic()
            result["posted_s"] = round(post_models(cluster.admin, namespace, n)[0], 2)
            times = wait_writes(
                tail, credential, process, n, since=started_wall, timeout=args.timeout
            )
            result["cpu_s_until_statuses"] = cpu.taken()
            wait_ready(cluster, namespace, n, process, args.timeout)
            result["ready_s"] = round(time.monotonic() - started, 2)
            ready_wall = time.time()
            result["cpu_s"] = cpu.taken()
            cluster.barrier(tail)
            burst = tail.of(credential, started_wall, ready_wall)
            result.update(
                objects_s=round(times["objects"] - started_wall, 2),
                statuses_s=round(times["statuses"] - started_wall, 2),
                last_status_s=round(
                    max(r.completed for r in burst if _status_write(r)) - started_wall, 2
                ),
                operator_cpu_ms_per_model=round(result["cpu_s"]["operator"] * 1000 / n, 2),
                **_burst_requests(burst, n),
            )
            time.sleep(args.idle_settle)
            result[f"idle_{n}"] = idle(cluster, tail, credential, args.idle_window)
            result["rss_max_mb"] = round(rss.stop(), 1)
            result["rss_idle_mb"] = round(procstat.rss_bytes(process.pid) / 2**20, 1)
            return result
        finally:
            process.stop()


def backlog(
    cluster: Cluster, env: BenchEnv, n: int, args: argparse.Namespace, deletions: dict[str, float]
) -> dict[str, Any]:
    """N MLModels exist before the operator starts: from its first listing of them until
    every Deployment and Service exists, every status was written once, every model is
    Ready (its start-up before the listing is not counted)."""
    kubeconfig = cluster.token_kubeconfig("operator-backlog")
    credential = cluster.credential(kubeconfig)
    with cluster.namespace(_namespace(env, "backlog"), deletions) as namespace:
        post_models(cluster.admin, namespace, n)
        tail = cluster.audit()
        spawned = time.time()
        process = spawn_operator(env, namespace, kubeconfig, args, "backlog")
        try:
            listed = wait_listed(tail, credential, process, spawned, controller=False)
            # From a moment after the listing: the controller starts a second later, when
            # this replica has found itself active in the peering.
            cpu = Cpu(cluster, operator=process.pid, client=os.getpid())
            times = wait_writes(tail, credential, process, n, since=listed, timeout=args.timeout)
            until_statuses = cpu.taken()
            wait_ready(cluster, namespace, n, process, args.timeout)
            ready_wall = time.time()
            used = cpu.taken()
            cluster.barrier(tail)
            burst = tail.of(credential, listed, ready_wall)
            return {
                "startup_s": round(listed - spawned, 2),
                "objects_s": round(times["objects"] - listed, 2),
                "statuses_s": round(times["statuses"] - listed, 2),
                "last_status_s": round(
                    max(r.completed for r in burst if _status_write(r)) - listed, 2
                ),
                "ready_s": round(ready_wall - listed, 2),
                "cpu_s_until_statuses": until_statuses,
                "cpu_s": used,
                "operator_cpu_ms_per_model": round(used["operator"] * 1000 / n, 2),
                **_burst_requests(burst, n),
            }
        finally:
            process.stop()


# --- the report -----------------------------------------------------------------------------


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The Kubernetes runner's targets, as ``report.judge``'s rows (system "kubernetes")."""
    n = results["n"]
    op = results["operator"]
    back = results.get("backlog")
    floor = results["floor"]["best"]
    same = results["same_writes"]["best"]
    same_posted = results.get("same_writes_posted")
    rows: list[dict[str, Any]] = []

    def against(target: str, limit: float, took: float, floor_s: float, note: str) -> None:
        value = round(took / floor_s, 2)
        rows.append(
            {
                "system": "kubernetes",
                "target": target,
                "measured": value,
                "met": value <= limit,
                "note": f"{took:.1f} s vs {floor_s:.1f} s; {note}",
            }
        )

    against(
        f"live burst of N={n}: every model's status written ≤ {TARGET_SAME_WRITES}x a plain "
        "client making the same writes",
        TARGET_SAME_WRITES,
        op["statuses_s"],
        same["statuses_s"],
        f"from the first MLModel POST; plain client at {same['threads']} threads",
    )
    if back is not None and same_posted is not None:
        against(
            f"backlog of N={n}: every model's status written ≤ {TARGET_SAME_WRITES}x the same "
            "writes (MLModels already there)",
            TARGET_SAME_WRITES,
            back["statuses_s"],
            same_posted["statuses_s"],
            "from the operator's first listing",
        )
    against(
        f"live burst of N={n}: all {2 * n} Deployments and Services ≤ {TARGET_OBJECTS}x a "
        "plain client creating only them",
        TARGET_OBJECTS,
        op["objects_s"],
        floor["s"],
        f"the {n} MLModel POSTs counted against the operator; plain client at "
        f"{floor['threads']} threads",
    )
    if back is not None:
        against(
            f"backlog of N={n}: all {2 * n} Deployments and Services ≤ {TARGET_OBJECTS}x a "
            "plain client creating only them",
            TARGET_OBJECTS,
            back["objects_s"],
            floor["s"],
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
    per_model = op[f"idle_{n}"]["per_model"]
    rows.append(
        {
            "system": "kubernetes",
            "target": "idle API requests flat in N (none about one model)",
            "measured": per_model,
            "met": per_model == 0,
            "note": f"{op['idle_0']['per_minute']}/min at N=0, "
            f"{op[f'idle_{n}']['per_minute']}/min at N={n}",
        }
    )
    return rows


_CPU_COLUMNS = (*COMPONENTS, "operator", "client")


def _cpu_row(what: str, wall: float, cpu: dict[str, float]) -> str:
    cells = [f"{cpu[name]:.1f}" if name in cpu else "—" for name in _CPU_COLUMNS]
    server = server_cpu(cpu)
    busy = f" ({100 * server / wall:.0f}% of one core)" if wall > 0 else ""
    return f"| {what} | {wall:.1f} | " + " | ".join(cells) + f" | {server:.1f}{busy} |"


def render(results: dict[str, Any]) -> str:
    n = results["n"]
    op = results["operator"]
    back = results.get("backlog")
    machine = results["machine"]
    floor = results["floor"]
    same = results["same_writes"]
    lines = [
        f"# Kubernetes runner bench (N = {n})",
        "",
        f"Run {results['started']}: {machine['control_plane']}, {machine['cores']} cores; "
        f"load average {machine['load_before']} before, {machine['load_after']} after.",
        "",
        "| target | measured | met | note |",
        "|---|---|---|---|",
        *(
            f"| {row['target']} | {row['measured']} | {'yes' if row['met'] else 'no'} | "
            f"{row['note']} |"
            for row in targets(results)
        ),
        "",
        f"Every MLModel Ready (pods Ready on the simulated nodes, the operator's status says "
        f"so): {op['ready_s']:.1f} s after the first POST in the live burst"
        + (f", {back['ready_s']:.1f} s after the first listing in the backlog" if back else "")
        + ".",
        "",
        "Plain clients (seconds, by threads): objects (b) "
        + ", ".join(f"{t}: {row['s']:.1f}" for t, row in floor["by_threads"].items())
        + "; the same writes (a), until the last status write (the last write) "
        + ", ".join(
            f"{t}: {row['statuses_s']:.1f} ({row['s']:.1f})"
            for t, row in same["by_threads"].items()
        )
        + (
            f"; the same writes with the MLModels already there, at "
            f"{results['same_writes_posted']['threads']} threads: "
            f"{results['same_writes_posted']['statuses_s']:.1f} "
            f"({results['same_writes_posted']['s']:.1f})"
            if results.get("same_writes_posted")
            else ""
        )
        + ".",
        "",
        f"Operator, live burst: MLModels POSTed in {op['posted_s']:.1f} s; all "
        f"{2 * n} objects after {op['objects_s']:.1f} s, every model's first status after "
        f"{op['statuses_s']:.1f} s, its last status write after {op['last_status_s']:.1f} s; "
        f"{op['requests']} API requests until every model was Ready "
        f"({op['requests_per_model']:.1f} per model, {op['status_writes_per_model']:.1f} of "
        f"them status writes); operator CPU {op['operator_cpu_ms_per_model']:.1f} ms per "
        f"model; RSS max {op['rss_max_mb']:.0f} MB, {op['rss_idle_mb']:.0f} MB idle after.",
    ]
    if back is not None:
        lines += [
            "",
            f"Operator, backlog: started in {back['startup_s']:.1f} s (process start to its "
            f"first listing, not counted); all objects after {back['objects_s']:.1f} s, every "
            f"model's first status after {back['statuses_s']:.1f} s, the last status write "
            f"after {back['last_status_s']:.1f} s; {back['requests']} API requests until "
            f"every model was Ready ({back['requests_per_model']:.1f} per model); operator CPU "
            f"{back['operator_cpu_ms_per_model']:.1f} ms per model.",
        ]
    lines += [
        "",
        "Where the time goes: CPU seconds of each process over each measurement (client: "
        "the bench's own process, the plain client's threads):",
        "",
        "| measurement | wall s | " + " | ".join(_CPU_COLUMNS) + " | server total |",
        "|---|---|" + "---|" * len(_CPU_COLUMNS) + "---|",
        _cpu_row(
            f"(b) objects, {floor['best']['threads']} threads",
            floor["best"]["s"],
            floor["best"]["cpu_s"],
        ),
        _cpu_row(
            f"(a) same writes, {same['best']['threads']} threads",
            same["best"]["s"],
            same["best"]["cpu_s"],
        ),
    ]
    if results.get("same_writes_posted"):
        posted = results["same_writes_posted"]
        lines.append(_cpu_row("(a) same writes, MLModels there", posted["s"], posted["cpu_s"]))
    lines += [
        _cpu_row("live burst, until every status", op["statuses_s"], op["cpu_s_until_statuses"]),
        _cpu_row("live burst, until every model Ready", op["ready_s"], op["cpu_s"]),
    ]
    if back is not None:
        lines += [
            _cpu_row(
                "backlog, until every status", back["statuses_s"], back["cpu_s_until_statuses"]
            ),
            _cpu_row("backlog, until every model Ready", back["ready_s"], back["cpu_s"]),
        ]
    lines += ["", "Operator requests during the live burst (until every model Ready), by kind:", ""]
    lines += [f"- {kind}: {count}" for kind, count in op["request_kinds"].items()]
    if op.get("failed"):
        lines += ["", f"Failed: {op['failed']}"]
    if back is not None:
        lines += ["", "During the backlog, by kind:", ""]
        lines += [f"- {kind}: {count}" for kind, count in back["request_kinds"].items()]
    for key in ("idle_0", f"idle_{n}"):
        window = op[key]
        lines += [
            "",
            f"Idle window {key} ({window['window_s']:.0f} s, {window['per_minute']}/min), by kind:",
            "",
        ]
        lines += [f"- {kind}: {count}" for kind, count in window["kinds"].items()]
    if results.get("deletions"):
        lines += [
            "",
            "Namespace deletions waited for between measurements (s): "
            + ", ".join(f"{k}: {v}" for k, v in results["deletions"].items())
            + ".",
        ]
    return "\n".join(lines) + "\n"


def rerender(folder: Path) -> None:
    """Write ``results.md`` again from ``results.json``."""
    results = json.loads((folder / "results.json").read_text())
    (folder / "results.md").write_text(render(results))


def _control_plane(cluster: Cluster) -> str:
    version = json.loads(cluster.plane.kubectl("version", "-o", "json").stdout)
    nodes = json.loads(cluster.plane.kubectl("get", "nodes", "-o", "json").stdout)["items"]
    kubelets = sorted({str(node["status"]["nodeInfo"]["kubeletVersion"]) for node in nodes})
    return (
        f"kube-apiserver {version['serverVersion']['gitVersion']} built from source, "
        f"{len(nodes)} simulated nodes ({', '.join(kubelets)})"
    )


def _best(rows: dict[int, dict[str, Any]], key: str) -> dict[str, Any]:
    return min(rows.values(), key=lambda row: float(row[key]))


def measure(env: BenchEnv, args: argparse.Namespace) -> dict[str, Any]:
    """Every measurement of this bench (``args`` as ``parser`` makes them)."""
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    cluster = Cluster.up(env.root)
    try:
        results: dict[str, Any] = {
            "n": args.n,
            "started": stamp,
            "machine": {
                "cores": os.cpu_count(),
                "load_before": round(os.getloadavg()[0], 2),
                "control_plane": _control_plane(cluster),
            },
            "settings": {k: v for k, v in vars(args).items() if k != "rerender"},
        }
        deletions: dict[str, float] = {}
        results["deletions"] = deletions
        threads = [int(t) for t in str(args.threads).split(",") if t.strip()]
        objects = {t: floor_objects(cluster, env, args.n, t, deletions) for t in threads}
        results["floor"] = {"by_threads": objects, "best": _best(objects, "s")}
        print(f"bench: kubernetes objects floor {objects}", file=sys.stderr, flush=True)
        writes = {t: same_writes(cluster, env, args.n, t, deletions) for t in threads}
        best = _best(writes, "statuses_s")
        results["same_writes"] = {"by_threads": writes, "best": best}
        print(f"bench: kubernetes same writes {writes}", file=sys.stderr, flush=True)
        results["same_writes_posted"] = same_writes(
            cluster, env, args.n, best["threads"], deletions, posted_before=True
        )
        results["operator"] = operator_live(cluster, env, args.n, args, deletions)
        print("bench: kubernetes live burst measured", file=sys.stderr, flush=True)
        results["backlog"] = backlog(cluster, env, args.n, args, deletions)
        results["machine"]["load_after"] = round(os.getloadavg()[0], 2)
        return results
    finally:
        cluster.close()


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
