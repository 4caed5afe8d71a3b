"""A clock a test moves by hand, for the controller's queue and deadlines (``core.clock``).

Waiting on it waits for ``advance`` (or a notify), never for real time to pass: a key due in
an hour is handed out the moment the test advances the clock by an hour.
"""

from __future__ import annotations

import threading
import weakref


class FakeClock:
    def __init__(self, start: float = 1000.0) -> None:
        self._now = start
        self._lock = threading.Lock()
        self._waiting: weakref.WeakSet[threading.Condition] = weakref.WeakSet()

    def now(self) -> float:
        with self._lock:
            return self._now

    def wait(self, condition: threading.Condition, timeout: float | None) -> None:
        if timeout is not None and timeout <= 0:
            return
        with self._lock:
            self._waiting.add(condition)
        # Woken by ``advance`` or the condition's own notify; the short real bound only
        # guards against a wake-up lost to a race (the caller re-reads the clock and loops).
        condition.wait(0.05)

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds
            waiting = list(self._waiting)
        for condition in waiting:
            with condition:
                condition.notify_all()
