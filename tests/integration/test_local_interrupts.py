"""Ctrl-C and SIGTERM during ``mlplatform local --once``: one line and 130/143, no traceback."""

from __future__ import annotations

import signal

import pytest

from tests.support.docker_env import wait_until
from tests.support.local_cli import LocalCli

pytestmark = pytest.mark.docker

NEVER_READY = {"readinessProbe": {"httpGet": {"path": "/never-there", "port": 8080}}}


@pytest.mark.parametrize(
    ("sig", "code", "word"),
    [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")],
    ids=["SIGINT", "SIGTERM"],
)
def test_a_signal_during_once_exits_with_its_code_and_one_line(
    local: LocalCli, sig: signal.Signals, code: int, word: str
) -> None:
    local.write("a", container=NEVER_READY)
    process = local.start("--once", "--timeout", "600")
    # The model's container runs (its probe never passes): --once is waiting to converge.
    local.wait_for(lambda found: local.env.model_id("a") in found, timeout=60)
    process.send_signal(sig)
    assert process.wait(60) == code
    log = local.log()
    assert "Traceback" not in log
    assert f"mlplatform local: {word}" in log


def test_signals_in_a_burst_stop_watch_mode_and_leave_the_models_running(
    local: LocalCli,
) -> None:
    # Ctrl-C twice, or once through a wrapper that forwards it (``timeout``, a shell script):
    # a signal lands while the first one is being handled. The process stops once, cleanly.
    local.write("a")
    process = local.start()
    wait_until(lambda: "Watching the manifests for changes" in local.log(), timeout=60)
    local.wait_for(lambda found: local.env.model_id("a") in found, timeout=60)
    for _ in range(200):
        process.send_signal(signal.SIGINT)
        process.send_signal(signal.SIGTERM)
    assert process.wait(30) == 0
    assert "Traceback" not in local.log()
    assert local.env.model_id("a") in local.containers()
