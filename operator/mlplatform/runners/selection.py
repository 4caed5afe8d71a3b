"""Which runner serves a model: ``spec.runner`` → a ``Runner``.

``runner_for`` builds a new runner; ``Runners`` builds each kind once and keeps it for the
life of the process (a runner holds the engine connection). ``docker`` is the Docker runner
(imported lazily, so code that never runs a model does not need docker-py); ``pod`` is
admitted by the schema but not built yet, and its runner refuses every call with
``RunnerNotImplemented``.
"""

from __future__ import annotations

import threading

from mlplatform import errors
from mlplatform.config import Settings
from mlplatform.models.spec import RunnerType
from mlplatform.runners import base


class UnavailableRunner:
    """A runner for a backend this build does not have: every call says so, cleanly."""

    def __init__(self, type: str) -> None:
        self.type = type

    def _refuse(self) -> errors.RunnerNotImplemented:
        return errors.RunnerNotImplemented(
            f'runner "{self.type}" is not available in this build (only "docker" is)'
        )

    def apply(self, workload: base.Workload) -> base.RunnerStatus:
        raise self._refuse()

    def observe(self, workload: base.Workload) -> base.RunnerStatus:
        raise self._refuse()

    def delete(self, workload: base.Workload) -> base.RunnerStatus:
        raise self._refuse()

    def probe(self, workload: base.Workload, status: base.RunnerStatus) -> base.ProbeResult:
        raise self._refuse()

    def list_owned(self) -> list[base.OwnedWorkload]:
        """Nothing can be owned by a backend that does not exist."""
        return []

    def remove_owned(self, owned: base.OwnedWorkload) -> None:
        raise self._refuse()

    def events(self) -> base.EventStream:
        raise self._refuse()


def runner_for(kind: RunnerType | str, settings: Settings) -> base.Runner:
    """A new runner for ``spec.runner``; keep it (one per kind per process)."""
    if kind == "docker":
        from mlplatform.runners.docker_runner import DockerRunner

        return DockerRunner(settings)
    return UnavailableRunner(kind)


class Runners:
    """``spec.runner`` → its runner, each kind made on first use and kept (thread-safe)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._made: dict[str, base.Runner] = {}
        self._lock = threading.Lock()

    def __call__(self, kind: str) -> base.Runner:
        with self._lock:
            if kind not in self._made:
                self._made[kind] = runner_for(kind, self._settings)
            return self._made[kind]
