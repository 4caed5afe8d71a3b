"""Two operator replicas with kopf's peering on the real API server: one works, one waits.

A standby replica runs no controller: no worker, no resync, no runner watch. Both replicas
are real ``mlplatform operator`` processes; the standby gets a one-second resync so that a
controller running where it must not would show within the test. What each replica did is
read from outside: its reconcile counter (``/metrics``) and the API server's own count of
open watches by resource.
"""

from __future__ import annotations

import re
import signal
import time
from typing import Any

import yaml

from tests.cluster.conftest import ClusterTest, free_port
from tests.support.control_plane import ControlPlane, OperatorProcess, is_ready, mlmodel, wait_until
from tests.support.docker_env import http_get

RUNNER_ENV = {"RUNNERS_KUBERNETES_ENABLED": "true", "RUNNERS_DOCKER_ENABLED": "false"}
LIFETIME = 8  # --peering-lifetime: how long a dead replica's record blocks the standby


def spec(model_id: str) -> dict[str, Any]:
    return {
        "id": model_id,
        "runner": "kubernetes",
        "container": {"image": "registry.example.com/iris:1.0", "ports": [8080]},
    }


def apply(cluster: ClusterTest, name: str) -> None:
    obj = mlmodel(name, cluster.namespace, spec(f"{name}:1"))
    cluster.plane.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(obj))


def replica(cluster: ClusterTest, *, resync: str = "30") -> tuple[OperatorProcess, int]:
    metrics = free_port()
    process = cluster.operator(
        RUNNER_ENV,
        standalone=False,
        args=[
            "--peering", f"test-{cluster.namespace}",
            "--peering-lifetime", str(LIFETIME),
            "--metrics-port", str(metrics),
            "--resync-interval", resync,
        ],
    )  # fmt: skip
    return process, metrics


def counted(metrics: int, name: str) -> float:
    """The sum of a counter's samples on the replica's /metrics (0 when it has none yet)."""
    text = http_get(f"http://127.0.0.1:{metrics}/metrics") or ""
    pattern = r"^" + name + r"(\{[^}]*\})? (\S+)$"
    return sum(float(value) for _, value in re.findall(pattern, text, re.M))


def reconciles(metrics: int) -> float:
    return counted(metrics, "mlplatform_reconcile_total")


def resyncs(metrics: int) -> float:
    return counted(metrics, "mlplatform_resyncs_total")


def open_watches(plane: ControlPlane, resource: str) -> float:
    """The API server's count of open WATCH requests on ``resource`` (all clients)."""
    text = plane.kubectl("get", "--raw", "/metrics").stdout
    pattern = (
        r'^apiserver_longrunning_requests\{[^}]*resource="' + resource + r'"[^}]*verb="WATCH"'
        r"[^}]*\} (\S+)$"
    )
    return sum(float(v) for v in re.findall(pattern, text, re.M))


def test_a_standby_replica_runs_no_controller_and_takes_over_promptly_after_a_clean_stop(
    cluster: ClusterTest,
) -> None:
    active, active_metrics = replica(cluster, resync="1")
    wait_until(lambda: "This replica is the active one" in active.output(), timeout=30,
               what="the first replica active")  # fmt: skip
    apply(cluster, "first")
    cluster.plane.wait_for("mlmodel", cluster.namespace, "first", is_ready, timeout=60)
    watches_before = open_watches(cluster.plane, "deployments")

    standby, standby_metrics = replica(cluster, resync="1")
    wait_until(lambda: "Waiting to be the active replica" in standby.output(), timeout=30,
               what="the second replica waiting")  # fmt: skip
    apply(cluster, "second")
    cluster.plane.wait_for("mlmodel", cluster.namespace, "second", is_ready, timeout=60)
    # Three resyncs by the active replica: as long as the standby had to show a controller
    # of its own (both resync every second).
    mark = resyncs(active_metrics)
    wait_until(lambda: resyncs(active_metrics) >= mark + 3, timeout=30,
               what="three resyncs on the active replica")  # fmt: skip
    assert resyncs(standby_metrics) == 0, standby.output()[-3000:]
    assert reconciles(standby_metrics) == 0
    assert "starting the controller" not in standby.output()
    assert open_watches(cluster.plane, "deployments") == watches_before

    # A clean stop removes the active replica's record: the standby takes over at once.
    stopped = time.monotonic()
    assert active.stop() == 0
    wait_until(lambda: "This replica is the active one" in standby.output(), timeout=10,
               what="the standby taking over")  # fmt: skip
    took = time.monotonic() - stopped
    apply(cluster, "third")
    cluster.plane.wait_for("mlmodel", cluster.namespace, "third", is_ready, timeout=60)
    assert reconciles(standby_metrics) > 0
    print(f"take-over after a clean stop: {took:.1f} s")


def test_when_the_active_replica_dies_the_standby_takes_over_within_the_peering_lifetime(
    cluster: ClusterTest,
) -> None:
    active, _ = replica(cluster)
    wait_until(lambda: "This replica is the active one" in active.output(), timeout=30,
               what="the first replica active")  # fmt: skip
    standby, _ = replica(cluster)
    wait_until(lambda: "Waiting to be the active replica" in standby.output(), timeout=30,
               what="the second replica waiting")  # fmt: skip
    killed = time.monotonic()
    active.stop(signal.SIGKILL)
    wait_until(lambda: "This replica is the active one" in standby.output(),
               timeout=LIFETIME + 10, what="the standby taking over")  # fmt: skip
    took = time.monotonic() - killed
    assert took <= LIFETIME + 3, took  # the record's lifetime, plus one look at the peering
    apply(cluster, "after")
    cluster.plane.wait_for("mlmodel", cluster.namespace, "after", is_ready, timeout=60)
    print(f"take-over after SIGKILL: {took:.1f} s (lifetime {LIFETIME} s)")
