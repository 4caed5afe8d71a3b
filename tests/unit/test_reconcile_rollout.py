"""The core while a runner brings a new revision up behind the serving workload.

The Docker runner reports the serving container with a ``Rollout`` beside it until the new
one takes over; the core keeps the model Ready, says how the update goes in the ``Updating``
condition, and backs off a failing new revision without touching the serving one. Played
with the in-memory runner and a fake clock.
"""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from mlplatform.core.reconcile import Outcome, Reconciler
from mlplatform.models.spec import MLModelSpec
from mlplatform.models.status import ConditionType, MLModelStatus, Phase, Reason
from mlplatform.runners.base import Owner, Problem, Rollout, Termination, Workload
from tests.support.memory_runner import MemoryRunner
from tests.unit.conftest import Clock


def workload(**container: Any) -> Workload:
    spec = MLModelSpec.model_validate(
        {"id": "iris:1.0", "container": {"image": "iris:1", "ports": [8080], **container}}
    )
    return Workload(owner=Owner("models", "iris", "u1"), spec=spec)


def serving(reconciler: Reconciler, clock: Clock) -> Outcome:
    """A model Ready on its first container, long enough ago that it is steady."""
    first = reconciler.reconcile(workload(), generation=1, previous=None)
    clock.now += 60
    ready = reconciler.reconcile(workload(), generation=1, previous=first.status)
    assert ready.status.ready
    return ready


def update(reconciler: Reconciler, previous: MLModelStatus, generation: int = 2) -> Outcome:
    changed = workload(env=[{"name": "V", "value": "2"}])
    return reconciler.reconcile(changed, generation=generation, previous=previous)


def condition(status: MLModelStatus, kind: ConditionType) -> tuple[str, Reason, str]:
    found = status.condition(kind)
    assert found is not None, f"no {kind} condition in {status}"
    return found.status, found.reason, found.message


def crashed(workload_id: str, at: float) -> Rollout:
    finished = datetime.datetime.fromtimestamp(at, datetime.UTC).isoformat().replace("+00:00", "Z")
    return Rollout(
        revision="r2",
        workload_name="iris-1.0_r2",
        workload_id=workload_id,
        problem=Problem(Reason.CONTAINER_EXITED, f"the new container {workload_id} exited"),
        termination=Termination(exit_code=3, finished_at=finished),
    )


def test_a_starting_new_revision_keeps_the_model_ready_and_says_it_is_updating(
    reconciler: Reconciler, runner: MemoryRunner, clock: Clock
) -> None:
    before = serving(reconciler, clock)
    runner.rollout = Rollout(
        revision="r2", workload_name="iris-1.0_r2", message="starting", recheck_after=0.4
    )
    during = update(reconciler, before.status)

    assert during.status.phase == Phase.RUNNING
    assert during.status.ready
    assert during.status.endpoints == before.status.endpoints
    assert during.status.runner == before.status.runner
    assert condition(during.status, ConditionType.UPDATING)[:2] == (
        "True",
        Reason.NEW_REVISION_STARTING,
    )
    assert during.requeue_after == pytest.approx(0.4)
    assert [e.reason for e in during.events] == ["Updating"]


def test_a_crashing_new_revision_is_backed_off_while_the_serving_one_stays_ready(
    reconciler: Reconciler, runner: MemoryRunner, clock: Clock
) -> None:
    before = serving(reconciler, clock)
    runner.rollout = crashed("c-new-1", clock.now)
    first = update(reconciler, before.status)
    assert first.status.ready
    assert first.status.consecutive_failures == 1
    assert first.status.last_failure is not None
    assert first.status.last_failure.workload_id == "c-new-1"
    status, reason, message = condition(first.status, ConditionType.UPDATING)
    assert (status, reason) == ("True", Reason.CONTAINER_EXITED)
    assert "the update failed" in message and "keeps serving" in message

    # The first crash is retried at once (as the kubelet does); the second is a crash loop.
    clock.now += 0.5
    runner.rollout = crashed("c-new-2", clock.now)
    second = update(reconciler, first.status)
    assert second.status.consecutive_failures == 2
    assert condition(second.status, ConditionType.UPDATING)[1] == Reason.CRASH_LOOP
    assert second.status.ready
    assert second.requeue_after == pytest.approx(1.0)

    # Inside the back-off: no apply at all (the new revision is not re-created), the same
    # death is not counted twice, and the serving workload is still the one reported.
    applies = runner.applies
    clock.now += 0.2
    waiting = update(reconciler, second.status)
    assert runner.applies == applies
    assert waiting.status.consecutive_failures == 2
    assert waiting.status.ready and waiting.status.phase == Phase.RUNNING
    assert waiting.status.runner == before.status.runner
    assert waiting.requeue_after == pytest.approx(0.8)
    assert condition(waiting.status, ConditionType.UPDATING)[1] == Reason.CRASH_LOOP


def test_a_new_revision_that_cannot_be_created_counts_as_a_failure(
    reconciler: Reconciler, runner: MemoryRunner, clock: Clock
) -> None:
    before = serving(reconciler, clock)
    runner.rollout = Rollout(
        revision="r2",
        problem=Problem(Reason.IMAGE_NOT_FOUND, 'image "iris:2" was not found'),
    )
    failed = update(reconciler, before.status)
    assert failed.status.ready
    assert failed.status.consecutive_failures == 1
    status, reason, message = condition(failed.status, ConditionType.UPDATING)
    assert (status, reason) == ("True", Reason.IMAGE_NOT_FOUND)
    assert 'image "iris:2" was not found' in message
    assert "ImageNotFound" in [e.reason for e in failed.events]


def test_a_probe_that_fails_on_the_new_revision_is_reported_not_counted(
    reconciler: Reconciler, runner: MemoryRunner, clock: Clock
) -> None:
    before = serving(reconciler, clock)
    runner.rollout = Rollout(
        revision="r2",
        waiting=Problem(Reason.PROBE_FAILED, "readiness probe failed: answered 404"),
        recheck_after=5.0,
    )
    during = update(reconciler, before.status)
    assert during.status.ready
    assert during.status.consecutive_failures == 0
    assert condition(during.status, ConditionType.UPDATING)[:2] == ("True", Reason.PROBE_FAILED)
    assert during.requeue_after == pytest.approx(5.0)


def test_the_updating_condition_turns_false_once_the_new_revision_took_over(
    reconciler: Reconciler, runner: MemoryRunner, clock: Clock
) -> None:
    before = serving(reconciler, clock)
    runner.rollout = Rollout(revision="r2", message="starting", recheck_after=0.5)
    during = update(reconciler, before.status)
    runner.rollout = None  # the runner replaced the container: the new one serves
    clock.now += 1
    after = update(reconciler, during.status)
    clock.now += 1.5
    settled = update(reconciler, after.status)

    assert condition(settled.status, ConditionType.UPDATING)[:2] == ("False", Reason.UP_TO_DATE)
    assert settled.status.ready
    assert settled.status.runner is not None and before.status.runner is not None
    assert settled.status.runner.workload_id != before.status.runner.workload_id
    assert "Updated" in [e.reason for e in after.events]
