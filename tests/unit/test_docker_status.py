"""A container's engine record in the runner contract's words (pure; the engine's own JSON).

The records are written as ``docker inspect`` returns them and held in docker-py's own
``Container`` model (no client, nothing mocked); what the runner makes of live containers
is proven against the real engine in tests/integration.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from docker.models.containers import Container

from mlplatform.models import timestamps
from mlplatform.models.status import Reason
from mlplatform.runners import base, docker_status

NEVER = "0001-01-01T00:00:00Z"


def container(status: str, **state: Any) -> Container:
    record = {"Status": status, "StartedAt": NEVER, "FinishedAt": NEVER, **state}
    return Container(
        attrs={
            "Id": "c0ffee",
            "Name": "/iris-1.0_abc",
            "State": record,
            "Config": {"Labels": {base.LABEL_SPEC_HASH: "abc"}},
        }
    )


def test_the_time_up_is_read_from_dockers_nanosecond_start_stamp() -> None:
    started = timestamps.rfc3339(time.time() - 30, digits=6)[:-1] + "123Z"  # 9 digits
    up = docker_status.up_for(container("running", StartedAt=started))
    assert 29 < up < 60


def test_a_container_never_started_has_been_up_for_nothing_and_has_no_start_time() -> None:
    created = container("created")
    assert docker_status.up_for(created) == 0.0
    assert docker_status.rollout(created).started_at is None


@pytest.mark.parametrize(
    ("state", "reason"),
    [
        ({"ExitCode": 137, "OOMKilled": True}, "OOMKilled"),
        ({"ExitCode": 3}, "Error"),
        ({"ExitCode": 0, "Error": "mount failed"}, "Error"),
        ({"ExitCode": 0}, "Completed"),
    ],
)
def test_how_a_container_ended_is_told_in_the_words_kubernetes_uses(
    state: dict[str, Any], reason: str
) -> None:
    ended = docker_status.termination(state)
    assert ended.reason == reason
    assert ended.exit_code == state["ExitCode"]
    assert ended.finished_at is None  # no FinishedAt: never a made-up time


def test_a_new_revision_that_ended_is_a_problem_naming_its_exit() -> None:
    finished = "2026-01-02T03:04:05.678901234Z"
    rollout = docker_status.rollout(container("exited", ExitCode=3, FinishedAt=finished))
    assert rollout.problem is not None
    assert rollout.problem.reason == Reason.CONTAINER_EXITED
    assert "iris-1.0_abc exited with code 3" in rollout.problem.message
    assert rollout.termination is not None and rollout.termination.finished_at == finished
    assert (rollout.revision, rollout.workload_id) == ("abc", "c0ffee")


def test_a_starting_new_revision_is_looked_at_again_soon() -> None:
    rollout = docker_status.rollout(container("created"))
    assert rollout.problem is None
    assert rollout.recheck_after == docker_status.ROLLOUT_RECHECK


@pytest.mark.parametrize(
    ("status", "error", "state"),
    [
        ("running", "", base.State.RUNNING),
        ("paused", "", base.State.RUNNING),
        ("created", "", base.State.STARTING),
        ("created", "port is already allocated", base.State.EXITED),
        ("exited", "", base.State.EXITED),
        ("dead", "", base.State.EXITED),
    ],
)
def test_the_engines_states_map_onto_the_contracts(
    status: str, error: str, state: base.State
) -> None:
    assert docker_status.state(status, error=error) is state


def test_a_stopped_containers_last_output_is_one_bounded_line() -> None:
    raw = b"".join(f"line {i}\n".encode() for i in range(30)) + b"\x1b[31mred\x1b[0m\r\n\n"
    kept = docker_status.last_output(raw)
    lines = kept.split(" | ")
    assert len(lines) == docker_status.OUTPUT_LINES
    assert lines[0] == "line 21" and lines[-1] == "[31mred[0m"  # no control characters
    huge = docker_status.last_output(b"x" * 5000 + b"\nTHE END\n")
    assert len(huge) == docker_status.OUTPUT_CHARS
    assert huge.startswith("...") and huge.endswith(" | THE END")
    assert docker_status.last_output(b"") == ""


def test_the_termination_message_is_the_engines_error_else_the_last_output() -> None:
    ran = docker_status.termination({"ExitCode": 3, "Error": ""}, output="Traceback | boom")
    assert ran.message == "Traceback | boom"
    refused = docker_status.termination(
        {"ExitCode": 127, "Error": 'exec: "serve": not found'}, output=""
    )
    assert refused.message == 'exec: "serve": not found'
