"""Suspend is an ``apply`` of a suspended workload; some runner errors are final.

The runner decides what suspended means (the Docker runner removes the container, the
Kubernetes runner scales its Deployment to 0 and keeps the Service and the claim), so the
core applies the suspended workload instead of deleting it. A runner that can never work
here (a Kubernetes model in local mode) or a spec the operator cannot serve (a volume with
no storage configured) is reported once, as a final failure, and not retried.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from mlplatform import errors
from mlplatform.core.backoff import BackoffPolicy
from mlplatform.core.reconcile import FORBIDDEN_RETRY, STARTING_RETRY, Outcome, Reconciler
from mlplatform.models.spec import MLModelSpec
from mlplatform.models.status import ConditionType, MLModelStatus, Phase, Reason
from mlplatform.runners.base import (
    Action,
    OwnedWorkload,
    Owner,
    RunnerStatus,
    State,
    Workload,
)
from tests.support.memory_runner import MemoryRunner


def workload(**spec: Any) -> Workload:
    container = {"image": "iris:1", "ports": [8080], **spec.pop("container", {})}
    model = MLModelSpec.model_validate({"id": "iris:1.0", "container": container, **spec})
    return Workload(owner=Owner("models", "iris", "u1"), spec=model)


class ScalingRunner(MemoryRunner):
    """Suspends as a Deployment does: scaled to 0, its pod terminating for a while."""

    def __init__(self) -> None:
        super().__init__()
        self.terminating = True
        self.deletes = 0
        self.suspend_applies = 0

    def apply(self, workload: Workload) -> RunnerStatus:
        if not workload.spec.suspend:
            return super().apply(workload)
        self.suspend_applies += 1
        first = self.suspend_applies == 1
        return RunnerStatus(
            state=State.RUNNING if self.terminating else State.REMOVED,
            action=Action.REPLACED if first else Action.NONE,
            workload_id="d1",
            workload_name="iris",
            message="scaling to 0: 1 pod(s) terminating"
            if self.terminating
            else "scaled to 0 (suspended); Service and storage kept",
            details={"deployment": "iris", "claim": "iris-storage"},
        )

    def delete(self, workload: Workload) -> RunnerStatus:
        self.deletes += 1
        return super().delete(workload)


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def reconciler_for(runner: MemoryRunner) -> Reconciler:
    return Reconciler(
        lambda _: runner, backoff=BackoffPolicy(base=1, cap=8, stable_after=10), clock=Clock()
    )


def step(reconciler: Reconciler, w: Workload, previous: Outcome | None, gen: int = 1) -> Outcome:
    return reconciler.reconcile(w, generation=gen, previous=previous.status if previous else None)


def condition(status: MLModelStatus, kind: ConditionType) -> tuple[str, Reason, str]:
    found = status.condition(kind)
    assert found is not None, f"no {kind} condition in {status}"
    return found.status, found.reason, found.message


def test_suspend_applies_the_suspended_workload_and_never_deletes() -> None:
    runner = ScalingRunner()
    reconciler = reconciler_for(runner)
    running = step(reconciler, workload(), None)
    scaling = step(reconciler, workload(suspend=True), running, gen=2)
    assert runner.deletes == 0 and runner.suspend_applies == 1
    assert scaling.status.phase == Phase.STOPPED
    assert condition(scaling.status, ConditionType.READY)[:2] == ("False", Reason.SUSPENDED)
    assert "terminating" in scaling.status.message
    assert scaling.requeue_after == STARTING_RETRY  # look again until the pod is gone
    assert [e.reason for e in scaling.events] == ["Suspended"]
    assert scaling.status.runner is not None
    assert scaling.status.runner.model_dump(by_alias=True)["claim"] == "iris-storage"
    runner.terminating = False
    stopped = step(reconciler, workload(suspend=True), scaling, gen=2)
    assert stopped.requeue_after is None
    assert stopped.events == ()
    assert "Service and storage kept" in stopped.status.message


def test_suspend_with_the_memory_runner_still_removes_the_container() -> None:
    runner = MemoryRunner()
    reconciler = reconciler_for(runner)
    running = step(reconciler, workload(), None)
    stopped = step(reconciler, workload(suspend=True), running, gen=2)
    assert runner.containers == {}
    assert [e.reason for e in stopped.events] == ["Removed"]
    assert stopped.requeue_after is None


def test_a_runner_that_can_never_work_here_is_a_final_failure() -> None:
    runner = MemoryRunner()
    runner.fail_apply = errors.NeedsCluster("runner kubernetes needs the operator in a cluster")
    reconciler = reconciler_for(runner)
    first = step(reconciler, workload(), None)
    assert first.requeue_after is None
    assert first.status.phase == Phase.FAILED
    status, reason, message = condition(first.status, ConditionType.READY)
    assert (status, reason) == ("False", Reason.RUNNER_UNAVAILABLE)
    assert "needs the operator in a cluster" in message
    assert [e.reason for e in first.events] == [Reason.RUNNER_UNAVAILABLE.value]
    again = step(reconciler, workload(), first)
    assert again.events == ()  # told once
    assert again.status.consecutive_failures == 0  # not the model's fault: nothing counted


def test_an_unavailable_engine_is_still_retried_and_unknown() -> None:
    runner = MemoryRunner()
    runner.available = False
    outcome = step(reconciler_for(runner), workload(), None)
    assert outcome.rate_limited
    assert outcome.status.phase == Phase.PENDING
    assert condition(outcome.status, ConditionType.READY)[:2] == (
        "Unknown",
        Reason.RUNNER_UNAVAILABLE,
    )


def test_missing_storage_is_named_and_not_retried() -> None:
    runner = MemoryRunner()
    runner.fail_apply = errors.StorageNotConfigured(
        "spec.container.volumes: /data needs RUNNERS_KUBERNETES_DATA_CLAIM"
    )
    outcome = step(reconciler_for(runner), workload(), None)
    assert outcome.requeue_after is None
    assert outcome.status.phase == Phase.FAILED
    assert condition(outcome.status, ConditionType.READY)[:2] == (
        "False",
        Reason.STORAGE_NOT_CONFIGURED,
    )


@pytest.mark.parametrize(("state", "in_sync"), [(State.REMOVED, True), (State.RUNNING, False)])
def test_a_resync_counts_a_workload_scaled_to_nothing_as_suspended(
    state: State, in_sync: bool
) -> None:
    runner = ScalingRunner()
    runner.terminating = False
    reconciler = reconciler_for(runner)
    stopped = step(reconciler, workload(suspend=True), None)
    found = OwnedWorkload(
        owner=Owner("models", "iris", "u1"),
        model_id="iris:1.0",
        workload_id="d1",
        workload_name="iris",
        revision="h",
        state=state,
    )
    runner.list_owned = lambda: [found]  # type: ignore[method-assign]
    result = reconciler.resync(runner, {"u1": stopped.status}, lambda: {"u1"})
    assert (result.stale == frozenset()) is in_sync
    assert result.removed == ()


class OwnerNamedRunner(MemoryRunner):
    """A runner that names the workload after its owner (as the Kubernetes runner does)."""

    one_workload_per_owner = True


@pytest.mark.parametrize(("runner", "lists"), [(MemoryRunner(), 1), (OwnerNamedRunner(), 0)])
def test_only_runners_naming_workloads_by_id_list_them_to_retire_old_ids(
    runner: MemoryRunner, lists: int
) -> None:
    # Wall time a moment ahead of the container's start: it counts as up at once.
    reconciler = Reconciler(lambda _: runner, min_ready=0, clock=lambda: time.time() + 1)
    running = step(reconciler, workload(), None)
    assert running.status.phase == Phase.RUNNING
    assert runner.lists == lists


def test_a_refused_permission_is_named_said_once_not_counted_and_looked_at_again() -> None:
    runner = MemoryRunner()
    runner.fail_apply = errors.NotPermitted(
        "the operator may not create deployments (apps) in namespace models: grant it in the "
        "ClusterRole mlplatform-operator"
    )
    reconciler = reconciler_for(runner)
    first = step(reconciler, workload(), None)
    assert first.status.phase == Phase.PENDING
    assert condition(first.status, ConditionType.READY)[:2] == ("False", Reason.FORBIDDEN)
    assert first.status.consecutive_failures == 0  # not the model's failure
    assert [e.reason for e in first.events] == ["Forbidden"]
    assert first.requeue_after == FORBIDDEN_RETRY
    again = step(reconciler, workload(), first)
    assert not again.events  # the same words: no second Warning
    runner.fail_apply = None
    granted = step(reconciler, workload(), again)
    assert condition(granted.status, ConditionType.READY)[1] != Reason.FORBIDDEN
