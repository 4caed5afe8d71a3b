"""The reconcile core: one level-based, idempotent step from observed state to desired state.

``Reconciler.reconcile`` reads what the runner sees, converges it to the spec (create,
replace, remove, or wait out a back-off), and returns the whole new status, the events worth
telling a user, and when to look again. It does not care what woke it — a create, an
update, a Docker event or a resync all lead to the same step. It knows nothing of kopf or of
files: the operator and local mode are thin adapters around it.

The back-off state (consecutive failures, last failure) lives in the status, so it survives
a restart of the process that runs the loop.

Beside it: ``step`` (the status being built, the outcome), ``updates`` (a new revision
brought up behind the serving workload: the ``Updating`` condition) and ``resync`` (the
safety net for missed events, orphans, one workload per owner).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping

from mlplatform import errors
from mlplatform.core import resync, updates
from mlplatform.core.backoff import BackoffPolicy
from mlplatform.core.metrics import Metrics
from mlplatform.core.resync import Resync
from mlplatform.core.step import Event, Outcome, Step, runner_details
from mlplatform.models import timestamps
from mlplatform.models.status import ConditionType, MLModelStatus, Phase, Reason, RunnerDetails
from mlplatform.runners.base import (
    MIN_READY_SECONDS,
    Action,
    OwnedWorkload,
    Problem,
    Runner,
    RunnerStatus,
    State,
    Workload,
)

# The reconcile's results, imported from here by the controller and the front ends.
__all__ = [
    "DEBUG_RETRY",
    "FORBIDDEN_RETRY",
    "MIN_READY",
    "PROBLEM_RETRY",
    "STARTING_RETRY",
    "UNAVAILABLE_RETRY",
    "Event",
    "Outcome",
    "Reconciler",
    "Resync",
    "RunnerFor",
]

# How soon to look again when the runner is unreachable, while a workload is starting, and
# while the runner reports a problem it works on by itself (unschedulable, pull failing).
UNAVAILABLE_RETRY = 5.0
STARTING_RETRY = 1.0
PROBLEM_RETRY = 5.0
# How soon to look again when the runner may not make a request (an administrator grants
# it: no hurry, and no load on the API server while nobody has).
FORBIDDEN_RETRY = 30.0
# How soon a model waiting for debug ports held by another looks again (the holder may have
# let them go: it stopped asking, or went).
DEBUG_RETRY = 5.0
# A workload counts as running (and may be Ready) once it has stayed up this long (the
# runner contract's minimum ready time, as Kubernetes' minReadySeconds).
MIN_READY = MIN_READY_SECONDS

RunnerFor = Callable[[str], Runner]


class Reconciler:
    """Converges one model at a time; safe to call from several threads for different models."""

    def __init__(
        self,
        runner_for: RunnerFor,
        *,
        backoff: BackoffPolicy | None = None,
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.time,
        min_ready: float = MIN_READY,
    ) -> None:
        self._runner_for = runner_for
        self.min_ready = min_ready
        self.backoff = backoff or BackoffPolicy()
        self.metrics = metrics or Metrics()
        self._clock = clock

    # --- reconcile ------------------------------------------------------------------

    def reconcile(
        self, workload: Workload, *, generation: int | None, previous: MLModelStatus | None
    ) -> Outcome:
        """Converge ``workload``; ``previous`` is the status last written for it."""
        started = time.monotonic()
        result = "error"
        try:
            outcome = self._reconcile(workload, generation, previous or MLModelStatus())
            result = "requeue" if outcome.requeue_after is not None else "ok"
            self.metrics.set_phase(workload.owner.key, outcome.status.phase)
            return outcome
        finally:
            self.metrics.reconciles.labels(result=result).inc()
            self.metrics.duration.observe(time.monotonic() - started)

    def refuse(
        self, *, key: str, generation: int | None, previous: MLModelStatus | None, message: str
    ) -> Outcome:
        """The status of a model whose spec breaks a rule (nothing is run for it)."""
        previous = previous or MLModelStatus()
        status = previous.model_copy(deep=True)
        status.observed_generation = generation
        step = Step(status=status, generation=generation, now=self._clock())
        step.not_ready(Phase.FAILED, Reason.INVALID_SPEC, f"invalid spec: {message}")
        if previous.message != status.message:
            step.events.append(Event("Warning", Reason.INVALID_SPEC.value, status.message))
        self.metrics.set_phase(key, status.phase)
        return step.outcome()

    def _reconcile(
        self, workload: Workload, generation: int | None, previous: MLModelStatus
    ) -> Outcome:
        now = self._clock()
        status = previous.model_copy(deep=True)
        new_generation = generation != previous.observed_generation
        status.observed_generation = generation
        if new_generation:
            # A new spec gets a fresh start, as the kubelet resets back-off on a pod change.
            status.consecutive_failures = 0
        step = Step(status=status, generation=generation, now=now)
        spec = workload.spec
        try:
            runner = self._runner_for(spec.runner)
            if spec.suspend:
                return self._suspend(step, runner, workload)
            outcome = self._run(step, runner, workload)
        except errors.RunnerError as error:
            return self._failed(step, error)
        outcome = _waiting_for_debug_ports(outcome)
        # A runner that names the workload after its owner (Kubernetes: the Deployment is
        # the MLModel's name) never holds two for one owner: an id change patches the one in
        # place, and there is nothing to retire (nor a listing of every workload to pay).
        if _became_running(previous, outcome.status, new_generation) and not getattr(
            runner, "one_workload_per_owner", False
        ):
            try:
                retired = resync.retire_old_ids(runner, workload, outcome.status)
            except errors.RunnerError:
                # The model runs; the old workload goes at the next look (or the resync).
                retry = min(outcome.requeue_after or UNAVAILABLE_RETRY, UNAVAILABLE_RETRY)
                return Outcome(outcome.status, retry, outcome.events)
            return Outcome(outcome.status, outcome.requeue_after, (*outcome.events, *retired))
        return outcome

    def _suspend(self, step: Step, runner: Runner, workload: Workload) -> Outcome:
        """Apply the suspended workload: the runner decides what suspended means.

        The Docker runner removes the container; the Kubernetes runner scales its Deployment
        to 0 and keeps the Service and the claim. Storage is kept either way.
        """
        applied = runner.apply(workload)
        name = applied.workload_name
        if applied.action == Action.REMOVED:
            step.events.append(Event("Normal", "Removed", f"Removed workload {name} (suspended)"))
        elif applied.action != Action.NONE:
            step.events.append(
                Event("Normal", "Suspended", f"Suspended workload {name}: {applied.message}")
            )
        # Nothing runs: the runner type and its own words on the suspended workload only.
        step.status.runner = RunnerDetails.model_validate({**applied.details, "type": runner.type})
        step.status.consecutive_failures = 0
        message = f"suspended: {applied.message or 'workload removed, storage kept'}"
        step.not_ready(Phase.STOPPED, Reason.SUSPENDED, message)
        step.condition(ConditionType.CONTAINER_RUNNING, False, Reason.SUSPENDED)
        # Pods still terminating: look again until the runner reports them gone.
        requeue = None if applied.state in (State.REMOVED, State.MISSING) else STARTING_RETRY
        return step.outcome(requeue)

    def _run(self, step: Step, runner: Runner, workload: Workload) -> Outcome:
        now = step.now
        previous_id = step.status.runner.workload_id if step.status.runner else None
        previous_revision = step.status.runner.revision if step.status.runner else None
        observed = runner.observe(workload)
        self._take_restart_count(step, observed)
        before_exit = (step.status.consecutive_failures, step.status.last_failure)
        if observed.state == State.EXITED:
            self._record_exit(step, observed)
        elif observed.rollout is not None and observed.rollout.termination is not None:
            updates.record_exit(step, observed.rollout)
        elif observed.state == State.MISSING and previous_id and step.status.phase in _UP:
            self._disappeared(step, observed)
        wait = self._backoff_remaining(step.status, now)
        if wait > 0:
            if observed.state == State.RUNNING and (
                step.status.updating or observed.rollout is not None
            ):
                # The new revision failed; the serving one is not touched while it waits.
                return updates.backing_off(step, runner.type, observed, wait)
            return self._backing_off(step, workload, observed, wait)

        applied = runner.apply(workload)
        if _vanished_meanwhile(observed, applied):
            self._disappeared(step, observed)
        elif _removed_after_exit(observed, applied) and step.counted_failure:
            # ``docker rm -f`` kills first: the container read as exited, then was gone
            # before apply could replace it. A removal outside us, not a crash: the restart
            # is counted (once), the back-off is not, and the user hears it is recreated.
            step.status.consecutive_failures, step.status.last_failure = before_exit
            step.counted_failure = False
            step.events = [e for e in step.events if e.reason not in _EXIT_REASONS]
            step.events.append(_recreating(observed))
        self._take_restart_count(step, applied)
        if applied.action in (Action.CREATED, Action.REPLACED):
            verb = "Created" if applied.action == Action.CREATED else "Replaced"
            step.events.append(
                Event(
                    "Normal",
                    verb,
                    f"{verb} workload {applied.workload_name} ({applied.workload_id})",
                )
            )
        if applied.image_pulled:
            step.events.append(
                Event("Normal", "Pulled", f"Pulled image {workload.spec.container.image}")
            )
        step.condition(
            ConditionType.IMAGE_READY,
            True,
            Reason.IMAGE_PULLED if applied.image_pulled else Reason.IMAGE_PRESENT,
            workload.spec.container.image,
        )
        step.status.runner = runner_details(runner.type, applied)
        self._debug_condition(step, runner, workload, applied)
        if applied.problem is not None:
            return self._problem(step, applied.problem)
        if applied.state == State.EXITED:
            self._record_exit(step, applied)
            wait = self.backoff.delay(step.status.consecutive_failures)
            return self._backing_off(step, workload, applied, wait)
        if applied.state == State.RUNNING and applied.rollout is not None:
            return self._updating(step, runner, workload, applied)
        if applied.state == State.RUNNING:
            updates.updated(step, applied, previous_revision)
            return self._running(step, runner, workload, applied)
        step.condition(ConditionType.CONTAINER_RUNNING, False, Reason.CONTAINER_CREATING)
        step.not_ready(
            Phase.STARTING, Reason.CONTAINER_CREATING, applied.message or "container is starting"
        )
        return step.outcome(STARTING_RETRY)

    def _running(
        self,
        step: Step,
        runner: Runner,
        workload: Workload,
        applied: RunnerStatus,
        *,
        updating: bool = False,
    ) -> Outcome:
        status, now = step.status, step.now
        started = timestamps.parse(applied.started_at) if applied.started_at else now
        # (While an update runs, the failures are the new revision's, not this workload's.)
        if (
            status.consecutive_failures
            and not updating
            and (now - started >= self.backoff.stable_after)
        ):
            status.consecutive_failures = 0
        step.condition(
            ConditionType.CONTAINER_RUNNING, True, Reason.RUNNING, applied.workload_name or ""
        )
        status.endpoints = list(applied.endpoints)
        status.debug_endpoints = list(applied.debug_endpoints)
        if applied.ready is not None:
            return self._runner_ready(step, applied, now - started)
        up = now - started
        if up < self.min_ready:
            status.phase = Phase.STARTING
            status.message = "container started; waiting to see it stay up"
            step.condition(ConditionType.READY, False, Reason.CONTAINER_STARTING, status.message)
            return step.outcome(max(self.min_ready - up, 0.05))
        probe = workload.spec.container.readiness_probe
        requeue: float | None = None
        if status.consecutive_failures:
            # Running again after a failure: look again once it has been steady long enough.
            requeue = max(STARTING_RETRY, self.backoff.stable_after - (now - started))
        if probe is None:
            status.phase = Phase.RUNNING
            status.message = ""
            step.condition(ConditionType.READY, True, Reason.RUNNING, "container is running")
            return step.outcome(requeue)
        requeue = min(requeue or probe.period_seconds, probe.period_seconds)
        if now - started < probe.initial_delay_seconds:
            status.phase = Phase.STARTING
            status.message = "waiting for initialDelaySeconds before the first probe"
            step.condition(ConditionType.READY, False, Reason.PROBE_PENDING, status.message)
            return step.outcome(min(requeue, probe.initial_delay_seconds - (now - started)))
        result = runner.probe(workload, applied)
        was_ready = status.ready
        if result.ok:
            status.phase = Phase.RUNNING
            status.message = ""
            step.condition(ConditionType.READY, True, Reason.PROBE_PASSED, result.message)
        else:
            status.phase = Phase.RUNNING if was_ready else Phase.STARTING
            status.message = f"readiness probe failed: {result.message}"
            step.condition(ConditionType.READY, False, Reason.PROBE_FAILED, status.message)
            if was_ready:
                step.events.append(Event("Warning", "Unhealthy", status.message))
        return step.outcome(requeue)

    def _updating(
        self, step: Step, runner: Runner, workload: Workload, applied: RunnerStatus
    ) -> Outcome:
        """The serving workload keeps serving while the runner brings the new revision up.

        A model that was Ready stays Ready (it is not probed against the new spec); one that
        was not is judged as usual. The ``Updating`` condition says how the update goes; a
        failed attempt (crash, image, create) counts towards the back-off of the new
        revision only (see ``updates``).
        """
        rollout = applied.rollout
        assert rollout is not None
        was_ready = step.status.ready
        updates.record_failure(step, rollout)
        if was_ready:
            outcome = updates.keep_serving(step, applied)
        else:
            outcome = self._running(step, runner, workload, applied, updating=True)
        wait: float | None = rollout.recheck_after
        if rollout.problem is not None:
            wait = max(self._backoff_remaining(step.status, step.now), self.backoff.base)
        updates.updating_condition(step, applied, wait)
        return step.outcome(
            _sooner(outcome.requeue_after, wait if wait is not None else STARTING_RETRY)
        )

    def _runner_ready(self, step: Step, applied: RunnerStatus, up: float) -> Outcome:
        """The runner judges readiness itself (a rollout): its verdict replaces the probe."""
        status = step.status
        if applied.ready:
            status.phase = Phase.RUNNING
            status.message = ""
            step.condition(
                ConditionType.READY, True, Reason.RUNNING, applied.message or "workload is ready"
            )
            # Running again after a failure: look again once it has been steady long enough.
            requeue = (
                max(STARTING_RETRY, self.backoff.stable_after - up)
                if status.consecutive_failures
                else None
            )
            return step.outcome(requeue)
        status.phase = Phase.STARTING
        status.message = applied.message or "waiting for the workload to become ready"
        step.condition(ConditionType.READY, False, Reason.CONTAINER_STARTING, status.message)
        return step.outcome(STARTING_RETRY)

    def _problem(self, step: Step, problem: Problem) -> Outcome:
        """The runner says why the workload does not serve, and keeps working on it itself.

        Failed with the runner's reason; nothing is counted towards the back-off (the runner
        retries on its own schedule) and the warning is posted once per new reason.
        """
        status = step.status
        was = status.condition(ConditionType.READY)
        if problem.reason in (Reason.IMAGE_NOT_FOUND, Reason.IMAGE_PULL_FAILED):
            step.condition(ConditionType.IMAGE_READY, False, problem.reason, problem.message)
        step.condition(ConditionType.CONTAINER_RUNNING, False, problem.reason, problem.message)
        step.not_ready(Phase.FAILED, problem.reason, problem.message)
        if was is None or was.reason != problem.reason:
            step.events.append(Event("Warning", problem.reason.value, problem.message))
        return step.outcome(PROBLEM_RETRY)

    def _disappeared(self, step: Step, observed: RunnerStatus) -> None:
        """The workload that was up went away without exiting (removed outside us): one
        restart, and a word to the user that it is being recreated."""
        if observed.restart_count is None:
            step.status.restart_count += 1
            self.metrics.restarts.inc()
        step.events.append(_recreating(observed))

    def _take_restart_count(self, step: Step, observed: RunnerStatus) -> None:
        """A runner that counts restarts itself (pods) has the last word on the count."""
        if observed.restart_count is None:
            return
        grown = observed.restart_count - step.status.restart_count
        if grown > 0:
            self.metrics.restarts.inc(grown)
        step.status.restart_count = observed.restart_count

    def _record_exit(self, step: Step, observed: RunnerStatus) -> None:
        """Count a workload's death once (by workload id) and remember how it died."""
        status = step.status
        if step.counted(observed.workload_id):
            return
        if observed.restart_count is None:
            status.restart_count += 1
            self.metrics.restarts.inc()
        status.consecutive_failures += 1
        step.counted_failure = True
        ended = observed.termination
        oom = ended is not None and ended.oom_killed
        code = ended.exit_code if ended is not None else None
        how = "was OOM-killed" if oom else f"exited with code {code}"
        message = f"container {observed.workload_name} {how}"
        # Why, in the runner's words on how it ended: the engine's error, else the
        # workload's last output lines (bounded by the runner), so a crash says what the
        # model printed, not only its exit code.
        if ended is not None and ended.message:
            message += f": {ended.message}"
        status.last_failure = step.exit_failure(ended, message, observed.workload_id)
        step.events.append(Event("Warning", status.last_failure.reason.value, message))

    def _backoff_remaining(self, status: MLModelStatus, now: float) -> float:
        if not status.consecutive_failures or status.last_failure is None:
            return 0.0
        # A failure stamped a moment ahead of this clock (the engine's clock, rounding) is
        # one that just happened, not one still to come.
        since = max(0.0, now - timestamps.parse(status.last_failure.time))
        return max(0.0, self.backoff.delay(status.consecutive_failures) - since)

    def _backing_off(
        self, step: Step, workload: Workload, observed: RunnerStatus, wait: float
    ) -> Outcome:
        status = step.status
        failure = status.last_failure
        why = failure.message if failure else "failed"
        crash_loop = status.consecutive_failures >= 2
        reason = (
            Reason.CRASH_LOOP
            if crash_loop
            else (failure.reason if failure else Reason.START_FAILED)
        )
        message = f"{why}; restarting in {wait:.0f}s (failure {status.consecutive_failures})"
        if observed.state == State.EXITED:
            status.runner = runner_details(
                status.runner.type if status.runner else workload.spec.runner, observed
            )
            oom = observed.termination is not None and observed.termination.oom_killed
            step.condition(
                ConditionType.CONTAINER_RUNNING,
                False,
                Reason.OOM_KILLED if oom else Reason.CONTAINER_EXITED,
                why,
            )
        step.not_ready(Phase.FAILED, reason, message)
        if crash_loop and step.counted_failure:
            step.events.append(Event("Warning", "BackOff", message))
        return step.outcome(max(wait, 0.05))

    def _debug_condition(
        self, step: Step, runner: Runner, workload: Workload, applied: RunnerStatus
    ) -> None:
        debug = applied.debug
        if not workload.spec.debug:
            step.status.conditions = [
                c for c in step.status.conditions if c.type != ConditionType.DEBUG_PORTS
            ]
        elif debug is None:
            step.condition(
                ConditionType.DEBUG_PORTS,
                False,
                Reason.DEBUG_NOT_CONFIGURED,
                f"the {runner.type} runner publishes no debug ports",
            )
        elif debug.bound:
            step.condition(
                ConditionType.DEBUG_PORTS,
                True,
                Reason.DEBUG_PORTS_BOUND,
                ", ".join(applied.debug_endpoints),
            )
        elif debug.holder:
            step.condition(
                ConditionType.DEBUG_PORTS,
                False,
                Reason.DEBUG_PORTS_HELD,
                f"debug ports are held by {debug.holder}",
            )
        else:
            step.condition(
                ConditionType.DEBUG_PORTS,
                False,
                Reason.DEBUG_NOT_CONFIGURED,
                debug.message or "the debug ports are not published",
            )

    def _failed(self, step: Step, error: errors.RunnerError) -> Outcome:
        status = step.status
        previous_message = status.message
        self.metrics.runner_errors.labels(error=type(error).__name__).inc()
        if isinstance(error, errors.RunnerUnavailable) and not error.retryable:
            # For good (a Kubernetes model where there is no cluster): final, not retried.
            step.condition(
                ConditionType.CONTAINER_RUNNING, False, Reason.RUNNER_UNAVAILABLE, error.message
            )
            step.not_ready(
                Phase.FAILED, Reason.RUNNER_UNAVAILABLE, f"runner unavailable: {error.message}"
            )
            if previous_message != status.message:
                step.events.append(
                    Event("Warning", Reason.RUNNER_UNAVAILABLE.value, status.message)
                )
            return step.outcome()
        if isinstance(error, errors.RunnerUnavailable):
            # Not the model's fault: nothing known, nothing counted; look again soon.
            status.phase = Phase.PENDING if status.phase != Phase.STOPPED else status.phase
            status.message = f"runner unavailable: {error.message}"
            status.endpoints = []
            status.debug_endpoints = []
            step.condition(ConditionType.READY, None, Reason.RUNNER_UNAVAILABLE, status.message)
            step.condition(
                ConditionType.CONTAINER_RUNNING, None, Reason.RUNNER_UNAVAILABLE, status.message
            )
            return step.outcome(rate_limited=True)
        if isinstance(error, errors.NotPermitted):
            # Not the model's fault either, and nothing it can do: an administrator grants
            # the permission. Said once (Event), not counted, looked at again now and then.
            status.phase = Phase.PENDING if status.phase != Phase.STOPPED else status.phase
            step.condition(ConditionType.READY, False, Reason.FORBIDDEN, error.message)
            step.condition(ConditionType.CONTAINER_RUNNING, None, Reason.FORBIDDEN, error.message)
            status.message = error.message
            if previous_message != status.message:
                step.events.append(Event("Warning", Reason.FORBIDDEN.value, error.message))
            return step.outcome(FORBIDDEN_RETRY)
        reason = _REASONS.get(type(error), Reason.START_FAILED)
        if isinstance(error, (errors.ImageNotFound, errors.ImagePullFailed)):
            step.condition(ConditionType.IMAGE_READY, False, reason, error.message)
        step.condition(ConditionType.CONTAINER_RUNNING, False, reason, error.message)
        step.count_failure(reason, error.message)
        step.not_ready(Phase.FAILED, reason, error.message)
        if not error.retryable:
            return step.outcome()
        return step.outcome(max(self.backoff.delay(status.consecutive_failures), self.backoff.base))

    # --- deletion and garbage collection ---------------------------------------------

    def delete(self, workload: Workload) -> Event | None:
        """Remove the model's workload; a ``RunnerError`` is the caller's to bound and retry."""
        removed = self._runner_for(workload.spec.runner).delete(workload)
        self.metrics.set_phase(workload.owner.key, None)
        if removed.action == Action.REMOVED:
            return Event("Normal", "Removed", f"Removed workload {removed.workload_name}")
        return None

    def resync(
        self,
        runner: Runner,
        statuses: Mapping[str, MLModelStatus | None],
        live_uids: Callable[[], Collection[str]],
        *,
        scope: Callable[[OwnedWorkload], bool] = lambda _: True,
    ) -> Resync:
        """The safety net for missed events (see ``resync.run``): stale models, orphans and
        an owner's extra workloads (removed), in one listing of the runner's workloads."""
        return resync.run(runner, statuses, live_uids, scope=scope)

    def collect_garbage(
        self,
        runner: Runner,
        live_uids: Callable[[], Collection[str]],
        *,
        scope: Callable[[OwnedWorkload], bool] = lambda _: True,
    ) -> list[OwnedWorkload]:
        """Remove the workloads in ``scope`` whose owner is not alive (see ``resync``)."""
        return list(self.resync(runner, {}, live_uids, scope=scope).removed)


def _waiting_for_debug_ports(outcome: Outcome) -> Outcome:
    """A model whose debug ports another holds says who, and looks again soon."""
    status = outcome.status
    held = status.condition(ConditionType.DEBUG_PORTS)
    if held is None or held.reason != Reason.DEBUG_PORTS_HELD or status.phase != Phase.RUNNING:
        return outcome
    if not status.message:
        status.message = held.message
    after = min(outcome.requeue_after or DEBUG_RETRY, DEBUG_RETRY)
    return Outcome(status, after, outcome.events)


def _became_running(previous: MLModelStatus, status: MLModelStatus, new_generation: bool) -> bool:
    """Whether this reconcile saw the model's workload reach Running (a hand-over point)."""
    if status.phase != Phase.RUNNING:
        return False
    before = previous.runner.workload_id if previous.runner else None
    now = status.runner.workload_id if status.runner else None
    return new_generation or previous.phase != Phase.RUNNING or before != now


# Phases in which a vanished container is drift (not the tail of a failure already counted).
_UP = (Phase.RUNNING, Phase.STARTING)


def _vanished_meanwhile(observed: RunnerStatus, applied: RunnerStatus) -> bool:
    """The workload ``observe`` saw up was gone by the time ``apply`` looked, which created
    a new one: a removal racing the step (``docker rm -f`` reads as running until its kill
    lands, then as being removed). It disappeared as surely as one observed missing."""
    return (
        observed.state in (State.RUNNING, State.STARTING)
        and observed.workload_id is not None
        and applied.action == Action.CREATED
        and applied.workload_id != observed.workload_id
    )


def _removed_after_exit(observed: RunnerStatus, applied: RunnerStatus) -> bool:
    """The workload ``observe`` saw exited was gone by the time ``apply`` looked (a crash
    alone leaves it for apply to replace): it was removed, its exit was the removal's kill."""
    return (
        observed.state == State.EXITED
        and observed.workload_id is not None
        and applied.action == Action.CREATED
        and applied.workload_id != observed.workload_id
    )


def _recreating(observed: RunnerStatus) -> Event:
    return Event(
        "Warning", "Recreating", f"Workload {observed.workload_name} disappeared; recreating"
    )


_EXIT_REASONS = frozenset({Reason.CONTAINER_EXITED.value, Reason.OOM_KILLED.value})

_REASONS: dict[type[errors.RunnerError], Reason] = {
    errors.RunnerDisabled: Reason.RUNNER_DISABLED,
    errors.RunnerNotImplemented: Reason.RUNNER_NOT_IMPLEMENTED,
    errors.ImageNotFound: Reason.IMAGE_NOT_FOUND,
    errors.ImagePullFailed: Reason.IMAGE_PULL_FAILED,
    errors.ContainerConflict: Reason.CONFLICT,
    errors.PortInUse: Reason.PORT_IN_USE,
    errors.StartFailed: Reason.START_FAILED,
    errors.StorageNotConfigured: Reason.STORAGE_NOT_CONFIGURED,
    errors.OverLimit: Reason.OVER_LIMIT,
}


def _sooner(first: float | None, second: float | None) -> float | None:
    known = [value for value in (first, second) if value is not None]
    return min(known) if known else None
