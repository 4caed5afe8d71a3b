"""Time for the controller's queue and deadlines: the monotonic clock, or a test's own.

Everything in the controller that waits (a queued key not yet due, a deletion's deadline)
asks a ``Clock`` for the time and waits through it, so tests can drive time by hand.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds on a clock that never goes back (not wall time)."""

    def wait(self, condition: threading.Condition, timeout: float | None) -> None:
        """Wait on ``condition`` (held by the caller) until notified or ``timeout`` passed."""


class MonotonicClock:
    """The real clock: ``time.monotonic`` and plain condition waits."""

    def now(self) -> float:
        return time.monotonic()

    def wait(self, condition: threading.Condition, timeout: float | None) -> None:
        condition.wait(timeout)


MONOTONIC = MonotonicClock()
