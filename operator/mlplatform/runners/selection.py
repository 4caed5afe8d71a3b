"""Which runner serves a model: ``spec.runner`` → a ``Runner``.

``runner_for`` builds a new runner; ``Runners`` builds each kind once and keeps it for the
life of the process (a runner holds the engine connection). ``docker`` is the Docker runner
(imported lazily, so code that never runs a model does not need docker-py). ``kubernetes``
is the Kubernetes runner when the process has a Kubernetes API client (the operator) and
the runner is enabled (``RUNNERS_KUBERNETES_ENABLED``, by default: running in a cluster);
without a client (local mode) its models are reported ``RunnerUnavailable`` — it needs the
operator in a cluster — and switched off they are ``RunnerDisabled``. Any other kind gets a
runner that refuses every call with ``RunnerNotImplemented``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

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
            f'runner "{self.type}" is not available in this build (runners: "docker", "kubernetes")'
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

    def stop_writes(self) -> None:
        """Nothing to stop: this runner writes nothing."""

    def logs(
        self, namespace: str, name: str, *, previous: bool, tail: int | None, follow: bool
    ) -> Iterator[bytes]:
        raise self._refuse()


class RefusingRunner(UnavailableRunner):
    """A runner that cannot act here: every call raises the error it was made with."""

    def __init__(self, type: str, error: errors.RunnerError) -> None:
        super().__init__(type)
        self._error = error

    def _refuse(self) -> errors.RunnerError:  # type: ignore[override]
        return type(self._error)(self._error.message)


NEEDS_A_CLUSTER = (
    'runner "kubernetes" needs the operator in a cluster (mlplatform operator); '
    "this process has no Kubernetes API (local mode runs runner docker only)"
)
KUBERNETES_DISABLED = (
    'runner "kubernetes" is disabled: RUNNERS_KUBERNETES_ENABLED is false (by default it is '
    "on only when the operator runs in a cluster)"
)


def runner_for(
    kind: RunnerType | str,
    settings: Settings,
    *,
    api_client: Any = None,
    namespaces: tuple[str, ...] = (),
) -> base.Runner:
    """A new runner for ``spec.runner``; keep it (one per kind per process).

    ``api_client``: the Kubernetes ``ApiClient`` the operator uses; None in local mode.
    ``namespaces``: where the Kubernetes runner lists and watches (empty: everywhere).
    """
    if kind == "docker":
        from mlplatform.runners.docker_runner import DockerRunner

        return DockerRunner(settings)
    if kind == "kubernetes":
        if api_client is None:
            return RefusingRunner(kind, errors.NeedsCluster(NEEDS_A_CLUSTER))
        if not settings.kubernetes_runner_enabled():
            return RefusingRunner(kind, errors.RunnerDisabled(KUBERNETES_DISABLED))
        from mlplatform.runners.kubernetes.runner import KubernetesRunner

        return KubernetesRunner(settings, api_client, namespaces=namespaces)
    return UnavailableRunner(kind)


class Runners:
    """``spec.runner`` → its runner, each kind made on first use and kept (thread-safe)."""

    def __init__(
        self, settings: Settings, *, api_client: Any = None, namespaces: tuple[str, ...] = ()
    ) -> None:
        self._settings = settings
        self._api_client = api_client
        self._namespaces = namespaces
        self._made: dict[str, base.Runner] = {}
        self._lock = threading.Lock()

    def enabled(self) -> list[base.Runner]:
        """The runners this process drives: Docker when enabled, Kubernetes when enabled and
        there is an API client (the operator). Their events are watched, their workloads
        listed by the resync; a model of another kind still gets its runner's refusal."""
        kinds = []
        if self._settings.runners_docker_enabled:
            kinds.append("docker")
        if self._api_client is not None and self._settings.kubernetes_runner_enabled():
            kinds.append("kubernetes")
        return [self(kind) for kind in kinds]

    def __call__(self, kind: str) -> base.Runner:
        with self._lock:
            if kind not in self._made:
                self._made[kind] = runner_for(
                    kind, self._settings, api_client=self._api_client, namespaces=self._namespaces
                )
            return self._made[kind]
