"""The one controller (``core.controller``): queue, workers, requeue, back-off, resync,
deletion and shutdown — against the in-memory runner, an in-memory front end and a clock the
test moves by hand. Nothing here sleeps: waits are for the controller to become idle."""

from __future__ import annotations

import queue
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from mlplatform import errors
from mlplatform.core.backoff import BackoffPolicy
from mlplatform.core.controller import (
    Controller,
    ControllerStopped,
    Deleting,
    Desired,
    Found,
    Refused,
    Released,
    RetryLater,
)
from mlplatform.core.reconcile import Event, Outcome, Reconciler
from mlplatform.models.spec import MLModelSpec, container_name
from mlplatform.models.status import MLModelStatus, Phase, Reason
from mlplatform.runners.base import (
    OwnedWorkload,
    Owner,
    ProbeResult,
    RunnerEvent,
    RunnerStatus,
    Workload,
)
from tests.support.fake_clock import FakeClock
from tests.support.memory_runner import MemoryRunner

WAIT = 5.0  # real seconds a test waits for the controller to go idle (it takes milliseconds)


def workload(name: str = "iris", uid: str | None = None, **spec: Any) -> Workload:
    container = {"image": "iris:1", "ports": [8080], **spec.pop("container", {})}
    model = MLModelSpec.model_validate({"id": f"{name}:1.0", "container": container, **spec})
    return Workload(owner=Owner("models", name, uid or f"uid-{name}"), spec=model)


class EventQueue:
    """The in-memory runner's event stream: a test pushes, the drift watcher reads."""

    def __init__(self) -> None:
        self.events: queue.Queue[RunnerEvent | None] = queue.Queue()

    def __iter__(self) -> Iterator[RunnerEvent]:
        while True:
            event = self.events.get()
            try:
                if event is None:
                    return
                yield event
            finally:
                self.events.task_done()

    def close(self) -> None:
        self.events.put(None)


class Runner(MemoryRunner):
    """The in-memory runner, counting calls by model, with an event stream, a gate that
    holds calls while a test looks, and a surprise (a non-runner error) to raise."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: Counter[tuple[str, str]] = Counter()
        self.streams: list[EventQueue] = []
        self.hold: threading.Event | None = None
        self.entered = threading.Event()
        self.surprise: Exception | None = None

    def _gate(self, call: str, key: str = "") -> None:
        self.calls[call, key] += 1
        if self.surprise is not None:
            raise self.surprise
        hold = self.hold
        if hold is not None:
            self.entered.set()
            assert hold.wait(WAIT), "the test never released the held call"

    def count(self, call: str, key: str | None = None) -> int:
        return sum(n for (c, k), n in self.calls.items() if c == call and key in (None, k))

    def apply(self, workload: Workload) -> RunnerStatus:
        self._gate("apply", workload.owner.key)
        return super().apply(workload)

    def observe(self, workload: Workload) -> RunnerStatus:
        self._gate("observe", workload.owner.key)
        return super().observe(workload)

    def delete(self, workload: Workload) -> RunnerStatus:
        self._gate("delete", workload.owner.key)
        return super().delete(workload)

    def probe(self, workload: Workload, status: RunnerStatus) -> ProbeResult:
        self._gate("probe", workload.owner.key)
        return super().probe(workload, status)

    def list_owned(self) -> list[OwnedWorkload]:
        self._gate("list_owned")
        return super().list_owned()

    def events(self) -> EventQueue:
        self._check()
        stream = EventQueue()
        self.streams.append(stream)
        return stream

    def emit(self, owner: Owner, action: str = "die") -> None:
        for stream in self.streams:
            stream.events.put(RunnerEvent(owner=owner, model_id="m", action=action))

    def drained(self) -> None:
        """Return once the drift watcher has handled every event pushed so far."""
        for stream in self.streams:
            stream.events.join()


@dataclass
class Models:
    """An in-memory front end: the desired-state source and the status sink in one."""

    found: dict[str, Found] = field(default_factory=dict)
    status: dict[str, MLModelStatus] = field(default_factory=dict)
    outcomes: list[tuple[str, Outcome]] = field(default_factory=list)
    released_keys: list[tuple[str, list[Event]]] = field(default_factory=list)
    fail_writes: int = 0
    attempts: int = 0

    def desire(self, w: Workload, generation: int = 1) -> str:
        self.found[w.owner.key] = Desired(w, generation)
        return w.owner.key

    def delete(self, key: str, timeout: float | None = 30.0) -> None:
        found = self.found[key]
        w = found.workload if isinstance(found, Desired) else None
        self.found[key] = Deleting(found.owner, w, timeout)

    def written(self, key: str) -> list[Outcome]:
        return [outcome for k, outcome in self.outcomes if k == key]

    # DesiredStateSource
    def get(self, key: str) -> Found | None:
        found = self.found.get(key)
        if isinstance(found, Desired | Refused):
            return replace(found, status=self.status.get(key))
        return found

    def list_keys(self) -> list[str]:
        return list(self.found)

    def live_uids(self) -> set[str]:
        return {found.owner.uid for found in self.found.values()}

    def in_scope(self, owned: OwnedWorkload) -> bool:
        return True

    # StatusSink
    def write(self, key: str, found: Desired | Refused, outcome: Outcome) -> None:
        self.attempts += 1
        self.status[key] = outcome.status
        if self.fail_writes:
            self.fail_writes -= 1
            raise RetryLater("the API server does not answer")
        self.outcomes.append((key, outcome))

    def released(self, key: str, found: Deleting, events: Sequence[Event]) -> None:
        self.released_keys.append((key, list(events)))
        self.found.pop(key, None)
        self.status.pop(key, None)


@dataclass
class Harness:
    clock: FakeClock
    runner: Runner
    models: Models
    controller: Controller

    def settle(self) -> None:
        assert self.controller.queue.wait_idle(WAIT), "the controller did not go idle"

    def start_with(self, w: Workload) -> str:
        """``w`` desired, the controller started and idle again; ``w``'s key."""
        key = self.models.desire(w)
        self.controller.enqueue(key)
        self.controller.start()
        self.settle()
        return key

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)
        self.settle()


@pytest.fixture
def make() -> Iterator[Any]:
    built: list[Controller] = []

    def build(**options: Any) -> Harness:
        clock, models = FakeClock(), Models()
        runner = options.pop("runner", None) or Runner()
        settings: dict[str, Any] = {
            "workers": 2,
            "resync_interval": None,
            "watch_runner": False,
            "retry": BackoffPolicy(base=0.5, cap=10.0),
            **options,
        }
        controller = Controller(
            # Wall time a moment ahead of the containers' start: they count as up at once.
            reconciler=Reconciler(lambda _: runner, min_ready=0, clock=lambda: time.time() + 1),
            runner=runner,
            source=models,
            sink=models,
            clock=clock,
            **settings,
        )
        built.append(controller)
        return Harness(clock, runner, models, controller)

    yield build
    for controller in built:
        controller.stop(timeout=WAIT)


# --- converging, and the cost of a steady model -------------------------------------------


def test_a_model_is_converged_once_and_then_costs_the_runner_nothing(make: Any) -> None:
    h = make()
    key = h.start_with(workload())
    (outcome,) = h.models.written(key)
    assert outcome.status.phase == Phase.RUNNING
    assert [e.reason for e in outcome.events] == ["Created"]
    calls = sum(h.runner.calls.values())
    h.advance(3600)
    assert sum(h.runner.calls.values()) == calls, "a steady model must not be polled"


def test_a_refused_model_gets_a_failed_status_and_no_runner_call(make: Any) -> None:
    h = make()
    owner = Owner("models", "bad", "uid-bad")
    h.models.found[owner.key] = Refused(owner, 3, ("spec.id: is required",))
    h.controller.enqueue(owner.key)
    h.controller.start()
    h.settle()
    (outcome,) = h.models.written(owner.key)
    assert outcome.status.phase == Phase.FAILED
    assert outcome.status.observed_generation == 3
    assert "spec.id: is required" in outcome.status.message
    assert sum(h.runner.calls.values()) == 0


# --- coalescing -------------------------------------------------------------------------------


def test_many_notifications_for_one_waiting_key_make_one_reconcile(make: Any) -> None:
    h = make()
    key = h.models.desire(workload())
    for _ in range(100):
        h.controller.enqueue(key)
    h.controller.start()
    h.settle()
    assert len(h.models.written(key)) == 1
    assert h.runner.count("observe", key) == 1


def test_runner_events_during_a_reconcile_make_exactly_one_more(make: Any) -> None:
    h = make(watch_runner=True)
    w = workload()
    key = h.models.desire(w)
    h.runner.hold = threading.Event()
    h.controller.start()
    h.controller.enqueue(key)
    assert h.runner.entered.wait(WAIT)  # a worker is inside the first reconcile
    assert _eventually(lambda: bool(h.runner.streams)), "the drift watcher never connected"
    for _ in range(20):
        h.runner.emit(w.owner)
    h.runner.emit(Owner("models", "iris", "uid-of-an-older-iris"))  # another object's container
    h.runner.emit(Owner("models", "stranger", "uid-stranger"))  # not a model we hold
    h.runner.drained()
    h.runner.hold.set()
    h.settle()
    assert len(h.models.written(key)) == 2, "20 events during a step: one more reconcile"
    assert h.runner.count("observe", "models/stranger") == 0


# --- requeue and back-off -----------------------------------------------------------------------


def test_a_model_is_looked_at_again_when_its_outcome_asks(make: Any) -> None:
    h = make()
    probed = workload(
        container={"readinessProbe": {"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 10}}
    )
    key = h.start_with(probed)
    assert h.models.written(key)[-1].requeue_after == 10
    assert h.runner.count("probe", key) == 1
    h.advance(9.9)
    assert h.runner.count("probe", key) == 1, "looked again before the outcome asked"
    h.advance(0.1)
    assert h.runner.count("probe", key) == 2


def test_a_failed_status_write_is_retried_with_back_off_and_then_forgotten(make: Any) -> None:
    h = make()
    h.models.fail_writes = 2
    key = h.start_with(workload())
    assert (h.models.attempts, h.controller.queue.failures(key)) == (1, 1)
    h.advance(0.49)
    assert h.models.attempts == 1, "retried before the first back-off (0.5 s)"
    h.advance(0.01)
    assert (h.models.attempts, h.controller.queue.failures(key)) == (2, 2)
    h.advance(0.99)
    assert h.models.attempts == 2, "retried before the second back-off (1 s)"
    h.advance(0.01)
    assert h.models.attempts == 3
    assert len(h.models.written(key)) == 1
    assert h.controller.queue.failures(key) == 0, "a success forgets the failures"
    assert len(h.runner.containers) == 1, "a retried step converges, it does not duplicate"
    h.advance(600)
    assert h.models.attempts == 3


def test_an_unexpected_error_is_retried_and_the_workers_survive_it(make: Any) -> None:
    h = make(workers=1)
    h.runner.surprise = RuntimeError("a bug")
    key = h.start_with(workload())
    assert h.models.written(key) == []
    h.runner.surprise = None
    h.advance(0.5)
    (outcome,) = h.models.written(key)
    assert outcome.status.phase == Phase.RUNNING


def test_a_model_back_off_comes_from_its_status_not_from_the_queue(make: Any) -> None:
    h = make()
    h.runner.exit_on_start = 1
    key = h.start_with(workload())
    first = h.models.written(key)[-1]
    assert first.status.consecutive_failures == 1
    assert h.controller.queue.failures(key) == 0, "a crash is the model's, not a step failure"
    assert first.requeue_after is not None


# --- resync ----------------------------------------------------------------------------------


def test_a_resync_lists_once_repairs_stale_models_and_removes_orphans(make: Any) -> None:
    h = make(resync_interval=60)
    steady, killed = workload("steady"), workload("killed")
    for w in (steady, killed):
        h.controller.enqueue(h.models.desire(w))
    h.controller.start()
    h.settle()
    # The start-up resync, and each model reaching Running looks once for a workload of an
    # old id to retire.
    assert h.runner.count("list_owned") == 1 + 2
    h.runner.containers.pop(container_name(killed.spec.id))  # gone, and no event told us
    h.runner.apply(workload("orphan"))  # a workload whose model is not held
    observed = h.runner.count("observe", steady.owner.key)
    h.advance(59)
    assert h.runner.count("list_owned") == 3
    h.advance(1)
    # One listing for the resync whatever the models, one by the restarted model's hand-over.
    assert h.runner.count("list_owned") == 3 + 1 + 1
    assert h.runner.count("observe", steady.owner.key) == observed, "steady: not reconciled"
    assert sorted(h.runner.containers) == ["killed-1.0", "steady-1.0"]
    restarted = h.models.written(killed.owner.key)[-1]
    assert restarted.status.phase == Phase.RUNNING
    assert restarted.status.restart_count == 1


def test_a_resync_with_the_runner_down_makes_every_model_say_so(make: Any) -> None:
    h = make()
    keys = [h.models.desire(workload(name)) for name in ("a", "b")]
    for key in keys:
        h.controller.enqueue(key)
    h.controller.start()
    h.settle()
    h.runner.available = False
    h.controller.resync_soon()
    h.settle()
    for key in keys:
        status = h.models.written(key)[-1].status
        ready = status.condition("Ready")
        assert ready is not None and ready.reason == Reason.RUNNER_UNAVAILABLE


# --- deletion --------------------------------------------------------------------------------


def test_a_deleted_model_has_its_workload_removed_and_is_released(make: Any) -> None:
    h = make()
    w = workload()
    key = h.start_with(w)
    applies = h.runner.count("apply", key)
    h.models.delete(key)
    deletion = h.controller.deletion(key)
    h.settle()
    assert deletion.future.result(timeout=0) == Released(True)
    assert [(k, [e.reason for e in events]) for k, events in h.models.released_keys] == [
        (key, ["Removed"])
    ]
    assert h.runner.containers == {}
    assert h.runner.count("apply", key) == applies, "a model being deleted is not reconciled"


def test_a_new_object_of_a_released_name_is_a_deletion_of_its_own(make: Any) -> None:
    h = make()  # not started: the released record is still there when the next one comes
    first, second = Owner("models", "iris", "uid-1"), Owner("models", "iris", "uid-2")
    h.models.found[first.key] = Deleting(first, None, 30.0)
    released = h.controller.deletion(first.key)
    h.controller.expire(released)  # released (given up) at once
    assert released.future.done()
    h.models.found[second.key] = Deleting(second, None, 30.0)
    pending = h.controller.deletion(second.key)
    assert pending is not released and not pending.future.done()
    h.controller.start()
    h.settle()
    assert pending.future.result(timeout=0) == Released(True)
    assert [key for key, _ in h.models.released_keys] == [first.key, second.key]


def test_a_never_valid_model_is_released_without_a_runner_call(make: Any) -> None:
    h = make()
    owner = Owner("models", "bad", "uid-bad")
    h.models.found[owner.key] = Deleting(owner, None, 30.0)
    h.controller.start()
    deletion = h.controller.deletion(owner.key)
    h.settle()
    assert deletion.future.result(timeout=0) == Released(True)
    assert h.models.released_keys == [(owner.key, [])]
    assert sum(h.runner.calls.values()) == 0


def test_deletion_while_the_runner_is_down_is_retried_then_released_by_its_timeout(
    make: Any,
) -> None:
    h = make()
    key = h.start_with(workload())
    h.runner.available = False
    h.models.delete(key, timeout=5.0)
    started = h.clock.now()
    deletion = h.controller.deletion(key)
    h.settle()
    while not deletion.future.done() and h.clock.now() - started < 10:
        h.advance(0.25)
    released = deletion.future.result(timeout=0)
    assert not released.removed
    assert h.clock.now() - started <= 5.0, "released within its timeout"
    assert h.runner.count("delete", key) >= 3, "retried while it could"
    ((_, events),) = h.models.released_keys
    assert [e.reason for e in events] == ["ContainerNotRemoved"]
    assert "garbage-collected" in events[0].message
    assert list(h.runner.containers) == ["iris-1.0"], "left for garbage collection"


def test_a_hung_removal_is_released_at_the_deadline_and_only_once(make: Any) -> None:
    h = make()
    key = h.start_with(workload())
    h.runner.hold = threading.Event()
    h.models.delete(key, timeout=5.0)
    deletion = h.controller.deletion(key)
    assert h.runner.entered.wait(WAIT)  # the removal is stuck in the runner
    h.clock.advance(4.9)
    assert not deletion.future.done()
    h.clock.advance(0.1)
    released = h.controller.wait_deletion(deletion)
    assert not released.removed
    assert "did not answer within 5s" in released.message
    h.runner.hold.set()  # the stuck call ends after all
    h.settle()
    assert len(h.models.released_keys) == 1, "released once, whoever came first"


def test_errors_that_no_retry_can_fix_release_a_deletion_at_once(make: Any) -> None:
    h = make()
    key = h.start_with(workload())
    h.runner.surprise = errors.RunnerDisabled("the runner is switched off")
    h.models.delete(key, timeout=30.0)
    deletion = h.controller.deletion(key)
    h.settle()
    assert deletion.future.result(timeout=0).removed is False
    assert h.runner.count("delete", key) == 1


class MeetingRunner(Runner):
    """Removals wait until ``parties`` of them are in the runner at once (or fail)."""

    def __init__(self, parties: int) -> None:
        super().__init__()
        self.meeting = threading.Barrier(parties, timeout=WAIT)

    def delete(self, workload: Workload) -> RunnerStatus:
        self.meeting.wait()  # BrokenBarrierError unless the others are removing too
        return super().delete(workload)


def test_deletions_run_together_apart_from_the_reconcile_workers(make: Any) -> None:
    runner = MeetingRunner(parties=3)
    h = make(workers=1, runner=runner)
    keys = [h.models.desire(workload(name)) for name in ("a", "b", "c")]
    h.controller.enqueue_all()
    h.controller.start()
    h.settle()
    runner.hold = threading.Event()  # every runner call waits until the test lets go
    for key in keys:
        h.models.delete(key)
        h.controller.enqueue(key)
    assert _eventually(lambda: runner.count("delete") == 3), "removals ran one at a time"
    late = h.models.desire(workload("d"))
    h.controller.enqueue(late)
    assert _eventually(lambda: runner.count("observe", late) == 1), (
        "the one worker was kept busy by the removals"
    )
    runner.hold.set()
    h.settle()
    assert sorted(k for k, _ in h.models.released_keys) == keys
    assert not runner.meeting.broken
    assert h.models.written(late), "the model created meanwhile was converged"


def test_suspends_run_together_in_the_removal_pool(make: Any) -> None:
    runner = MeetingRunner(parties=2)
    h = make(workers=1, runner=runner)
    keys = [h.models.desire(workload(name)) for name in ("a", "b")]
    h.controller.enqueue_all()
    h.controller.start()
    h.settle()
    for key in keys:
        found = h.models.found[key]
        assert isinstance(found, Desired)
        h.models.desire(
            replace(found.workload, spec=found.workload.spec.model_copy(update={"suspend": True})),
            generation=2,
        )
        h.controller.enqueue(key)
    h.settle()
    assert not runner.meeting.broken, "the suspends did not run at the same time"
    assert [h.models.written(k)[-1].status.phase for k in keys] == [Phase.STOPPED] * 2


# --- shutdown ------------------------------------------------------------------------------


def test_stop_lets_the_step_in_flight_finish_and_joins_the_workers(make: Any) -> None:
    h = make()
    key = h.models.desire(workload())
    before = set(threading.enumerate())
    h.runner.hold = threading.Event()
    h.controller.start()
    workers = [t for t in threading.enumerate() if t not in before]
    h.controller.enqueue(key)
    assert h.runner.entered.wait(WAIT)
    stopper = threading.Thread(target=h.controller.stop)
    stopper.start()
    stopper.join(0.005)
    assert stopper.is_alive(), "stop must wait for the runner call in flight"
    h.runner.hold.set()
    stopper.join(WAIT)
    assert not stopper.is_alive()
    assert not any(t.is_alive() for t in workers)
    assert len(h.models.written(key)) == 1, "the step in flight wrote its outcome"
    h.controller.enqueue(key)
    h.clock.advance(60)
    assert len(h.models.written(key)) == 1, "nothing runs after stop"


def test_a_deletion_in_progress_at_stop_is_not_released(make: Any) -> None:
    h = make()
    key = h.start_with(workload())
    h.runner.available = False
    h.models.delete(key, timeout=None)
    deletion = h.controller.deletion(key)
    h.settle()
    h.controller.stop()
    with pytest.raises(ControllerStopped):
        deletion.future.result(timeout=0)
    assert h.models.released_keys == []


def _eventually(check: Any, timeout: float = WAIT) -> bool:
    done = threading.Event()
    for _ in range(int(timeout / 0.001)):
        if check():
            return True
        done.wait(0.001)
    return bool(check())


def test_a_runner_event_about_another_object_of_the_same_name_is_ignored(make: Any) -> None:
    h = make(watch_runner=True)
    w = workload()
    key = h.start_with(w)
    assert _eventually(lambda: bool(h.runner.streams)), "the drift watcher never connected"
    h.runner.emit(Owner("models", "iris", "uid-of-an-older-iris"))
    h.runner.drained()
    h.settle()
    assert len(h.models.written(key)) == 1
    h.runner.emit(w.owner)
    h.runner.drained()
    h.settle()
    assert len(h.models.written(key)) == 2
