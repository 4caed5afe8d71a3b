"""The runner adapter: what the reconcile core asks of a backend, and what it gets back.

A runner turns one validated MLModel (a ``Workload``) into one running workload and reports
on it. The core and both front ends talk only to ``Runner``; the Docker backend is one
implementation, a pod backend can be another (S9). Runners raise ``mlplatform.errors``
types only — never a library's own exception.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

from mlplatform.models.spec import MLModelSpec

# Label keys on every managed workload (contract, DESIGN.md §2).
LABEL_MANAGED_BY = "mlplatform.dev/managed-by"
MANAGED_BY = "mlplatform"
LABEL_MODEL_ID = "mlplatform.dev/model-id"
LABEL_OWNER_NAMESPACE = "mlplatform.dev/owner-namespace"
LABEL_OWNER_NAME = "mlplatform.dev/owner-name"
LABEL_OWNER_UID = "mlplatform.dev/owner-uid"
LABEL_SPEC_HASH = "mlplatform.dev/spec-hash"
LABEL_CONTROLLER = "mlplatform.dev/controller"
# Where the desired state came from (local mode: the manifest's resolved path). A local run
# removes only workloads whose source lies under the paths it was given.
LABEL_SOURCE = "mlplatform.dev/source"


@dataclass(frozen=True)
class Owner:
    """The object a workload belongs to. Local mode uses its own namespace (``local``)."""

    namespace: str
    name: str
    uid: str

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class Workload:
    """What a runner is asked to run: a validated spec and who owns it."""

    owner: Owner
    spec: MLModelSpec
    source: str | None = None  # local mode: the manifest's resolved path; recorded by the runner


class State(enum.StrEnum):
    """What the runner sees of a workload."""

    RUNNING = "running"
    STARTING = "starting"  # created, not yet running
    EXITED = "exited"  # stopped (exit code / OOM in the status)
    MISSING = "missing"  # no workload exists
    REMOVED = "removed"  # after delete, or suspended


class Action(enum.StrEnum):
    """What ``apply``/``delete`` changed, for events and metrics."""

    NONE = "none"
    CREATED = "created"
    REPLACED = "replaced"
    REMOVED = "removed"
    PULLED = "pulled"


@dataclass(frozen=True)
class RunnerStatus:
    """The runner's report on one workload; the core turns it into the MLModel status."""

    state: State
    action: Action = Action.NONE
    container_id: str | None = None
    container_name: str | None = None
    image_id: str | None = None
    endpoints: list[str] = field(default_factory=list)
    debug_endpoints: list[str] = field(default_factory=list)
    host_ports: dict[str, int] = field(default_factory=dict)
    exit_code: int | None = None
    oom_killed: bool = False
    started_at: str | None = None
    finished_at: str | None = None
    message: str = ""
    # Debug ports (S8): whether this workload asked for them and who holds them now.
    debug_requested: bool = False
    debug_holder: str | None = None
    image_pulled: bool = False


@dataclass(frozen=True)
class OwnedWorkload:
    """A workload found in the engine by its labels (for adoption and garbage collection)."""

    owner: Owner
    model_id: str
    container_id: str
    container_name: str
    spec_hash: str
    state: State
    source: str | None = None


@dataclass(frozen=True)
class RunnerEvent:
    """Something happened to a managed workload outside a call (died, removed, ...)."""

    owner: Owner
    model_id: str
    action: str  # the engine's verb: die, destroy, start, oom, kill, ...


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    message: str


class EventStream(Protocol):
    """A blocking iterator of runner events; ``close`` ends it from another thread."""

    def __iter__(self) -> Iterator[RunnerEvent]: ...

    def close(self) -> None: ...


class Runner(Protocol):
    """A backend that runs exactly one workload per model."""

    type: str

    def apply(self, workload: Workload) -> RunnerStatus:
        """Converge the engine to the workload (idempotent: unchanged spec → no writes)."""

    def observe(self, workload: Workload) -> RunnerStatus:
        """Report on the workload without changing anything."""

    def delete(self, workload: Workload) -> RunnerStatus:
        """Remove the workload (storage kept). Missing is fine."""

    def probe(self, workload: Workload, status: RunnerStatus) -> ProbeResult:
        """Run the spec's readiness probe once against the running workload."""

    def list_owned(self) -> list[OwnedWorkload]:
        """Every workload this controller manages, read from labels (the source of truth)."""

    def remove_owned(self, owned: OwnedWorkload) -> None:
        """Remove one workload found by ``list_owned`` (garbage collection)."""

    def events(self) -> EventStream:
        """Engine events about managed workloads, for drift repair."""
