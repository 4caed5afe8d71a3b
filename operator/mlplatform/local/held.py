"""How a model held by a refused manifest is shown: it runs its last valid spec, and why.

A manifest that exists but does not validate holds the models it last declared: their
workloads are neither changed nor removed (``ownership``). The status table and the JSON
still list such a model, with reason ``ManifestRefused`` and a message naming the file and
its first problem, so a user sees both what runs and what to fix.

Two cases. The watcher still has the model's last valid spec in memory: its real status is
shown with that reason and message (``restate``). After a restart or under ``--once`` only
the workload is known (found by its labels): its status is built from what the runner
listed (``observed``) — the phase from the workload's state; readiness, endpoints and start
as last observed for that same workload if a previous status (the status file) says so, else
readiness ``Unknown`` (nothing probed it).
"""

from __future__ import annotations

from mlplatform.models.status import (
    ConditionStatus,
    ConditionType,
    MLModelStatus,
    Phase,
    Reason,
    RunnerDetails,
    set_condition,
)
from mlplatform.runners.base import OwnedWorkload, State

_PHASES = {
    State.RUNNING: Phase.RUNNING,
    State.STARTING: Phase.STARTING,
    State.EXITED: Phase.FAILED,
}


def message(file: str, problem: str) -> str:
    """The status message of a held model."""
    return f"runs its last valid spec; {file} is refused: {problem}"


def restate(status: MLModelStatus, file: str, problem: str) -> MLModelStatus:
    """A kept model's real status, told as held: reason ``ManifestRefused``, the file's
    problem first in the message (what was observed follows), readiness as observed."""
    said = message(file, problem)
    if status.message and status.message != said:
        said = f"{said}; {status.message}"
    ready = status.condition(ConditionType.READY)
    conditions = set_condition(
        list(status.conditions),
        ConditionType.READY,
        ready.status if ready is not None else "Unknown",
        Reason.MANIFEST_REFUSED,
        message(file, problem),
        generation=ready.observed_generation if ready is not None else None,
    )
    return status.model_copy(update={"message": said, "conditions": conditions})


def observed(
    held: OwnedWorkload,
    problem: str,
    *,
    runner: str,
    previous: MLModelStatus | None = None,
) -> MLModelStatus:
    """The status of a held model known only by its workload (after a restart, ``--once``).

    ``previous`` is the status an earlier run wrote (the status file): it counts only when it
    was observed on this very workload, still running.
    """
    file = held.source or "its manifest"
    said = message(file, problem)
    running = held.state == State.RUNNING
    ready: ConditionStatus = "Unknown" if running else "False"
    endpoints: list[str] = []
    started_at: str | None = None
    if (
        running
        and previous is not None
        and previous.runner is not None
        and previous.runner.workload_id == held.workload_id
    ):
        # The same workload, observed by an earlier run: its readiness, endpoints and start.
        last = previous.condition(ConditionType.READY)
        ready = last.status if last is not None else ready
        endpoints = list(previous.endpoints)
        started_at = previous.runner.started_at
    conditions = set_condition([], ConditionType.READY, ready, Reason.MANIFEST_REFUSED, said)
    conditions = set_condition(
        conditions,
        ConditionType.CONTAINER_RUNNING,
        "True" if running else "False",
        Reason.RUNNING
        if running
        else Reason.CONTAINER_EXITED
        if held.state == State.EXITED
        else Reason.CONTAINER_MISSING,
        f"{held.workload_name} ({held.state.value})",
    )
    # The model's counts go on (the status file is read back for them at the next start).
    counts = (
        previous.model_dump(include={"restart_count", "consecutive_failures", "last_failure"})
        if previous is not None
        else {}
    )
    return MLModelStatus(
        **counts,
        phase=_PHASES.get(held.state, Phase.PENDING),
        endpoints=endpoints,
        conditions=conditions,
        runner=RunnerDetails(
            type=runner,
            workloadId=held.workload_id,
            revision=held.revision,
            startedAt=started_at,
        ),
        message=said,
    )
