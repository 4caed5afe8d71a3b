"""Fixtures shared by the unit tests of the reconcile core: an in-memory runner, a clock the
test moves by hand, and a reconciler wired to both."""

from __future__ import annotations

import time

import pytest

from mlplatform.core.backoff import BackoffPolicy
from mlplatform.core.reconcile import Reconciler
from tests.support.memory_runner import MemoryRunner


class Clock:
    """A clock that stands still until a test moves ``now``."""

    def __init__(self, now: float | None = None) -> None:
        self.now = time.time() if now is None else now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def runner() -> MemoryRunner:
    return MemoryRunner()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def reconciler(runner: MemoryRunner, clock: Clock) -> Reconciler:
    return Reconciler(
        lambda _: runner,
        backoff=BackoffPolicy(base=1, cap=8, stable_after=10),
        clock=clock,
        min_ready=1.0,
    )
