"""A model whose probe port trickles bytes cannot hold the worker that probes it.

The attack: an image that accepts the probe's connection and sends one byte a second
forever, never finishing its status line. Each read gets a byte well within the socket
timeout, so a probe bounded per read only never ends, and each such model takes one of the
reconcile workers for good: eight of them stop every other model's reconcile. The probe's
whole time is bounded by its ``timeoutSeconds``, as the kubelet's is.
"""

from __future__ import annotations

import concurrent.futures
import time

import pytest

from mlplatform.runners.docker_runner import DockerRunner
from tests.support.docker_env import DockerEnv, wait_until
from tests.support.images import TestImages

pytestmark = pytest.mark.docker

TRICKLE = ["sh", "-c", "nc -ll -p 8080 -e sh -c 'while :; do printf H; sleep 0.5; done'"]
PROBE = {"httpGet": {"path": "/health", "port": 8080}, "timeoutSeconds": 1, "periodSeconds": 1}


def test_eight_trickling_probes_end_within_their_timeout_and_a_ninth_model_gets_ready(
    docker_env: DockerEnv, docker_runner: DockerRunner, test_images: TestImages
) -> None:
    slow = [
        docker_env.workload(
            f"trickle{i}", test_images.client, command=TRICKLE, readinessProbe=PROBE
        )
        for i in range(8)
    ]
    statuses = [docker_runner.apply(workload) for workload in slow]
    # Connected and trickling: the container runs and its port accepts (no refusal).
    for workload, status in zip(slow, statuses, strict=True):
        wait_until(
            lambda w=workload, s=status: "timed out" in docker_runner.probe(w, s).message,  # type: ignore[misc]
            timeout=30,
        )
    # Eight probes at once, as eight workers would run them: all over within the timeout.
    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(docker_runner.probe, slow, statuses))
    took = time.monotonic() - started
    assert all(not r.ok and "timed out after 1s" in r.message for r in results), results
    assert took < 10, took  # bounded by the 1 s timeout; unbounded, they never return

    ninth = docker_env.workload("ninth", test_images.http, readinessProbe=PROBE)
    status = docker_runner.apply(ninth)
    wait_until(lambda: docker_runner.probe(ninth, status).ok, timeout=30)
