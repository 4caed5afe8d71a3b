"""A delaying, de-duplicating work queue of model keys (controller-runtime's workqueue, small).

A key is handed to at most one worker at a time; adding a key that is queued keeps the
earlier of the two due times; adding a key that is being processed marks it dirty, and it is
queued again when the worker calls ``done``. Thread-safe; ``shutdown`` wakes every waiter.
"""

from __future__ import annotations

import heapq
import threading
import time
from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class WorkQueue(Generic[K]):
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._due: dict[K, float] = {}
        self._heap: list[tuple[float, int, K]] = []
        self._processing: set[K] = set()
        self._dirty: dict[K, float] = {}
        self._counter = 0
        self._closed = False

    def add(self, key: K, after: float = 0.0) -> None:
        """Queue ``key`` to be processed in ``after`` seconds (sooner wins)."""
        due = time.monotonic() + max(0.0, after)
        with self._cond:
            if self._closed:
                return
            if key in self._processing:
                self._dirty[key] = min(due, self._dirty.get(key, due))
                return
            if key in self._due and self._due[key] <= due:
                return
            self._push(key, due)

    def _push(self, key: K, due: float) -> None:
        self._due[key] = due
        self._counter += 1
        heapq.heappush(self._heap, (due, self._counter, key))
        self._cond.notify()

    def get(self, timeout: float | None = None) -> K | None:
        """The next due key, or None on shutdown or after ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._closed:
                now = time.monotonic()
                while self._heap and self._due.get(self._heap[0][2]) != self._heap[0][0]:
                    heapq.heappop(self._heap)  # superseded entry
                if self._heap and self._heap[0][0] <= now:
                    _, _, key = heapq.heappop(self._heap)
                    del self._due[key]
                    self._processing.add(key)
                    return key
                wait = self._heap[0][0] - now if self._heap else None
                if deadline is not None:
                    left = deadline - now
                    if left <= 0:
                        return None
                    wait = left if wait is None else min(wait, left)
                self._cond.wait(wait)
            return None

    def done(self, key: K) -> None:
        """Mark ``key`` processed; if it was added meanwhile, queue it again."""
        with self._cond:
            self._processing.discard(key)
            if key in self._dirty:
                due = self._dirty.pop(key)
                if key not in self._due or self._due[key] > due:
                    self._push(key, due)

    def forget(self, key: K) -> None:
        """Drop a queued key (the model is gone)."""
        with self._cond:
            self._due.pop(key, None)
            self._dirty.pop(key, None)

    def shutdown(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def __len__(self) -> int:
        with self._cond:
            return len(self._due)
