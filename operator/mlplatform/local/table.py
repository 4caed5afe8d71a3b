"""How local mode shows its models: a table like ``kubectl get mlpm``, or JSON for tools.

The table has the CRD's printer columns (ID, Runner, Phase, Ready, Reason, Endpoint, Age) plus
the namespace and the status message, cut to fit; ``wide`` shows the message whole (as
``kubectl get -o wide`` does). AGE is the workload's age (the container's start) when the
runner reports it, else the time since the model was first seen. ``fingerprint`` is the table
without the AGE column, so a caller re-prints only when something a user would notice changed.

The JSON document is an ``MLModelList`` whose items look like the API objects
(``apiVersion``, ``kind``, ``metadata``, ``spec``, ``status``), so ``jq`` recipes written
for ``kubectl get mlmodels -o json`` work on it too.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from mlplatform.local.desired import DesiredModel
from mlplatform.models import timestamps
from mlplatform.models.status import ConditionType, MLModelStatus
from mlplatform.runners.base import OwnedWorkload, Owner

COLUMNS = (
    "NAMESPACE",
    "NAME",
    "ID",
    "RUNNER",
    "PHASE",
    "READY",
    "REASON",
    "ENDPOINT",
    "AGE",
    "MESSAGE",
)
SOURCE_ANNOTATION = "mlplatform.dev/source"
MESSAGE_WIDTH = 80


@dataclass(frozen=True)
class Row:
    """One model as shown: what is desired, what was last observed, since when.

    A model held by a refused manifest after a restart has no known spec (``model`` is
    ``None``): its workload (``held``, found by its labels) names it instead.
    """

    model: DesiredModel | None
    status: MLModelStatus | None
    since: float  # when this process first saw the model (its "creationTimestamp")
    held: OwnedWorkload | None = None

    def __post_init__(self) -> None:
        if self.model is None and self.held is None:
            raise ValueError("a row needs a model or a held workload")

    @property
    def owner(self) -> Owner:
        return self.model.workload.owner if self.model else self._held.owner

    @property
    def key(self) -> str:
        return self.owner.key

    @property
    def model_id(self) -> str:
        return self.model.workload.spec.id if self.model else self._held.model_id

    @property
    def runner(self) -> str:
        if self.model is not None:
            return self.model.workload.spec.runner
        return self.status.runner.type if self.status and self.status.runner else ""

    @property
    def source(self) -> str:
        return self.model.source if self.model else (self._held.source or "")

    @property
    def _held(self) -> OwnedWorkload:
        assert self.held is not None  # __post_init__: one of the two is set
        return self.held


def age(seconds: float) -> str:
    """kubectl's short ages: 42s, 5m, 3h, 2d."""
    seconds = max(0, int(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _ready(status: MLModelStatus | None) -> str:
    if status is None:
        return ""
    condition = status.condition(ConditionType.READY)
    return condition.status if condition is not None else "Unknown"


def _reason(status: MLModelStatus | None) -> str:
    if status is None:
        return ""
    condition = status.condition(ConditionType.READY)
    return str(condition.reason) if condition is not None else ""


def created_at(row: Row) -> float:
    """When the workload started (the runner's ``startedAt``), else when first seen."""
    runner = row.status.runner if row.status is not None else None
    started = getattr(runner, "started_at", None)
    if started is None and isinstance(runner, dict):
        started = runner.get("startedAt")
    if isinstance(started, str):
        try:
            return timestamps.parse(started)
        except ValueError:
            pass
    return row.since


def _cells(row: Row, now: float, *, wide: bool = False) -> list[str]:
    status = row.status
    owner = row.owner
    message = " ".join(((status.message if status else "") or "").split())
    if not wide and len(message) > MESSAGE_WIDTH:
        message = message[: MESSAGE_WIDTH - 1] + "…"
    return [
        owner.namespace,
        owner.name,
        row.model_id,
        row.runner,
        status.phase.value if status else "Pending",
        _ready(status),
        _reason(status),
        (status.endpoints[0] if status and status.endpoints else ""),
        age(now - created_at(row)),
        message,
    ]


def render(rows: list[Row], now: float | None = None, *, wide: bool = False) -> str:
    """The table, columns padded to their widest cell; one line per model."""
    at = time.time() if now is None else now
    lines = [list(COLUMNS)] + [_cells(row, at, wide=wide) for row in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(COLUMNS))]
    return "\n".join(
        "   ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def fingerprint(rows: list[Row]) -> tuple[tuple[str, ...], ...]:
    """What the table shows, minus the ages: equal fingerprints, nothing worth re-printing."""
    age_column = COLUMNS.index("AGE")
    return tuple(
        tuple(cell for i, cell in enumerate(_cells(row, 0.0)) if i != age_column) for row in rows
    )


def document(rows: list[Row], problems: list[str], notes: list[str]) -> dict[str, Any]:
    """The status of every model as one JSON document (``--output json``, ``--status-file``)."""
    return {
        "apiVersion": "mlplatform.dev/v1alpha1",
        "kind": "MLModelList",
        "items": [_item(row) for row in rows],
        "problems": list(problems),
        "notes": list(notes),
    }


def _item(row: Row) -> dict[str, Any]:
    """One model, shaped like the API object. A held model without a known spec has no
    generation, and of its spec only the id (from its workload's labels)."""
    metadata: dict[str, Any] = {
        "name": row.owner.name,
        "namespace": row.owner.namespace,
        "uid": row.owner.uid,
        "creationTimestamp": timestamps.rfc3339(row.since),
        "annotations": {SOURCE_ANNOTATION: row.source},
    }
    if row.model is not None:
        metadata["generation"] = row.model.generation
    return {
        "apiVersion": "mlplatform.dev/v1alpha1",
        "kind": "MLModel",
        "metadata": metadata,
        "spec": row.model.workload.spec.to_wire() if row.model else {"id": row.model_id},
        "status": row.status.to_wire() if row.status else {},
    }
