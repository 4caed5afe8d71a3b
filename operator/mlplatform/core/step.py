"""One reconcile step: the status it builds, the events it tells, the outcome it returns.

``Step`` is the status being built during one reconcile; ``Outcome`` is what the step hands
back to the controller (the whole new status, the events, when to look again). Shared by
the reconcile core's modules: ``reconcile`` (the step itself), ``updates`` (a new revision
behind the serving workload) and ``resync`` (the safety net).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from mlplatform.models import timestamps
from mlplatform.models.status import (
    ConditionType,
    Failure,
    MLModelStatus,
    Phase,
    Reason,
    RunnerDetails,
    set_condition,
)
from mlplatform.runners.base import RunnerStatus, State, Termination


@dataclass(frozen=True)
class Event:
    """Something worth telling the user (a Kubernetes Event, a log line in local mode)."""

    type: Literal["Normal", "Warning"]
    reason: str
    message: str


@dataclass(frozen=True)
class Outcome:
    """The result of one reconcile: the new status, events to post, when to look again."""

    status: MLModelStatus
    requeue_after: float | None = None
    events: tuple[Event, ...] = ()
    # The runner could not be reached: look again with the queue's rate limit (the key's
    # growing back-off and the overall bucket), not after ``requeue_after``.
    rate_limited: bool = False


@dataclass
class Step:
    """The status being built during one reconcile."""

    status: MLModelStatus
    generation: int | None
    now: float  # the reconcile's clock reading
    events: list[Event] = field(default_factory=list)
    # A failure was counted in this step: its BackOff is news. A reconcile during a back-off
    # already announced (woken by the engine's "die" event, a resync) tells nothing new.
    counted_failure: bool = False

    @property
    def at(self) -> str:
        """When, as conditions carry it (to the second, as every Kubernetes condition)."""
        return timestamps.rfc3339(self.now)

    @property
    def failed_at(self) -> str:
        """When, as ``lastFailure.time`` carries it: to the microsecond, for it times the
        back-off (read back after a restart, a stamp cut to the second would end a one-second
        back-off up to a second early)."""
        return timestamps.rfc3339(self.now, digits=6)

    def outcome(self, requeue_after: float | None = None, *, rate_limited: bool = False) -> Outcome:
        return Outcome(self.status, requeue_after, tuple(self.events), rate_limited)

    def condition(
        self, kind: ConditionType, ok: bool | None, reason: Reason, message: str = ""
    ) -> None:
        value: Literal["True", "False", "Unknown"] = (
            "Unknown" if ok is None else "True" if ok else "False"
        )
        self.status.conditions = set_condition(
            self.status.conditions,
            kind,
            value,
            reason,
            message,
            generation=self.generation,
            at=self.at,
        )

    def not_ready(self, phase: Phase, reason: Reason, message: str, *, known: bool = True) -> None:
        self.status.phase = phase
        self.status.message = message
        self.status.endpoints = []
        self.status.debug_endpoints = []
        self.condition(ConditionType.READY, False if known else None, reason, message)

    def counted(self, workload_id: str | None) -> bool:
        """Whether the end of ``workload_id`` is the last failure, counted already."""
        last = self.status.last_failure
        return last is not None and bool(workload_id) and last.workload_id == workload_id

    def exit_failure(
        self, ended: Termination | None, message: str, workload_id: str | None
    ) -> Failure:
        """The ``lastFailure`` of a workload that ended: how (exit code, OOM kill) and when."""
        oom = ended is not None and ended.oom_killed
        return Failure(
            reason=Reason.OOM_KILLED if oom else Reason.CONTAINER_EXITED,
            message=message,
            time=(ended.finished_at if ended is not None else None) or self.failed_at,
            exit_code=ended.exit_code if ended is not None else None,
            oom_killed=oom,
            workload_id=workload_id,
        )

    def count_failure(self, reason: Reason, message: str, *, told: str = "") -> None:
        """One more failure that left no workload behind (image, create, start): counted
        for the back-off, and told (``told``, else ``message``) once while it repeats."""
        last = self.status.last_failure
        repeated = last is not None and last.reason == reason and not last.workload_id
        self.status.consecutive_failures += 1
        self.status.last_failure = Failure(reason=reason, message=message, time=self.failed_at)
        if not repeated:
            self.events.append(Event("Warning", reason.value, told or message))


def runner_details(runner_type: str, observed: RunnerStatus) -> RunnerDetails:
    """``status.runner``: the named facts every runner reports, then the runner's own keys."""
    ended = observed.termination if observed.state == State.EXITED else None
    return RunnerDetails.model_validate(
        {
            **observed.details,
            "type": runner_type,
            "workloadId": observed.workload_id,
            "revision": observed.revision,
            "startedAt": observed.started_at,
            "exitCode": ended.exit_code if ended else None,
            "oomKilled": ended.oom_killed if ended else None,
            "finishedAt": ended.finished_at if ended else None,
        }
    )
