"""The reconcile core: one level-based, idempotent step from observed state to desired state.

``Reconciler.reconcile`` reads what the runner sees, converges it to the spec (create,
replace, remove, or wait out a back-off), and returns the whole new status, the events worth
telling a user, and when to look again. It does not care what woke it — a create, an
update, a Docker event or a resync all lead to the same step. It knows nothing of kopf or of
files: the operator and local mode are thin adapters around it.

The back-off state (consecutive failures, last failure) lives in the status, so it survives
a restart of the process that runs the loop.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Literal

from mlplatform import errors
from mlplatform.core.backoff import BackoffPolicy
from mlplatform.core.metrics import Metrics
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
from mlplatform.runners.base import (
    MIN_READY_SECONDS,
    Action,
    OwnedWorkload,
    Problem,
    Rollout,
    Runner,
    RunnerStatus,
    State,
    Workload,
)

# How soon to look again when the runner is unreachable, while a workload is starting, and
# while the runner reports a problem it works on by itself (unschedulable, pull failing).
UNAVAILABLE_RETRY = 5.0
STARTING_RETRY = 1.0
PROBLEM_RETRY = 5.0
# How soon a model waiting for debug ports held by another looks again (the holder may have
# let them go: it stopped asking, or went).
DEBUG_RETRY = 5.0
# A workload counts as running (and may be Ready) once it has stayed up this long (the
# runner contract's minimum ready time, as Kubernetes' minReadySeconds).
MIN_READY = MIN_READY_SECONDS

RunnerFor = Callable[[str], Runner]


@dataclass(frozen=True)
class Event:
    """Something worth telling the user (a Kubernetes Event, a log line in local mode)."""

    type: Literal["Normal", "Warning"]
    reason: str
    message: str


@dataclass(frozen=True)
class Resync:
    """What one resync found: models whose workload disagrees with their status, orphans."""

    stale: frozenset[str]  # owner uids to reconcile
    removed: tuple[OwnedWorkload, ...]  # orphaned workloads, now removed


@dataclass(frozen=True)
class Outcome:
    """The result of one reconcile: the new status, events to post, when to look again."""

    status: MLModelStatus
    requeue_after: float | None = None
    events: tuple[Event, ...] = ()


@dataclass
class _Step:
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
        step = _Step(status=status, generation=generation, now=self._clock())
        step.not_ready(Phase.FAILED, Reason.INVALID_SPEC, f"invalid spec: {message}")
        if previous.message != status.message:
            step.events.append(Event("Warning", Reason.INVALID_SPEC.value, status.message))
        self.metrics.set_phase(key, status.phase)
        return Outcome(status, None, tuple(step.events))

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
        step = _Step(status=status, generation=generation, now=now)
        spec = workload.spec
        try:
            runner = self._runner_for(spec.runner)
            if spec.suspend:
                return self._suspend(step, runner, workload)
            outcome = self._run(step, runner, workload, now)
        except errors.RunnerError as error:
            return self._failed(step, workload, error, now)
        outcome = _waiting_for_debug_ports(outcome)
        # A runner that names the workload after its owner (Kubernetes: the Deployment is
        # the MLModel's name) never holds two for one owner: an id change patches the one in
        # place, and there is nothing to retire (nor a listing of every workload to pay).
        if _became_running(previous, outcome.status, new_generation) and not getattr(
            runner, "one_workload_per_owner", False
        ):
            try:
                retired = self._retire_old_ids(runner, workload, outcome.status)
            except errors.RunnerError:
                # The model runs; the old workload goes at the next look (or the resync).
                retry = min(outcome.requeue_after or UNAVAILABLE_RETRY, UNAVAILABLE_RETRY)
                return Outcome(outcome.status, retry, outcome.events)
            return Outcome(outcome.status, outcome.requeue_after, (*outcome.events, *retired))
        return outcome

    def _suspend(self, step: _Step, runner: Runner, workload: Workload) -> Outcome:
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
        return Outcome(step.status, requeue, tuple(step.events))

    def _run(self, step: _Step, runner: Runner, workload: Workload, now: float) -> Outcome:
        previous_id = step.status.runner.workload_id if step.status.runner else None
        previous_revision = step.status.runner.revision if step.status.runner else None
        observed = runner.observe(workload)
        self._take_restart_count(step, observed)
        before_exit = (step.status.consecutive_failures, step.status.last_failure)
        if observed.state == State.EXITED:
            self._record_exit(step, observed, now)
        elif observed.rollout is not None and observed.rollout.termination is not None:
            self._record_rollout_exit(step, observed.rollout, now)
        elif observed.state == State.MISSING and previous_id and step.status.phase in _UP:
            self._disappeared(step, observed)
        wait = self._backoff_remaining(step.status, now)
        if wait > 0:
            if observed.state == State.RUNNING and (
                step.status.updating or observed.rollout is not None
            ):
                # The new revision failed; the serving one is not touched while it waits.
                return self._update_backing_off(step, runner, observed, wait)
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
        step.status.runner = _details(runner.type, applied)
        self._debug_condition(step, runner, workload, applied)
        if applied.problem is not None:
            return self._problem(step, applied.problem)
        if applied.state == State.EXITED:
            self._record_exit(step, applied, now)
            wait = self.backoff.delay(step.status.consecutive_failures)
            return self._backing_off(step, workload, applied, wait)
        if applied.state == State.RUNNING and applied.rollout is not None:
            return self._updating(step, runner, workload, applied, now)
        if applied.state == State.RUNNING:
            self._updated(step, applied, previous_revision)
            return self._running(step, runner, workload, applied, now)
        step.condition(ConditionType.CONTAINER_RUNNING, False, Reason.CONTAINER_CREATING)
        step.not_ready(
            Phase.STARTING, Reason.CONTAINER_CREATING, applied.message or "container is starting"
        )
        return Outcome(step.status, STARTING_RETRY, tuple(step.events))

    def _running(
        self,
        step: _Step,
        runner: Runner,
        workload: Workload,
        applied: RunnerStatus,
        now: float,
        *,
        updating: bool = False,
    ) -> Outcome:
        status = step.status
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
            return Outcome(status, max(self.min_ready - up, 0.05), tuple(step.events))
        probe = workload.spec.container.readiness_probe
        requeue: float | None = None
        if status.consecutive_failures:
            # Running again after a failure: look again once it has been steady long enough.
            requeue = max(STARTING_RETRY, self.backoff.stable_after - (now - started))
        if probe is None:
            status.phase = Phase.RUNNING
            status.message = ""
            step.condition(ConditionType.READY, True, Reason.RUNNING, "container is running")
            return Outcome(status, requeue, tuple(step.events))
        requeue = min(requeue or probe.period_seconds, probe.period_seconds)
        if now - started < probe.initial_delay_seconds:
            status.phase = Phase.STARTING
            status.message = "waiting for initialDelaySeconds before the first probe"
            step.condition(ConditionType.READY, False, Reason.PROBE_PENDING, status.message)
            return Outcome(
                status,
                min(requeue, probe.initial_delay_seconds - (now - started)),
                tuple(step.events),
            )
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
        return Outcome(status, requeue, tuple(step.events))

    # --- updates: a new revision behind the serving workload ---------------------------

    def _updating(
        self, step: _Step, runner: Runner, workload: Workload, applied: RunnerStatus, now: float
    ) -> Outcome:
        """The serving workload keeps serving while the runner brings the new revision up.

        A model that was Ready stays Ready (it is not probed against the new spec); one that
        was not is judged as usual. The ``Updating`` condition says how the update goes; a
        failed attempt (crash, image, create) counts towards the back-off of the new
        revision only.
        """
        rollout = applied.rollout
        assert rollout is not None
        status = step.status
        was_ready = status.ready
        if rollout.problem is not None and rollout.termination is None:
            self._record_rollout_problem(step, rollout.problem)
        elif rollout.termination is not None:
            self._record_rollout_exit(step, rollout, now)
        if was_ready:
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
            outcome = Outcome(status, None, ())
        else:
            outcome = self._running(step, runner, workload, applied, now, updating=True)
        wait: float | None = rollout.recheck_after
        if rollout.problem is not None:
            wait = max(self._backoff_remaining(status, now), self.backoff.base)
        self._updating_condition(step, applied, wait)
        requeue = _sooner(outcome.requeue_after, wait if wait is not None else STARTING_RETRY)
        return Outcome(status, requeue, tuple(step.events))

    def _update_backing_off(
        self, step: _Step, runner: Runner, observed: RunnerStatus, wait: float
    ) -> Outcome:
        """Between attempts at a failing new revision: the serving workload stays as it was."""
        step.status.runner = _details(runner.type, observed)
        self._updating_condition(step, observed, wait)
        return Outcome(step.status, max(wait, 0.05), tuple(step.events))

    def _updating_condition(
        self, step: _Step, serving: RunnerStatus, retry_in: float | None
    ) -> None:
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

    def _updated(self, step: _Step, applied: RunnerStatus, previous_revision: str | None) -> None:
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

    def _record_rollout_exit(self, step: _Step, rollout: Rollout, now: float) -> None:
        """Count the new revision's death once (by its workload id) for its back-off."""
        status = step.status
        last = status.last_failure
        if last is not None and rollout.workload_id and last.workload_id == rollout.workload_id:
            return
        ended = rollout.termination
        oom = ended is not None and ended.oom_killed
        reason = Reason.OOM_KILLED if oom else Reason.CONTAINER_EXITED
        message = rollout.problem.message if rollout.problem else f"{rollout.workload_name} ended"
        status.consecutive_failures += 1
        status.last_failure = Failure(
            reason=reason,
            message=message,
            time=(ended.finished_at if ended is not None else None) or step.failed_at,
            exit_code=ended.exit_code if ended is not None else None,
            oom_killed=oom,
            workload_id=rollout.workload_id,
        )
        step.events.append(Event("Warning", reason.value, f"update: {message}"))

    def _record_rollout_problem(self, step: _Step, problem: Problem) -> None:
        """The new revision could not be started (its image, its create): one more failure."""
        status = step.status
        last = status.last_failure
        repeated = last is not None and last.reason == problem.reason and not last.workload_id
        status.consecutive_failures += 1
        status.last_failure = Failure(
            reason=problem.reason, message=problem.message, time=step.failed_at
        )
        if not repeated:
            step.events.append(Event("Warning", problem.reason.value, f"update: {problem.message}"))

    def _runner_ready(self, step: _Step, applied: RunnerStatus, up: float) -> Outcome:
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
            return Outcome(status, requeue, tuple(step.events))
        status.phase = Phase.STARTING
        status.message = applied.message or "waiting for the workload to become ready"
        step.condition(ConditionType.READY, False, Reason.CONTAINER_STARTING, status.message)
        return Outcome(status, STARTING_RETRY, tuple(step.events))

    def _problem(self, step: _Step, problem: Problem) -> Outcome:
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
        return Outcome(status, PROBLEM_RETRY, tuple(step.events))

    def _disappeared(self, step: _Step, observed: RunnerStatus) -> None:
        """The workload that was up went away without exiting (removed outside us): one
        restart, and a word to the user that it is being recreated."""
        if observed.restart_count is None:
            step.status.restart_count += 1
            self.metrics.restarts.inc()
        step.events.append(_recreating(observed))

    def _take_restart_count(self, step: _Step, observed: RunnerStatus) -> None:
        """A runner that counts restarts itself (pods) has the last word on the count."""
        if observed.restart_count is None:
            return
        grown = observed.restart_count - step.status.restart_count
        if grown > 0:
            self.metrics.restarts.inc(grown)
        step.status.restart_count = observed.restart_count

    def _record_exit(self, step: _Step, observed: RunnerStatus, now: float) -> None:
        """Count a workload's death once (by workload id) and remember how it died."""
        status = step.status
        last = status.last_failure
        if last is not None and last.workload_id == observed.workload_id and observed.workload_id:
            return
        if observed.restart_count is None:
            status.restart_count += 1
            self.metrics.restarts.inc()
        status.consecutive_failures += 1
        step.counted_failure = True
        ended = observed.termination
        oom = ended is not None and ended.oom_killed
        code = ended.exit_code if ended is not None else None
        reason = Reason.OOM_KILLED if oom else Reason.CONTAINER_EXITED
        how = "was OOM-killed" if oom else f"exited with code {code}"
        message = f"container {observed.workload_name} {how}"
        if observed.message:
            message += f": {observed.message}"
        status.last_failure = Failure(
            reason=reason,
            message=message,
            time=(ended.finished_at if ended is not None else None) or step.failed_at,
            exit_code=code,
            oom_killed=oom,
            workload_id=observed.workload_id,
        )
        step.events.append(Event("Warning", reason.value, message))

    def _backoff_remaining(self, status: MLModelStatus, now: float) -> float:
        if not status.consecutive_failures or status.last_failure is None:
            return 0.0
        # A failure stamped a moment ahead of this clock (the engine's clock, rounding) is
        # one that just happened, not one still to come.
        since = max(0.0, now - timestamps.parse(status.last_failure.time))
        return max(0.0, self.backoff.delay(status.consecutive_failures) - since)

    def _backing_off(
        self, step: _Step, workload: Workload, observed: RunnerStatus, wait: float
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
            status.runner = _details(
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
        return Outcome(status, max(wait, 0.05), tuple(step.events))

    def _debug_condition(
        self, step: _Step, runner: Runner, workload: Workload, applied: RunnerStatus
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

    def _failed(
        self, step: _Step, workload: Workload, error: errors.RunnerError, now: float
    ) -> Outcome:
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
            return Outcome(status, None, tuple(step.events))
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
            return Outcome(status, UNAVAILABLE_RETRY, tuple(step.events))
        reason = _REASONS.get(type(error), Reason.START_FAILED)
        if isinstance(error, (errors.ImageNotFound, errors.ImagePullFailed)):
            step.condition(ConditionType.IMAGE_READY, False, reason, error.message)
        step.condition(ConditionType.CONTAINER_RUNNING, False, reason, error.message)
        repeated = (
            status.last_failure is not None
            and status.last_failure.reason == reason
            and not (status.last_failure.workload_id)
        )
        status.consecutive_failures += 1
        status.last_failure = Failure(reason=reason, message=error.message, time=step.failed_at)
        step.not_ready(Phase.FAILED, reason, error.message)
        if not repeated:
            step.events.append(Event("Warning", reason.value, error.message))
        if not error.retryable:
            return Outcome(status, None, tuple(step.events))
        wait = max(self.backoff.delay(status.consecutive_failures), self.backoff.base)
        return Outcome(status, wait, tuple(step.events))

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
        """The safety net for missed events, in one listing of the runner's workloads.

        ``statuses`` maps the owner uid of each model served to its last status. A model is
        stale (to be reconciled) unless what runs matches its status: Running with the same
        container, still running; Stopped with none. So a resync of steady models costs one
        request, however many there are. Only workloads in ``scope`` are looked at: the
        front end's own (the operator: its namespaces; local mode: made from its manifests
        and not held by an invalid one). Those whose owner is not among ``live_uids()`` are
        removed — listed before the owners, so that a model created in between can never
        lose its new workload.

        One workload per owner: an owner may briefly have two (its id changed; the old
        workload goes once the new one runs). When the status says the model runs and its
        workload is listed running, the owner's other workloads are removed here too;
        otherwise the model is stale and its reconcile finishes the hand-over. While an
        update runs (``Updating``), two are expected (the serving one and the new revision):
        the model's own reconcile moves it on, the resync removes neither.
        """
        owned = [o for o in runner.list_owned() if scope(o)]
        by_owner: dict[str, list[OwnedWorkload]] = {}
        for o in owned:
            by_owner.setdefault(o.owner.uid, []).append(o)
        stale: set[str] = set()
        extras: list[OwnedWorkload] = []
        for uid, status in statuses.items():
            group = by_owner.get(uid, [])
            current = _current(status, group)
            if len(group) > 1 and status is not None and status.updating:
                continue  # its reconcile is already looking at it (a requeue is due)
            if len(group) > 1 and current is not None and _in_sync(status, current):
                extras.extend(o for o in group if o is not current)
            elif len(group) > 1 or not _in_sync(status, group[0] if group else None):
                stale.add(uid)
        if not owned:
            return Resync(frozenset(stale), ())
        live = live_uids()
        orphans = tuple(o for o in owned if o.owner.uid not in live)
        removed = (*orphans, *(o for o in extras if o not in orphans))
        for workload in removed:
            runner.remove_owned(workload)
        return Resync(frozenset(stale), removed)

    def collect_garbage(
        self,
        runner: Runner,
        live_uids: Callable[[], Collection[str]],
        *,
        scope: Callable[[OwnedWorkload], bool] = lambda _: True,
    ) -> list[OwnedWorkload]:
        """Remove the workloads in ``scope`` whose owner is not alive (see ``resync``)."""
        return list(self.resync(runner, {}, live_uids, scope=scope).removed)

    def _retire_old_ids(
        self, runner: Runner, workload: Workload, status: MLModelStatus
    ) -> list[Event]:
        """Remove the owner's workloads of other ids (its ``spec.id`` changed): one per owner.

        Called once the workload of the current id runs, so a rename never leaves the model
        without a server. Only workloads of the same source are touched (local mode: the
        same manifest file; the operator records none), never the one that serves.

        For a runner that brings the new id up beside the old one and reports it as the
        model's workload; runners with ``one_workload_per_owner`` (Docker, Kubernetes) hand
        over themselves and are not asked. Never while an update runs (``Updating``): the
        old workload is then the serving one.
        """
        if status.updating:
            return []
        serving = status.runner.workload_id if status.runner else None
        events = []
        for owned in runner.list_owned():
            if (
                owned.owner.uid == workload.owner.uid
                and owned.model_id != workload.spec.id
                and owned.source == workload.source
                and owned.workload_id != serving
            ):
                runner.remove_owned(owned)
                events.append(
                    Event(
                        "Normal",
                        "Removed",
                        f"Removed workload {owned.workload_name} of the old id "
                        f"{owned.model_id} (the model runs as {workload.spec.id})",
                    )
                )
        return events


def _current(status: MLModelStatus | None, group: list[OwnedWorkload]) -> OwnedWorkload | None:
    """The workload ``status`` describes among an owner's workloads."""
    if status is None or status.runner is None or not status.runner.workload_id:
        return None
    return next((o for o in group if o.workload_id == status.runner.workload_id), None)


def _in_sync(status: MLModelStatus | None, found: OwnedWorkload | None) -> bool:
    """Whether the workload the runner lists is the one ``status`` describes."""
    if status is None:
        return False
    if status.phase == Phase.STOPPED:
        # Suspended: nothing, or a workload scaled to nothing (a Kubernetes Deployment at 0).
        return found is None or found.state == State.REMOVED
    return (
        status.phase == Phase.RUNNING
        and found is not None
        and found.state == State.RUNNING
        and status.runner is not None
        and found.workload_id == status.runner.workload_id
    )


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
}


def _kept_reason(status: MLModelStatus) -> Reason:
    """The Ready reason a model keeps while an update runs behind it."""
    ready = status.condition(ConditionType.READY)
    return ready.reason if ready is not None else Reason.RUNNING


def _sooner(first: float | None, second: float | None) -> float | None:
    known = [value for value in (first, second) if value is not None]
    return min(known) if known else None


def _details(runner_type: str, observed: RunnerStatus) -> RunnerDetails:
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
