"""The MLModel status the operator writes: phase, conditions with fixed reasons, runner details.

Conditions follow the Kubernetes API conventions (``type/status/reason/message/
lastTransitionTime/observedGeneration``); ``set_condition`` is the one helper that changes
them, so ``lastTransitionTime`` moves only when ``status`` does.
"""

from __future__ import annotations

import enum
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from mlplatform.models import timestamps


class Phase(enum.StrEnum):
    """Where a model is in its life; contract (``status.phase``)."""

    PENDING = "Pending"
    STARTING = "Starting"
    RUNNING = "Running"
    STOPPED = "Stopped"
    FAILED = "Failed"


class ConditionType(enum.StrEnum):
    """The conditions an MLModel carries. Ready is the contract; the others say why not."""

    READY = "Ready"
    IMAGE_READY = "ImageReady"
    CONTAINER_RUNNING = "ContainerRunning"
    DEBUG_PORTS = "DebugPortsBound"
    # True while a new revision is brought up behind the serving one (its reason says how
    # that goes); False once the serving workload runs the current spec.
    UPDATING = "Updating"


class Reason(enum.StrEnum):
    """The fixed list of condition reasons (CamelCase, as Kubernetes conventions ask)."""

    # Ready / ContainerRunning
    RUNNING = "Running"
    PROBE_PASSED = "ProbePassed"
    PROBE_FAILED = "ProbeFailed"
    PROBE_PENDING = "ProbePending"
    CONTAINER_CREATING = "ContainerCreating"
    CONTAINER_STARTING = "ContainerStarting"
    CONTAINER_EXITED = "ContainerExited"
    OOM_KILLED = "OOMKilled"
    CRASH_LOOP = "CrashLoopBackOff"
    CONTAINER_MISSING = "ContainerMissing"
    SUSPENDED = "Suspended"
    CONFLICT = "NameConflict"
    PORT_IN_USE = "PortInUse"
    RUNNER_UNAVAILABLE = "RunnerUnavailable"
    # The operator's role lacks a permission the runner needs (the API server's 403).
    FORBIDDEN = "Forbidden"
    RUNNER_DISABLED = "RunnerDisabled"
    RUNNER_NOT_IMPLEMENTED = "RunnerNotImplemented"
    INVALID_SPEC = "InvalidSpec"
    START_FAILED = "StartFailed"
    # Local mode: the model's manifest exists but does not validate; it runs its last valid spec.
    MANIFEST_REFUSED = "ManifestRefused"
    # A workload the cluster cannot place (no node fits its requests) ...
    UNSCHEDULABLE = "Unschedulable"
    # ... or whose rollout did not complete within its deadline.
    PROGRESS_DEADLINE_EXCEEDED = "ProgressDeadlineExceeded"
    # Updating
    NEW_REVISION_STARTING = "NewRevisionStarting"
    UP_TO_DATE = "UpToDate"
    # A volume the spec asks for that the runner has no storage configured for.
    STORAGE_NOT_CONFIGURED = "StorageNotConfigured"
    # Resources above an administrator's cap (RUNNERS_DOCKER_MAX_*).
    OVER_LIMIT = "OverLimit"
    # ImageReady
    IMAGE_PRESENT = "ImagePresent"
    IMAGE_PULLED = "ImagePulled"
    IMAGE_NOT_FOUND = "ImageNotFound"
    IMAGE_PULL_FAILED = "ImagePullFailed"
    # DebugPortsBound
    DEBUG_PORTS_BOUND = "DebugPortsBound"
    DEBUG_PORTS_HELD = "DebugPortsHeldByOther"
    DEBUG_NOT_CONFIGURED = "DebugPortNotConfigured"


ConditionStatus = Literal["True", "False", "Unknown"]


class _Wire(BaseModel):
    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True, extra="ignore")


class Condition(_Wire):
    type: ConditionType
    status: ConditionStatus
    reason: Reason
    message: str = ""
    last_transition_time: str = Field(alias="lastTransitionTime")
    observed_generation: int | None = Field(default=None, alias="observedGeneration")


class RunnerDetails(_Wire):
    """What the runner reports about the workload: its type, the workload and how it last ran.

    The named fields mean the same for every runner. Anything else is the runner's own
    (camelCase keys next to ``type``): the Docker runner adds ``containerId``,
    ``containerName``, ``imageId`` and ``hostPorts``.
    """

    model_config = ConfigDict(extra="allow")

    type: str
    workload_id: str | None = Field(default=None, alias="workloadId")
    revision: str | None = None
    started_at: str | None = Field(default=None, alias="startedAt")
    exit_code: int | None = Field(default=None, alias="exitCode")
    oom_killed: bool | None = Field(default=None, alias="oomKilled")
    finished_at: str | None = Field(default=None, alias="finishedAt")

    @property
    def extra(self) -> dict[str, Any]:
        """The runner-specific keys, as written."""
        return dict(self.__pydantic_extra__ or {})


class Failure(_Wire):
    """The last failure of a model: why, when, and the workload's exit code / OOM kill."""

    reason: Reason
    message: str = ""
    time: str
    exit_code: int | None = Field(default=None, alias="exitCode")
    oom_killed: bool | None = Field(default=None, alias="oomKilled")
    # The workload that failed (so one death is counted once). Statuses written before the
    # runner contract named it ``containerId``; still read.
    workload_id: str | None = Field(
        default=None,
        alias="workloadId",
        validation_alias=AliasChoices("workloadId", "containerId", "workload_id"),
    )


class MLModelStatus(_Wire):
    """``status`` of an MLModel; phase, endpoints, observedGeneration and Ready are contract."""

    phase: Phase = Phase.PENDING
    observed_generation: int | None = Field(default=None, alias="observedGeneration")
    endpoints: list[str] = Field(default_factory=list)
    debug_endpoints: list[str] = Field(default_factory=list, alias="debugEndpoints")
    conditions: list[Condition] = Field(default_factory=list)
    runner: RunnerDetails | None = None
    restart_count: int = Field(default=0, alias="restartCount")
    # Failures since the model last ran steadily; drives the back-off and survives restarts.
    consecutive_failures: int = Field(default=0, alias="consecutiveFailures")
    last_failure: Failure | None = Field(default=None, alias="lastFailure")
    message: str = ""

    def condition(self, kind: ConditionType) -> Condition | None:
        return next((c for c in self.conditions if c.type == kind), None)

    @property
    def ready(self) -> bool:
        ready = self.condition(ConditionType.READY)
        return ready is not None and ready.status == "True"

    @property
    def updating(self) -> bool:
        """Whether a new revision is being brought up behind the serving one."""
        updating = self.condition(ConditionType.UPDATING)
        return updating is not None and updating.status == "True"

    def to_wire(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


def set_condition(
    conditions: list[Condition],
    kind: ConditionType,
    status: ConditionStatus,
    reason: Reason,
    message: str = "",
    *,
    generation: int | None = None,
    at: str | None = None,
) -> list[Condition]:
    """Return ``conditions`` with ``kind`` set; the transition time moves only if status changes."""
    previous = next((c for c in conditions if c.type == kind), None)
    transition = (
        previous.last_transition_time
        if previous is not None and previous.status == status
        else (at or timestamps.now())
    )
    updated = Condition(
        type=kind,
        status=status,
        reason=reason,
        message=message,
        last_transition_time=transition,
        observed_generation=generation,
    )
    return (
        [c for c in conditions if c.type != kind] + [updated]
        if previous is None
        else [updated if c.type == kind else c for c in conditions]
    )
