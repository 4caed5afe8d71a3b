"""Ctrl-C and SIGTERM during ``mlplatform local --once``: one line and 130/143, no traceback."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from mlplatform.local import ownership, writer_lock
from mlplatform.runners.base import LABEL_CONTROLLER
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


def test_after_stopping_watch_mode_writes_nothing_more_and_frees_the_lock_within_a_second(
    local: LocalCli,
) -> None:
    # Issue 23: after "Stopping", watch mode still replaced containers seconds later and
    # held the writer lock meanwhile. A model whose old container takes its whole grace
    # period to stop (it ignores SIGTERM) is being updated; Ctrl-C lands while that stop
    # is under way, the step in flight about to remove it and rename the new one.
    stubborn = {
        "command": ["sh", "-c", "trap '' TERM; while true; do sleep 1; done"],
        "terminationGracePeriodSeconds": 6,
    }
    local.write("a", container=stubborn)
    process = local.start()
    wait_until(lambda: "Watching the manifests for changes" in local.log(), timeout=60)
    old = local.wait_for(lambda found: local.env.model_id("a") in found, timeout=60)
    old_id = old[local.env.model_id("a")]
    events = _ContainerEvents(local)
    try:
        local.write("a", container={**stubborn, "env": [{"name": "V", "value": "2"}]})
        # The old container was asked to stop: the hand-over is in its last steps.
        wait_until(lambda: ("kill", old_id) in events.actions(), timeout=60)
        interrupted = time.time()
        process.send_signal(signal.SIGINT)

        freed = wait_until(lambda: _lock_free(local), timeout=10, interval=0.02)
        released_after = time.time() - interrupted
        assert process.wait(30) == 0
        # The engine ends the stop it was asked for; nothing else happens to the model.
        wait_until(lambda: ("die", old_id) in events.actions(), timeout=30)
        writes = [e for e in events.after(interrupted) if e[0] in _WRITES]
    finally:
        events.close()

    assert freed and released_after <= 1.0, released_after
    assert writes == [], writes
    log = local.log()
    stopping = log.index("Stopping")
    assert "Replaced" not in log[stopping:] and "Traceback" not in log, log[stopping:]
    # The next run finishes the hand-over: one container, the new revision.
    assert local.run("--once").returncode == 0
    assert len(local.by_model()[local.env.model_id("a")]) == 1


# Container events that only a write of ours makes (a stop in flight ends with die/stop).
_WRITES = frozenset({"create", "start", "rename", "destroy", "connect", "disconnect"})


class _ContainerEvents:
    """The engine's events about this session's model containers, read live."""

    def __init__(self, local: LocalCli) -> None:
        self.seen: list[tuple[str, str, float]] = []
        self._stream = local.env.client.events(
            decode=True,
            filters={"label": f"{LABEL_CONTROLLER}={local.env.controller}"},
        )
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        with contextlib.suppress(Exception):  # the stream ends with an error when closed
            for event in self._stream:
                action = str(event.get("Action", "")).split(":")[0]
                subject = str((event.get("Actor") or {}).get("ID", ""))
                self.seen.append((action, subject, int(event["timeNano"]) / 1e9))

    def actions(self) -> list[tuple[str, str]]:
        return [(action, subject) for action, subject, _ in self.seen]

    def after(self, moment: float) -> list[tuple[str, str, float]]:
        return [event for event in self.seen if event[2] >= moment]

    def close(self) -> None:
        self._stream.close()
        self._thread.join(5)


def _lock_free(local: LocalCli) -> bool:
    """Whether a writer lock on the folder can be taken now (it is released at once)."""
    try:
        lock = writer_lock.acquire(ownership.Roots.of([local.folder]))
    except writer_lock.Held:
        return False
    lock.release()
    return True


def test_the_stop_hint_is_a_command_that_removes_the_models_as_printed(
    local: LocalCli, tmp_path: Path
) -> None:
    local.write("a")
    process = local.start()
    local.wait_for(lambda found: local.env.model_id("a") in found, timeout=60)
    wait_until(lambda: "Watching the manifests for changes" in local.log(), timeout=60)
    process.send_signal(signal.SIGINT)
    assert process.wait(30) == 0
    [hint] = [line for line in local.log().splitlines() if "Stopping" in line]
    command = hint.split("remove them with: ", 1)[1].removesuffix(")")

    # Pasted into another shell: another folder, none of the run's variables.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    pasted = subprocess.run(
        ["bash", "-c", command],
        cwd=elsewhere,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert pasted.returncode == 0, (command, pasted.stderr)
    assert local.containers(running=False) == {}
