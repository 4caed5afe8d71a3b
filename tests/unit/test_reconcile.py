"""The reconcile core's logic, against an in-memory runner and a controllable clock."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from mlplatform import errors
from mlplatform.core.backoff import BackoffPolicy
from mlplatform.core.reconcile import Outcome, Reconciler
from mlplatform.models.spec import MLModelSpec
from mlplatform.models.status import ConditionType, MLModelStatus, Phase, Reason
from mlplatform.runners.base import Owner, Workload
from tests.support.memory_runner import MemoryRunner
from tests.unit.conftest import Clock


def workload(uid: str = "u1", **spec: Any) -> Workload:
    container = {"image": "iris:1", "ports": [8080], **spec.pop("container", {})}
    model = MLModelSpec.model_validate({"id": "iris:1.0", "container": container, **spec})
    return Workload(owner=Owner("models", "iris", uid), spec=model)


@pytest.fixture
def clock() -> Clock:
    # Long after the memory runner's containers started (it stamps the wall clock): every
    # container has stayed up past the minimum ready time. (The runner and the reconciler
    # are conftest's.)
    return Clock(1_800_000_000.0)


def step(
    reconciler: Reconciler, w: Workload, previous: Outcome | None, generation: int = 1
) -> Outcome:
    return reconciler.reconcile(
        w, generation=generation, previous=previous.status if previous else None
    )


def condition(status: MLModelStatus, kind: ConditionType) -> tuple[str, Reason]:
    found = status.condition(kind)
    assert found is not None, f"no {kind} condition in {status}"
    return found.status, found.reason


def test_a_new_model_gets_a_container_and_becomes_ready(
    reconciler: Reconciler, runner: MemoryRunner
) -> None:
    outcome = step(reconciler, workload(), None)
    assert outcome.status.phase == Phase.RUNNING
    assert outcome.status.ready
    assert outcome.status.observed_generation == 1
    assert outcome.status.endpoints == ["http://iris-1.0:8080"]
    assert [e.reason for e in outcome.events] == ["Created"]
    assert list(runner.containers) == ["iris-1.0"]


def test_a_just_started_container_is_not_ready_until_it_has_stayed_up(
    runner: MemoryRunner, clock: Clock
) -> None:
    reconciler = Reconciler(lambda _: runner, clock=clock, min_ready=1.0)
    clock.now = time.time()
    starting = step(reconciler, workload(), None)
    assert starting.status.phase == Phase.STARTING
    assert condition(starting.status, ConditionType.READY) == ("False", Reason.CONTAINER_STARTING)
    assert starting.requeue_after is not None and 0 < starting.requeue_after <= 1.1
    clock.now += starting.requeue_after
    assert step(reconciler, workload(), starting).status.ready


def test_reconciling_an_unchanged_model_writes_nothing_and_keeps_transition_times(
    reconciler: Reconciler, runner: MemoryRunner, clock: Clock
) -> None:
    first = step(reconciler, workload(), None)
    writes = runner.writes
    clock.now += 100
    second = step(reconciler, workload(), first)
    assert runner.writes == writes
    assert second.events == ()
    assert second.status.conditions == first.status.conditions


def test_suspend_removes_the_container_and_resume_brings_it_back(
    reconciler: Reconciler, runner: MemoryRunner
) -> None:
    running = step(reconciler, workload(), None)
    stopped = step(reconciler, workload(suspend=True), running, generation=2)
    assert stopped.status.phase == Phase.STOPPED
    assert condition(stopped.status, ConditionType.READY) == ("False", Reason.SUSPENDED)
    assert runner.containers == {}
    assert [e.reason for e in stopped.events] == ["Removed"]
    resumed = step(reconciler, workload(), stopped, generation=3)
    assert resumed.status.phase == Phase.RUNNING
    assert "iris-1.0" in runner.containers


def test_a_crash_loop_backs_off_exponentially_up_to_the_cap(
    reconciler: Reconciler, runner: MemoryRunner, clock: Clock
) -> None:
    runner.exit_on_start = 3
    outcome = step(reconciler, workload(), None)
    waits = []
    for _ in range(7):
        assert outcome.requeue_after is not None
        waits.append(round(outcome.requeue_after, 2))
        clock.now += outcome.requeue_after
        outcome = step(reconciler, workload(), outcome)
    assert waits == [0.05, 1, 2, 4, 8, 8, 8]
    assert outcome.status.phase == Phase.FAILED
    assert condition(outcome.status, ConditionType.READY) == ("False", Reason.CRASH_LOOP)
    failure = outcome.status.last_failure
    assert failure is not None and failure.exit_code == 3
    assert "exited with code 3" in outcome.status.message
    assert outcome.status.restart_count == 8


def test_a_reconcile_inside_the_back_off_window_does_not_touch_the_engine(
    reconciler: Reconciler, runner: MemoryRunner, clock: Clock
) -> None:
    runner.exit_on_start = 1
    outcome = step(reconciler, workload(), None)
    clock.now += outcome.requeue_after or 0
    outcome = step(reconciler, workload(), outcome)  # second failure: 1 s back-off
    writes = runner.writes
    clock.now += 0.5
    early = step(reconciler, workload(), outcome)
    assert runner.writes == writes
    assert early.requeue_after == pytest.approx(0.5)


def test_a_restarted_process_waits_out_the_back_off_to_the_fraction_of_a_second(
    runner: MemoryRunner, clock: Clock
) -> None:
    # Conditions carry the second, as every Kubernetes condition; lastFailure.time carries
    # the microsecond, for the back-off is timed from it after a restart.
    clock.now += 0.75
    runner.exit_on_start = 1
    policy = BackoffPolicy(base=1, cap=8, stable_after=10)
    first = Reconciler(lambda _: runner, backoff=policy, clock=clock)
    outcome = step(first, workload(), None)
    clock.now += outcome.requeue_after or 0
    outcome = step(first, workload(), outcome)  # second failure: 1 s back-off
    failure = outcome.status.last_failure
    assert failure is not None
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", failure.time)
    assert all(
        re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", c.last_transition_time)
        for c in outcome.status.conditions
    )
    restarted = Reconciler(lambda _: runner, backoff=policy, clock=clock)
    writes = runner.writes
    clock.now += 0.5
    early = step(restarted, workload(), outcome)
    assert runner.writes == writes
    assert early.requeue_after == pytest.approx(0.5, abs=1e-3)


def test_a_spec_change_resets_the_back_off(
    reconciler: Reconciler, runner: MemoryRunner, clock: Clock
) -> None:
    runner.exit_on_start = 1
    outcome = step(reconciler, workload(), None)
    for _ in range(3):
        clock.now += outcome.requeue_after or 0
        outcome = step(reconciler, workload(), outcome)
    runner.exit_on_start = None
    fixed = step(reconciler, workload(container={"image": "iris:2"}), outcome, generation=2)
    assert fixed.status.phase == Phase.RUNNING
    assert fixed.status.observed_generation == 2


def test_a_container_killed_once_is_replaced_at_once_and_counted(
    reconciler: Reconciler, runner: MemoryRunner
) -> None:
    running = step(reconciler, workload(), None)
    runner.kill("iris-1.0", 137)
    repaired = step(reconciler, workload(), running)
    assert repaired.status.phase == Phase.RUNNING
    assert repaired.status.restart_count == 1
    assert {e.reason for e in repaired.events} == {"ContainerExited", "Replaced"}


def test_a_container_removed_outside_is_recreated(
    reconciler: Reconciler, runner: MemoryRunner
) -> None:
    running = step(reconciler, workload(), None)
    runner.containers.clear()
    repaired = step(reconciler, workload(), running)
    assert repaired.status.phase == Phase.RUNNING
    assert "iris-1.0" in runner.containers
    assert repaired.status.restart_count == 1
    assert [e.reason for e in repaired.events] == ["Recreating", "Created"]


def test_a_container_removed_between_the_look_and_the_apply_is_counted_as_recreated(
    reconciler: Reconciler, runner: MemoryRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    # ``docker rm -f`` reads as running until its kill lands: the step's observe sees the
    # old container up, its apply finds it gone and creates another.
    running = step(reconciler, workload(), None)
    look = runner.observe

    def removed_right_after_the_look(w: Workload) -> Any:
        seen = look(w)
        runner.containers.clear()
        return seen

    monkeypatch.setattr(runner, "observe", removed_right_after_the_look)
    repaired = step(reconciler, workload(), running)
    assert repaired.status.phase == Phase.RUNNING
    assert repaired.status.restart_count == 1
    assert running.status.runner is not None and repaired.status.runner is not None
    assert repaired.status.runner.workload_id != running.status.runner.workload_id
    assert [e.reason for e in repaired.events] == ["Recreating", "Created"]


def test_a_container_seen_exited_and_gone_at_the_apply_was_removed_not_crashed(
    reconciler: Reconciler, runner: MemoryRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    # ``docker rm -f`` kills first: the look may catch the container exited (137) before
    # the removal; the apply finds it gone. A removal outside us, not a crash.
    running = step(reconciler, workload(), None)
    look = runner.observe

    def killed_then_removed(w: Workload) -> Any:
        runner.kill("iris-1.0", 137)
        seen = look(w)
        runner.containers.clear()
        return seen

    monkeypatch.setattr(runner, "observe", killed_then_removed)
    repaired = step(reconciler, workload(), running)
    assert repaired.status.phase == Phase.RUNNING
    assert repaired.status.restart_count == 1
    assert repaired.status.consecutive_failures == 0
    assert repaired.status.last_failure is None
    assert [e.reason for e in repaired.events] == ["Recreating", "Created"]


def test_a_crashed_container_left_for_the_apply_is_still_a_crash(
    reconciler: Reconciler, runner: MemoryRunner
) -> None:
    running = step(reconciler, workload(), None)
    runner.kill("iris-1.0", 3)
    repaired = step(reconciler, workload(), running)
    assert repaired.status.restart_count == 1
    assert repaired.status.last_failure is not None
    assert repaired.status.last_failure.exit_code == 3
    assert [e.reason for e in repaired.events] == ["ContainerExited", "Replaced"]


def test_a_steady_container_is_not_counted_as_restarted(
    reconciler: Reconciler, runner: MemoryRunner
) -> None:
    running = step(reconciler, workload(), None)
    again = step(reconciler, workload(), running)
    assert again.status.restart_count == 0
    assert [e.reason for e in again.events] == []


def test_oom_kill_is_reported_as_such(reconciler: Reconciler, runner: MemoryRunner) -> None:
    running = step(reconciler, workload(), None)
    runner.kill("iris-1.0", 137, oom=True)
    outcome = step(reconciler, workload(), running)
    failure = outcome.status.last_failure
    assert failure is not None and failure.oom_killed and failure.reason == Reason.OOM_KILLED
    assert "was OOM-killed" in failure.message
    assert "OOMKilled" in [e.reason for e in outcome.events]


def test_an_unavailable_engine_makes_ready_unknown_and_retries(
    reconciler: Reconciler, runner: MemoryRunner
) -> None:
    running = step(reconciler, workload(), None)
    runner.available = False
    outcome = step(reconciler, workload(), running)
    assert condition(outcome.status, ConditionType.READY) == ("Unknown", Reason.RUNNER_UNAVAILABLE)
    assert outcome.status.endpoints == []
    assert outcome.rate_limited  # the queue's back-off decides when
    runner.available = True
    back = step(reconciler, workload(), outcome)
    assert back.status.ready


@pytest.mark.parametrize(
    ("error", "reason", "retried"),
    [
        (errors.ImageNotFound('image "x:1" not found'), Reason.IMAGE_NOT_FOUND, True),
        (errors.ContainerConflict("iris-1.0 is not ours"), Reason.CONFLICT, True),
        (
            errors.RunnerDisabled("RUNNERS_DOCKER_ENABLED is not true"),
            Reason.RUNNER_DISABLED,
            False,
        ),
    ],
)
def test_runner_errors_fail_with_their_reason_and_message(
    reconciler: Reconciler,
    runner: MemoryRunner,
    error: errors.RunnerError,
    reason: Reason,
    retried: bool,
) -> None:
    runner.fail_apply = error
    outcome = step(reconciler, workload(), None)
    assert outcome.status.phase == Phase.FAILED
    assert condition(outcome.status, ConditionType.READY) == ("False", reason)
    assert outcome.status.message == error.message
    assert (outcome.requeue_after is not None) is retried
    assert [e.type for e in outcome.events] == ["Warning"]


def test_ready_follows_the_readiness_probe(reconciler: Reconciler, runner: MemoryRunner) -> None:
    probed = workload(container={"readinessProbe": {"httpGet": {"path": "/health", "port": 8080}}})
    runner.probe_ok = False
    starting = step(reconciler, probed, None)
    assert not starting.status.ready
    assert condition(starting.status, ConditionType.READY) == ("False", Reason.PROBE_FAILED)
    assert starting.requeue_after == 5
    runner.probe_ok = True
    ready = step(reconciler, probed, starting)
    assert ready.status.ready and ready.status.phase == Phase.RUNNING
    runner.probe_ok = False
    unhealthy = step(reconciler, probed, ready)
    assert not unhealthy.status.ready
    assert [e.reason for e in unhealthy.events] == ["Unhealthy"]


def test_a_second_owner_of_the_same_id_is_a_conflict(reconciler: Reconciler) -> None:
    step(reconciler, workload(uid="first"), None)
    second = step(reconciler, workload(uid="second"), None)
    assert condition(second.status, ConditionType.READY) == ("False", Reason.CONFLICT)


def test_garbage_collection_removes_only_orphans(
    reconciler: Reconciler, runner: MemoryRunner
) -> None:
    step(reconciler, workload(uid="alive"), None)
    other = Workload(
        Owner("models", "gone", "dead"),
        MLModelSpec.model_validate({"id": "gone:1", "container": {"image": "x:1", "ports": [1]}}),
    )
    step(reconciler, other, None)
    removed = reconciler.collect_garbage(runner, lambda: {"alive"})
    assert [o.workload_name for o in removed] == ["gone-1"]
    assert list(runner.containers) == ["iris-1.0"]


def test_garbage_collection_never_removes_a_workload_created_after_the_listing(
    reconciler: Reconciler, runner: MemoryRunner
) -> None:
    orphan = Workload(
        Owner("models", "gone", "dead"),
        MLModelSpec.model_validate({"id": "gone:1", "container": {"image": "x:1", "ports": [1]}}),
    )
    step(reconciler, orphan, None)

    def owners_listed_later() -> set[str]:
        step(reconciler, workload(uid="new"), None)  # created between the two listings
        return {"new"}

    removed = reconciler.collect_garbage(runner, owners_listed_later)
    assert [o.workload_name for o in removed] == ["gone-1"]
    assert list(runner.containers) == ["iris-1.0"]


def test_a_refused_spec_fails_with_its_reason_and_tells_the_user_once(
    reconciler: Reconciler,
) -> None:
    running = step(reconciler, workload(), None)
    refused = reconciler.refuse(
        key="models/iris", generation=2, previous=running.status, message="spec.id: bad"
    )
    assert refused.status.phase == Phase.FAILED
    assert refused.status.observed_generation == 2
    assert refused.status.endpoints == []
    assert condition(refused.status, ConditionType.READY) == ("False", Reason.INVALID_SPEC)
    assert [e.reason for e in refused.events] == ["InvalidSpec"]
    again = reconciler.refuse(
        key="models/iris", generation=2, previous=refused.status, message="spec.id: bad"
    )
    assert again.events == ()


def named(name: str, **spec: Any) -> Workload:
    model = MLModelSpec.model_validate(
        {"id": f"{name}:1", "container": {"image": "x:1", "ports": [80]}, **spec}
    )
    return Workload(Owner("models", name, f"uid-{name}"), model)


def test_a_resync_of_steady_models_asks_the_engine_once_and_finds_nothing_stale(
    reconciler: Reconciler, runner: MemoryRunner
) -> None:
    models = [named(f"m{i}") for i in range(20)] + [named("off", suspend=True)]
    statuses = {w.owner.uid: step(reconciler, w, None).status for w in models}
    runner.lists = 0
    result = reconciler.resync(runner, statuses, lambda: set(statuses))
    assert result.stale == frozenset()
    assert result.removed == ()
    assert runner.lists == 1


def test_a_resync_finds_the_models_whose_container_died_vanished_or_changed(
    reconciler: Reconciler, runner: MemoryRunner
) -> None:
    models = {name: named(name) for name in ("steady", "killed", "removed", "swapped", "new")}
    statuses: dict[str, MLModelStatus | None] = {
        w.owner.uid: step(reconciler, w, None).status for w in models.values()
    }
    statuses["uid-new"] = None  # never reconciled by this process
    runner.kill("killed-1")
    del runner.containers["removed-1"]
    runner.containers["swapped-1"].id = "someone-elses"
    result = reconciler.resync(runner, statuses, lambda: set(statuses))
    assert result.stale == {"uid-killed", "uid-removed", "uid-swapped", "uid-new"}
