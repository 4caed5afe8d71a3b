"""The delaying, de-duplicating, rate-limited work queue under the controller (fake clock)."""

from __future__ import annotations

import threading

from mlplatform.core.backoff import BackoffPolicy
from mlplatform.core.workqueue import WorkQueue
from tests.support.fake_clock import FakeClock


def queue_on(clock: FakeClock) -> WorkQueue[str]:
    return WorkQueue(clock=clock, backoff=BackoffPolicy(base=1.0, cap=4.0))


def test_a_key_added_twice_is_handed_out_once() -> None:
    queue = queue_on(FakeClock())
    queue.add("a")
    queue.add("a")
    assert queue.get(timeout=0) == "a"
    assert queue.get(timeout=0) is None


def test_a_delayed_key_is_not_handed_out_before_it_is_due() -> None:
    clock = FakeClock()
    queue = queue_on(clock)
    queue.add("late", after=60.0)
    queue.add("now")
    assert queue.get(timeout=0) == "now"
    assert queue.get(timeout=0) is None
    clock.advance(59.9)
    assert queue.get(timeout=0) is None
    clock.advance(0.1)
    assert queue.get(timeout=0) == "late"


def test_a_waiting_worker_gets_the_key_when_the_clock_reaches_its_due_time() -> None:
    clock = FakeClock()
    queue = queue_on(clock)
    queue.add("k", after=30.0)
    got: list[str | None] = []
    worker = threading.Thread(target=lambda: got.append(queue.get()))
    worker.start()
    assert queue.wait_idle(1)  # nothing due, nothing processing
    assert got == []
    clock.advance(30.0)
    worker.join(2)
    assert got == ["k"]


def test_the_sooner_of_two_due_times_wins_whatever_the_order() -> None:
    clock = FakeClock()
    queue = queue_on(clock)
    queue.add("k", after=60)
    queue.add("k", after=5)
    queue.add("k", after=30)
    assert queue.due_in("k") == 5
    clock.advance(5)
    assert queue.get(timeout=0) == "k"
    assert queue.get(timeout=0) is None, "the later asks were the same key: one hand-out"


def test_a_key_added_while_processing_comes_back_after_done_and_only_once() -> None:
    queue = queue_on(FakeClock())
    queue.add("k")
    assert queue.get(timeout=0) == "k"
    for _ in range(10):
        queue.add("k")
    assert queue.get(timeout=0) is None, "a key in process must not go to a second worker"
    queue.done("k")
    assert queue.get(timeout=0) == "k"
    queue.done("k")
    assert queue.get(timeout=0) is None


def test_a_delayed_add_while_processing_keeps_its_delay_after_done() -> None:
    clock = FakeClock()
    queue = queue_on(clock)
    queue.add("k")
    assert queue.get(timeout=0) == "k"
    queue.add("k", after=10)
    queue.done("k")
    assert queue.get(timeout=0) is None
    clock.advance(10)
    assert queue.get(timeout=0) == "k"


def test_rate_limited_adds_back_off_until_forgotten() -> None:
    clock = FakeClock()
    queue = queue_on(clock)
    waits = []
    for _ in range(4):
        waits.append(queue.add_rate_limited("k"))
        clock.advance(100)
        assert queue.get(timeout=0) == "k"
        queue.done("k")
    assert waits == [1.0, 2.0, 4.0, 4.0]  # doubling, capped
    assert queue.failures("k") == 4
    queue.forget("k")
    assert queue.failures("k") == 0
    assert queue.add_rate_limited("k") == 1.0


def test_a_rate_limited_add_past_a_deadline_queues_nothing() -> None:
    clock = FakeClock()
    queue = queue_on(clock)
    assert queue.add_rate_limited("k", before=clock.now() + 0.5) is None
    assert queue.due_in("k") is None
    assert queue.failures("k") == 0
    assert queue.add_rate_limited("k", before=clock.now() + 1.5) == 1.0


def test_shutdown_wakes_a_waiting_worker_and_later_adds_are_ignored() -> None:
    queue = queue_on(FakeClock())
    got: list[str | None] = []
    worker = threading.Thread(target=lambda: got.append(queue.get()))
    worker.start()
    queue.shutdown()
    worker.join(2)
    assert not worker.is_alive()
    assert got == [None]
    queue.add("k")
    assert len(queue) == 0


def test_failures_of_many_keys_at_once_are_spread_by_the_overall_bucket() -> None:
    clock = FakeClock()
    queue: WorkQueue[str] = WorkQueue(
        clock=clock, backoff=BackoffPolicy(base=1.0, cap=4.0), rate=10.0, burst=100
    )
    waits = [queue.add_rate_limited(f"k{i}") for i in range(150)]
    # The burst, and the next ten (a token within their one-second back-off): back-off only.
    assert waits[:110] == [1.0] * 110
    # Then one token every 0.1 s: the 150th waits five seconds, not one.
    assert waits[110] is not None and abs(waits[110] - 1.1) < 1e-6
    assert waits[149] is not None and abs(waits[149] - 5.0) < 1e-6
    clock.advance(1.0)
    handed = 0
    while queue.get(timeout=0) is not None:
        handed += 1
    assert handed == 110


def test_the_bucket_refills_at_its_rate_up_to_its_burst() -> None:
    clock = FakeClock()
    queue: WorkQueue[str] = WorkQueue(
        clock=clock, backoff=BackoffPolicy(base=0.01, cap=4.0), rate=10.0, burst=2
    )
    waits = [queue.add_rate_limited(key) for key in "abcde"]
    assert waits[:2] == [0.01, 0.01]
    assert [round(w or 0, 6) for w in waits[2:]] == [0.1, 0.2, 0.3]
    clock.advance(10.0)  # refilled, but never beyond the burst
    assert [queue.add_rate_limited(key) for key in "fgh"][:2] == [0.01, 0.01]
