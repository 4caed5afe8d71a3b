"""The runner contract: what the reconcile core asks of a backend, and what it gets back.

A runner turns one validated MLModel (a ``Workload``) into one running workload and reports
on it. The core and both front ends talk only to ``Runner``; nothing here is shaped by one
backend. The Docker runner fills it from one container, a Kubernetes runner from one
Deployment and its pods; what only one backend knows (a container's image id, its host
ports) travels in ``RunnerStatus.details`` and lands in ``status.runner`` next to ``type``.
Runners raise ``mlplatform.errors`` types only, never a library's own exception. See
docs/design.md, "The runner contract".
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from mlplatform.models.spec import MLModelSpec
from mlplatform.models.status import Reason

# Label keys on every managed workload (contract: the labels are the only record of
# ownership, read back after a restart).
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

# A workload counts as running (and may be Ready) once it has stayed up this long, as
# Kubernetes' minReadySeconds: one that dies a moment after start is a crash, not a model.
# The core applies it to the serving workload; a runner that rolls a new revision out behind
# a serving one (Docker) applies it to the new one before it takes over.
MIN_READY_SECONDS = 1.0


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
    """What a runner is asked to run: a validated spec, who owns it, where it came from."""

    owner: Owner
    spec: MLModelSpec
    # Local mode: the manifest's resolved path; the runner records it (``LABEL_SOURCE``).
    source: str | None = None


def owned_labels(controller: str) -> dict[str, str]:
    """The labels every workload of ``controller`` carries: the filter that finds them all."""
    return {LABEL_MANAGED_BY: MANAGED_BY, LABEL_CONTROLLER: controller}


def owner_from_labels(labels: Mapping[str, str]) -> Owner:
    """The owner a workload's labels name (empty strings where a label is missing)."""
    return Owner(
        namespace=labels.get(LABEL_OWNER_NAMESPACE, ""),
        name=labels.get(LABEL_OWNER_NAME, ""),
        uid=labels.get(LABEL_OWNER_UID, ""),
    )


class State(enum.StrEnum):
    """What the runner sees of a workload."""

    RUNNING = "running"
    STARTING = "starting"  # created, not yet running
    EXITED = "exited"  # stopped (how: ``RunnerStatus.termination``)
    MISSING = "missing"  # no workload exists
    REMOVED = "removed"  # after delete, or suspended


class Action(enum.StrEnum):
    """What ``apply``/``delete`` changed, for events and metrics."""

    NONE = "none"
    CREATED = "created"
    REPLACED = "replaced"
    REMOVED = "removed"


@dataclass(frozen=True)
class Termination:
    """How the workload's last run ended."""

    exit_code: int | None
    oom_killed: bool = False
    reason: str = ""  # the runner's word: "Error", "OOMKilled", "Completed"
    message: str = ""
    finished_at: str | None = None  # RFC 3339


@dataclass(frozen=True)
class Problem:
    """Why the workload is not serving, as the runner knows it (unschedulable, pull failing)."""

    reason: Reason
    message: str


@dataclass(frozen=True)
class DebugPorts:
    """The debug-port claim, filled only by runners that publish debug ports."""

    bound: bool  # this workload publishes them
    holder: str | None  # the model id holding them, when another one does
    message: str = ""  # why not bound, when neither


@dataclass(frozen=True)
class Rollout:
    """A new revision being brought up while the current workload keeps serving.

    Reported beside the serving workload's own status (``RunnerStatus``) until the new
    revision takes over (then the status describes it, with ``Action.REPLACED``) or the spec
    goes back to the serving revision. ``problem`` says why the new revision does not come
    up (its image, a crash, a probe that never passes); ``termination`` how its last run
    ended, so the core can count the failure once and back off re-creating it — the serving
    workload is never touched for it.
    """

    revision: str | None  # the revision being rolled out
    workload_name: str | None = None  # docker: the new container's temporary name
    workload_id: str | None = None
    started_at: str | None = None  # RFC 3339, when the new revision's current run started
    problem: Problem | None = None  # this attempt failed (counted, backed off)
    waiting: Problem | None = None  # not ready yet, still trying (a failing probe)
    termination: Termination | None = None
    message: str = ""  # where it stands ("waiting to see it stay up", "probe failed: ...")
    # When to look again (seconds) to move the rollout on; None: the runner's events suffice.
    recheck_after: float | None = None


@dataclass(frozen=True)
class RunnerStatus:
    """The runner's report on one workload; the core turns it into the MLModel status."""

    state: State
    action: Action = Action.NONE
    workload_id: str | None = None  # docker: container id; kubernetes: Deployment uid
    workload_name: str | None = None  # docker: container name; kubernetes: Deployment name
    revision: str | None = None  # the spec hash the observed workload runs
    endpoints: list[str] = field(default_factory=list)  # stable endpoint(s) first
    debug_endpoints: list[str] = field(default_factory=list)
    started_at: str | None = None  # RFC 3339, when the current run started
    termination: Termination | None = None
    # Restarts the runner counted itself (Kubernetes pods); None: the core counts them.
    restart_count: int | None = None
    # The runner's own readiness verdict (Kubernetes: rollout complete and available);
    # None: the core decides (minimum ready time, then the readiness probe).
    ready: bool | None = None
    problem: Problem | None = None
    debug: DebugPorts | None = None
    image_pulled: bool = False
    message: str = ""
    # Runner-specific facts for ``status.runner`` next to ``type`` (camelCase keys, JSON
    # values); Docker: containerId, containerName, imageId, hostPorts.
    details: Mapping[str, Any] = field(default_factory=dict)
    # An update in progress behind this (serving) workload; None when there is none.
    rollout: Rollout | None = None


@dataclass(frozen=True)
class OwnedWorkload:
    """A workload found in the engine or cluster by its labels (adoption, garbage collection)."""

    owner: Owner
    model_id: str
    workload_id: str
    workload_name: str
    revision: str
    state: State
    source: str | None = None
    # The host folders of its volumes, as (path in the workload, host folder); empty when
    # the runner mounts no host folder (Kubernetes: claims).
    mounts: tuple[tuple[str, str], ...] = ()


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

    def stop_writes(self) -> None:
        """From now on, raise ``Stopping`` instead of making any change (the process is
        stopping); reads still work. Calls in flight finish. For the process's life."""

    def logs(
        self, namespace: str, name: str, *, previous: bool, tail: int | None, follow: bool
    ) -> Iterator[bytes]:
        """The output of the workload of the model ``namespace/name`` (this controller's),
        as it comes; ``previous``: of its last terminated run instead. ``LookupError``
        (message for the user) when there is none."""
