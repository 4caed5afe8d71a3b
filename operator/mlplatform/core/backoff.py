"""Exponential back-off with a cap, for crash loops and failed applies.

The first repair is immediate (a container killed once comes back at once); each further
consecutive failure doubles the wait, up to ``cap``. A model that has run steadily for
``stable_after`` seconds has its failure count reset, as the kubelet does.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BackoffPolicy:
    """How long to wait before the next attempt after ``failures`` consecutive failures."""

    base: float = 1.0
    cap: float = 60.0
    stable_after: float = 10.0

    def delay(self, failures: int) -> float:
        if failures <= 1:
            return 0.0
        return float(min(self.cap, self.base * 2 ** (failures - 2)))
