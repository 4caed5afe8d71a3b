"""A delaying, de-duplicating, rate-limited work queue of keys (client-go's workqueue, small).

- A key is handed to at most one worker at a time (``get`` … ``done``).
- Adding a key that is queued keeps the earlier of the two due times, so a burst of adds
  for one key is one hand-out.
- Adding a key that is being processed marks it dirty: it is queued again (at the earliest
  due time asked for) when the worker calls ``done``, so nothing that happened during a
  step is lost.
- ``add_rate_limited`` requeues a key after a failure, waiting longer after each
  consecutive one (the controller's one ``BackoffPolicy``) and never sooner than an overall
  token bucket allows (``rate`` per second, ``burst`` at once: client-go's default pair,
  so a thousand keys failing together, an engine down, retry at ``rate`` and not all at
  once); ``forget`` ends a key's count once it succeeded (or is gone).

Thread-safe; time comes from a ``Clock`` (tests drive it); ``shutdown`` wakes every waiter.
"""

from __future__ import annotations

import heapq
import threading
import time
from collections.abc import Hashable
from typing import Generic, TypeVar

from mlplatform.core.backoff import RETRY, BackoffPolicy
from mlplatform.core.clock import MONOTONIC, Clock

K = TypeVar("K", bound=Hashable)


# The overall bucket of rate-limited requeues (client-go's default controller rate limiter).
BUCKET_RATE = 10.0
BUCKET_BURST = 100


class WorkQueue(Generic[K]):
    def __init__(
        self,
        *,
        clock: Clock = MONOTONIC,
        backoff: BackoffPolicy = RETRY,
        rate: float = BUCKET_RATE,
        burst: int = BUCKET_BURST,
    ) -> None:
        self._clock = clock
        self._backoff = backoff
        self._rate = rate
        self._burst = float(burst)
        self._tokens = float(burst)
        self._refilled = clock.now()
        self._cond = threading.Condition()
        self._due: dict[K, float] = {}
        self._heap: list[tuple[float, int, K]] = []
        self._processing: set[K] = set()
        self._dirty: dict[K, float] = {}
        self._failures: dict[K, int] = {}
        self._counter = 0
        self._closed = False

    def add(self, key: K, after: float = 0.0) -> None:
        """Queue ``key`` to be processed in ``after`` seconds (the sooner of two asks wins)."""
        with self._cond:
            if self._closed:
                return
            self._add(key, self._clock.now() + max(0.0, after))

    def add_rate_limited(self, key: K, *, before: float | None = None) -> float | None:
        """Queue ``key`` again after its next back-off; the wait, or None when that would be
        due only after ``before`` (a deadline on the queue's clock): then nothing is queued."""
        with self._cond:
            attempt = self._failures.get(key, 0) + 1
            now = self._clock.now()
            wait = max(self._backoff.retry(attempt), self._bucket_wait(now))
            due = now + wait
            if before is not None and due >= before:
                return None
            self._tokens -= 1.0  # taken only once the key is requeued
            self._failures[key] = attempt
            if not self._closed:
                self._add(key, due)
            return wait

    def _bucket_wait(self, now: float) -> float:
        """Seconds until the bucket has a token (after refilling it up to ``now``)."""
        self._tokens = min(self._burst, self._tokens + (now - self._refilled) * self._rate)
        self._refilled = now
        return 0.0 if self._tokens >= 1.0 else (1.0 - self._tokens) / self._rate

    def forget(self, key: K) -> None:
        """Stop counting failures of ``key``: its next failure waits the shortest back-off."""
        with self._cond:
            self._failures.pop(key, None)

    def failures(self, key: K) -> int:
        """Consecutive failures of ``key`` since it was last forgotten."""
        with self._cond:
            return self._failures.get(key, 0)

    def _add(self, key: K, due: float) -> None:
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
        self._cond.notify_all()

    def get(self, timeout: float | None = None) -> K | None:
        """The next due key, or None on shutdown or after ``timeout`` seconds of the clock."""
        with self._cond:
            deadline = None if timeout is None else self._clock.now() + timeout
            while not self._closed:
                now = self._clock.now()
                self._drop_superseded()
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
                self._clock.wait(self._cond, wait)
            return None

    def _drop_superseded(self) -> None:
        while self._heap and self._due.get(self._heap[0][2]) != self._heap[0][0]:
            heapq.heappop(self._heap)

    def done(self, key: K) -> None:
        """Mark ``key`` processed; if it was added meanwhile, queue it again."""
        with self._cond:
            self._processing.discard(key)
            if key in self._dirty:
                due = self._dirty.pop(key)
                if not self._closed and (key not in self._due or self._due[key] > due):
                    self._push(key, due)
            self._cond.notify_all()

    def due_in(self, key: K) -> float | None:
        """Seconds until ``key`` is due (0 if due now), or None when it is not queued."""
        with self._cond:
            due = self._due.get(key, self._dirty.get(key))
            return None if due is None else max(0.0, due - self._clock.now())

    def shutdown(self) -> None:
        """Hand out nothing more; every ``get`` returns None."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        """Block until no key is being processed or due now (False after ``timeout`` real
        seconds): the controller has done all it can until the clock moves or a key comes."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                self._drop_superseded()
                due_now = bool(self._heap) and self._heap[0][0] <= self._clock.now()
                if not self._processing and not (due_now and not self._closed):
                    return True
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.01))

    def __len__(self) -> int:
        with self._cond:
            return len(self._due)
