"""The runner-neutral contract as the Kubernetes runner codes against it.

TEMPORARY: the shared contract (``mlplatform.runners.base``) is being reshaped to this form
on another branch. Until it lands, the parts the Kubernetes runner needs that ``base`` does
not have yet are defined here with the contract's names and fields; everything ``base``
already has is re-exported from it. When the new ``base`` lands, this module becomes
``from mlplatform.runners.base import *`` (or its importers import ``base`` directly).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mlplatform.models.status import Reason
from mlplatform.runners.base import (
    LABEL_CONTROLLER,
    LABEL_MANAGED_BY,
    LABEL_MODEL_ID,
    LABEL_OWNER_NAME,
    LABEL_OWNER_NAMESPACE,
    LABEL_OWNER_UID,
    LABEL_SPEC_HASH,
    MANAGED_BY,
    Action,
    EventStream,
    Owner,
    ProbeResult,
    RunnerEvent,
    State,
    Workload,
)

__all__ = [
    "LABEL_CONTROLLER",
    "LABEL_MANAGED_BY",
    "LABEL_MODEL_ID",
    "LABEL_OWNER_NAME",
    "LABEL_OWNER_NAMESPACE",
    "LABEL_OWNER_UID",
    "LABEL_SPEC_HASH",
    "MANAGED_BY",
    "Action",
    "EventStream",
    "OwnedWorkload",
    "Owner",
    "ProbeResult",
    "Problem",
    "RunnerEvent",
    "RunnerStatus",
    "State",
    "Termination",
    "Workload",
]


@dataclass(frozen=True)
class Termination:
    """How the last run ended."""

    exit_code: int | None
    oom_killed: bool = False
    reason: str = ""
    message: str = ""
    finished_at: str | None = None


@dataclass(frozen=True)
class Problem:
    """Why the workload is not serving, as the runner knows it."""

    reason: Reason
    message: str


@dataclass(frozen=True)
class DebugPorts:
    """Only runners that publish debug ports fill it."""

    bound: bool
    holder: str | None
    message: str = ""


@dataclass(frozen=True)
class RunnerStatus:
    """The runner's report on one workload (the contract's shape)."""

    state: State
    action: Action = Action.NONE
    workload_id: str | None = None
    workload_name: str | None = None
    revision: str | None = None
    endpoints: list[str] = field(default_factory=list)
    debug_endpoints: list[str] = field(default_factory=list)
    started_at: str | None = None
    termination: Termination | None = None
    restart_count: int | None = None
    ready: bool | None = None
    problem: Problem | None = None
    debug: DebugPorts | None = None
    image_pulled: bool = False
    message: str = ""
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class OwnedWorkload:
    """A workload found in the cluster by its labels."""

    owner: Owner
    model_id: str
    workload_id: str
    workload_name: str
    revision: str
    state: State
    source: str | None = None
