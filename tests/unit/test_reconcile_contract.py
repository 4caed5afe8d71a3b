"""The reconcile core reads only the runner contract: readiness verdicts, counts, problems.

A Kubernetes runner judges readiness (a rollout), counts restarts (pods) and knows why a
workload cannot run (unschedulable); the Docker runner leaves those to the core. These tests
play both with the in-memory runner and check the core takes the runner's word where it
gives one, and only the neutral fields of ``RunnerStatus``.
"""

from __future__ import annotations

from typing import Any

from mlplatform.core.reconcile import PROBLEM_RETRY, STARTING_RETRY, Outcome, Reconciler
from mlplatform.models.spec import MLModelSpec
from mlplatform.models.status import ConditionType, MLModelStatus, Phase, Reason
from mlplatform.runners.base import Owner, Problem, Workload
from tests.support.memory_runner import MemoryRunner
from tests.unit.conftest import Clock

PROBE = {"httpGet": {"path": "/health", "port": 8080}, "periodSeconds": 5}


def workload(**spec: Any) -> Workload:
    container = {"image": "iris:1", "ports": [8080], **spec.pop("container", {})}
    model = MLModelSpec.model_validate({"id": "iris:1.0", "container": container, **spec})
    return Workload(owner=Owner("models", "iris", "u1"), spec=model)


def step(reconciler: Reconciler, w: Workload, previous: Outcome | None) -> Outcome:
    return reconciler.reconcile(w, generation=1, previous=previous.status if previous else None)


def condition(status: MLModelStatus, kind: ConditionType) -> tuple[str, Reason, str]:
    found = status.condition(kind)
    assert found is not None, f"no {kind} condition in {status}"
    return found.status, found.reason, found.message


def test_the_runners_readiness_verdict_replaces_the_minimum_ready_time_and_the_probe(
    reconciler: Reconciler, runner: MemoryRunner
) -> None:
    probed = workload(container={"readinessProbe": PROBE})
    runner.ready = False
    rolling = step(reconciler, probed, None)
    assert rolling.status.phase == Phase.STARTING
    assert condition(rolling.status, ConditionType.READY)[:2] == (
        "False",
        Reason.CONTAINER_STARTING,
    )
    assert rolling.requeue_after == STARTING_RETRY

    runner.ready, runner.probe_ok = True, False  # a probe would fail; the verdict is the runner's
    ready = step(reconciler, probed, rolling)
    assert (ready.status.phase, ready.status.ready) == (Phase.RUNNING, True)
    assert ready.status.endpoints == ["http://iris-1.0:8080"]
    assert runner.probes == 0


def test_without_a_verdict_the_core_waits_the_minimum_ready_time_then_probes(
    reconciler: Reconciler, runner: MemoryRunner, clock: Clock
) -> None:
    probed = workload(container={"readinessProbe": PROBE})
    starting = step(reconciler, probed, None)
    assert condition(starting.status, ConditionType.READY)[1] == Reason.CONTAINER_STARTING
    clock.now += 1.5
    ready = step(reconciler, probed, starting)
    assert condition(ready.status, ConditionType.READY)[:2] == ("True", Reason.PROBE_PASSED)
    assert runner.probes == 1


def test_a_runner_counted_restart_count_replaces_the_cores(
    reconciler: Reconciler, runner: MemoryRunner, clock: Clock
) -> None:
    runner.ready, runner.restart_count = True, 4
    running = step(reconciler, workload(), None)
    assert running.status.restart_count == 4

    runner.kill("iris-1.0", 1)  # the core does not add its own count on top
    runner.restart_count = 5
    clock.now += 1
    repaired = step(reconciler, workload(), running)
    assert repaired.status.restart_count == 5
    failure = repaired.status.last_failure
    assert failure is not None and failure.exit_code == 1


def test_a_problem_the_runner_knows_fails_the_model_with_its_reason_once(
    reconciler: Reconciler, runner: MemoryRunner
) -> None:
    runner.problem = Problem(Reason.UNSCHEDULABLE, "0/3 nodes are available: Insufficient cpu")
    failed = step(reconciler, workload(), None)
    assert failed.status.phase == Phase.FAILED
    assert condition(failed.status, ConditionType.READY) == (
        "False",
        Reason.UNSCHEDULABLE,
        "0/3 nodes are available: Insufficient cpu",
    )
    assert condition(failed.status, ConditionType.CONTAINER_RUNNING)[1] == Reason.UNSCHEDULABLE
    assert [(e.type, e.reason) for e in failed.events] == [
        ("Normal", "Created"),
        ("Warning", "Unschedulable"),
    ]
    assert failed.requeue_after == PROBLEM_RETRY
    assert failed.status.consecutive_failures == 0  # the runner retries on its own

    again = step(reconciler, workload(), failed)
    assert [e.reason for e in again.events] == []

    runner.problem = Problem(Reason.IMAGE_PULL_FAILED, "Back-off pulling image iris:1")
    pulling = step(reconciler, workload(), again)
    assert condition(pulling.status, ConditionType.IMAGE_READY)[:2] == (
        "False",
        Reason.IMAGE_PULL_FAILED,
    )
    assert [e.reason for e in pulling.events] == ["ImagePullFailed"]

    runner.problem, runner.ready = None, True
    healed = step(reconciler, workload(), pulling)
    assert (healed.status.phase, healed.status.ready) == (Phase.RUNNING, True)


def test_debug_ports_asked_of_a_runner_that_publishes_none_say_so(
    reconciler: Reconciler, runner: MemoryRunner
) -> None:
    runner.ready = True
    outcome = step(reconciler, workload(debug=True), None)
    assert condition(outcome.status, ConditionType.DEBUG_PORTS) == (
        "False",
        Reason.DEBUG_NOT_CONFIGURED,
        "the memory runner publishes no debug ports",
    )


def test_status_runner_has_the_neutral_fields_and_the_runners_own_keys(
    reconciler: Reconciler, runner: MemoryRunner
) -> None:
    runner.ready, runner.details = True, {"deploymentName": "iris-1-0", "replicas": 1}
    wire = step(reconciler, workload(), None).status.to_wire()["runner"]
    container = runner.containers["iris-1.0"]
    assert wire == {
        "type": "memory",
        "workloadId": container.id,
        "revision": container.spec_hash,
        "startedAt": container.started_at,
        "deploymentName": "iris-1-0",
        "replicas": 1,
    }
    assert MLModelStatus.model_validate({"runner": wire}).to_wire()["runner"] == wire


def test_a_death_recorded_before_the_contract_is_still_counted_once(
    reconciler: Reconciler, runner: MemoryRunner
) -> None:
    running = step(reconciler, workload(), None)
    runner.exit_on_start = 2
    runner.kill("iris-1.0", 2)
    died = step(reconciler, workload(), running).status.to_wire()
    failure = died["lastFailure"]
    # A status written by the previous version named the workload ``containerId``.
    failure["containerId"] = failure.pop("workloadId")
    old = MLModelStatus.model_validate(died)
    assert old.last_failure is not None and old.last_failure.workload_id
    again = reconciler.reconcile(workload(), generation=1, previous=old)
    assert again.status.restart_count == old.restart_count  # the same death, not counted again
