"""The delaying, de-duplicating work queue shared by the front ends."""

from __future__ import annotations

import threading
import time

from mlplatform.core.workqueue import WorkQueue


def test_a_key_added_twice_is_handed_out_once() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add("a")
    queue.add("a")
    assert queue.get(timeout=1) == "a"
    assert queue.get(timeout=0.05) is None


def test_a_delayed_key_is_not_handed_out_before_it_is_due() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add("late", after=1.0)  # wide enough that a loaded machine still sees it wait
    queue.add("now")
    assert queue.get(timeout=1) == "now"
    assert queue.get(timeout=0.1) is None
    started = time.monotonic()
    assert queue.get(timeout=3) == "late"
    assert time.monotonic() - started >= 0.5


def test_the_sooner_of_two_due_times_wins() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add("k", after=60)
    queue.add("k", after=0)
    assert queue.get(timeout=1) == "k"


def test_a_key_added_while_processing_comes_back_after_done() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add("k")
    assert queue.get(timeout=1) == "k"
    queue.add("k")
    assert queue.get(timeout=0.05) is None, "a key in process must not go to a second worker"
    queue.done("k")
    assert queue.get(timeout=1) == "k"


def test_forget_drops_a_queued_key() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add("gone", after=0.01)
    queue.forget("gone")
    assert queue.get(timeout=0.1) is None
    assert len(queue) == 0


def test_shutdown_wakes_a_waiting_worker() -> None:
    queue: WorkQueue[str] = WorkQueue()
    got: list[str | None] = []
    worker = threading.Thread(target=lambda: got.append(queue.get()))
    worker.start()
    queue.shutdown()
    worker.join(2)
    assert not worker.is_alive()
    assert got == [None]
