"""Exponential back-off with a cap: one policy type for every wait after a failure.

Two uses, two methods:

- ``delay(failures)``: a model's crash loop (the reconcile core counts failures in the
  status). The first repair is immediate (a container killed once comes back at once); each
  further consecutive failure doubles the wait, up to ``cap``. A model that has run steadily
  for ``stable_after`` seconds has its failure count reset, as the kubelet does.
- ``retry(attempt)``: the controller's own retries — a reconcile or status write that raised,
  a removal the runner refused, a lost event stream. Never immediate: ``base`` after the
  first failed attempt, doubling up to ``cap``.
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

    def retry(self, attempt: int) -> float:
        """The wait after failed attempt number ``attempt`` (1, 2, ...) of an operation."""
        return float(min(self.cap, self.base * 2 ** (max(attempt, 1) - 1)))


# The controller's retry policy: a failed step is tried again after 0.5 s, 1 s, 2 s ... 10 s.
RETRY = BackoffPolicy(base=0.5, cap=10.0)
