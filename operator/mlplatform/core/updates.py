"""Updates: a new revision brought up behind the serving workload, told by ``Updating``.

A runner that keeps serving while it brings a spec change up (the Docker runner's candidate
container, a Kubernetes rolling update) reports the new revision as a ``Rollout`` beside
the serving workload. The reconcile core then:

- keeps a model that was Ready, Ready (the serving workload is not probed against the new
  spec); one that was not is judged as usual (``reconcile``);
- counts each failed attempt at the new revision (a crash, its image, its create) towards
  the new revision's back-off only, never touching the serving workload while it waits;
- says how the update goes in the ``Updating`` condition (True while it runs, with the
  reason: starting, waiting for its probe, failed and when it is retried), and once the
  serving workload runs the current spec, ``Updating`` False ``UpToDate`` with the last
  update's word.
"""

from __future__ import annotations

from mlplatform.core.step import Event, Outcome, Step, runner_details
from mlplatform.models.status import ConditionType, MLModelStatus, Phase, Reason
from mlplatform.runners.base import Action, Rollout, RunnerStatus


def keep_serving(step: Step, applied: RunnerStatus) -> Outcome:
    """A Ready model stays Ready on its serving workload while the update runs behind it."""
    status = step.status
    step.condition(
        ConditionType.CONTAINER_RUNNING, True, Reason.RUNNING, applied.workload_name or ""
    )
    status.endpoints = list(applied.endpoints)
    status.debug_endpoints = list(applied.debug_endpoints)
    status.phase = Phase.RUNNING
    step.condition(
        ConditionType.READY,
        True,
        _kept_reason(status),
        f"{applied.workload_name} keeps serving while the update runs",
    )
    return Outcome(status, None, ())


def record_failure(step: Step, rollout: Rollout) -> None:
    """A new revision that could not start, or ended, is one more failure (once each)."""
    if rollout.problem is not None and rollout.termination is None:
        step.count_failure(
            rollout.problem.reason,
            rollout.problem.message,
            told=f"update: {rollout.problem.message}",
        )
    elif rollout.termination is not None:
        record_exit(step, rollout)


def record_exit(step: Step, rollout: Rollout) -> None:
    """Count the new revision's death once (by its workload id) for its back-off."""
    if step.counted(rollout.workload_id):
        return
    message = rollout.problem.message if rollout.problem else f"{rollout.workload_name} ended"
    failure = step.exit_failure(rollout.termination, message, rollout.workload_id)
    step.status.consecutive_failures += 1
    step.status.last_failure = failure
    step.events.append(Event("Warning", failure.reason.value, f"update: {message}"))


def backing_off(step: Step, runner_type: str, observed: RunnerStatus, wait: float) -> Outcome:
    """Between attempts at a failing new revision: the serving workload stays as it was."""
    step.status.runner = runner_details(runner_type, observed)
    updating_condition(step, observed, wait)
    return step.outcome(max(wait, 0.05))


def updating_condition(step: Step, serving: RunnerStatus, retry_in: float | None) -> None:
    """``Updating`` True: how the new revision behind ``serving`` goes."""
    status = step.status
    rollout = serving.rollout
    keeps = f"{serving.workload_name} keeps serving"
    failure = status.last_failure
    if rollout is not None and rollout.waiting is not None:
        reason, what = rollout.waiting.reason, rollout.waiting.message
    elif rollout is not None and rollout.problem is None:
        reason = Reason.NEW_REVISION_STARTING
        what = rollout.message or "the new revision is starting"
    else:
        # The new revision failed (this time or the last): say why, and when it is retried.
        why = (
            rollout.problem.message
            if rollout is not None and rollout.problem is not None
            else failure.message
            if failure is not None
            else "the new revision failed"
        )
        crash_loop = status.consecutive_failures >= 2
        reason = (
            Reason.CRASH_LOOP
            if crash_loop
            else rollout.problem.reason
            if rollout is not None and rollout.problem is not None
            else failure.reason
            if failure is not None
            else Reason.START_FAILED
        )
        retry = f"; retrying in {retry_in:.0f}s" if retry_in is not None else ""
        what = f"the update failed: {why}{retry} (failure {status.consecutive_failures})"
    message = f"{what}; {keeps}"
    if not status.updating:
        step.events.append(
            Event(
                "Normal",
                "Updating",
                f"Bringing up the new revision behind {serving.workload_name}",
            )
        )
    step.condition(ConditionType.UPDATING, True, reason, message)
    status.message = f"updating: {message}"


def updated(step: Step, applied: RunnerStatus, previous_revision: str | None) -> None:
    """No update runs (any more): the Updating condition says so, and how the last went.

    A replacement for a new revision always leaves its word here (with or without a gap:
    a model whose host ports only one container can bind is replaced in place).
    """
    replaced = (
        applied.action == Action.REPLACED
        and previous_revision is not None
        and applied.revision != previous_revision
    )
    if step.status.condition(ConditionType.UPDATING) is None and not replaced:
        return
    if step.status.updating and applied.action == Action.REPLACED:
        step.events.append(
            Event("Normal", "Updated", f"{applied.workload_name} took over without a gap")
        )
    message = (applied.message if replaced else "") or (
        f"{applied.workload_name} runs the current spec"
    )
    step.condition(ConditionType.UPDATING, False, Reason.UP_TO_DATE, message)


def _kept_reason(status: MLModelStatus) -> Reason:
    """The Ready reason a model keeps while an update runs behind it."""
    ready = status.condition(ConditionType.READY)
    return ready.reason if ready is not None else Reason.RUNNING
