"""How local mode shows its models: a table like ``kubectl get mlm``, or JSON for tools.

The table has the CRD's printer columns (ID, Runner, Phase, Ready, Endpoint, Age) plus the
namespace and the status message. ``fingerprint`` is the table without the AGE column, so a
caller re-prints only when something a user would notice changed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from mlplatform.local.desired import DesiredModel
from mlplatform.models.status import ConditionType, MLModelStatus

COLUMNS = ("NAMESPACE", "NAME", "ID", "RUNNER", "PHASE", "READY", "ENDPOINT", "AGE", "MESSAGE")
MESSAGE_WIDTH = 80


@dataclass(frozen=True)
class Row:
    """One model as shown: what is desired, what was last observed, since when."""

    model: DesiredModel
    status: MLModelStatus | None
    since: float  # when this process first saw the model (its "creationTimestamp")


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


def _cells(row: Row, now: float) -> list[str]:
    status = row.status
    owner = row.model.workload.owner
    message = (status.message if status else "") or ""
    if len(message) > MESSAGE_WIDTH:
        message = message[: MESSAGE_WIDTH - 1] + "…"
    return [
        owner.namespace,
        owner.name,
        row.model.workload.spec.id,
        row.model.workload.spec.runner,
        status.phase.value if status else "Pending",
        _ready(status),
        (status.endpoints[0] if status and status.endpoints else ""),
        age(now - row.since),
        message,
    ]


def render(rows: list[Row], now: float | None = None) -> str:
    """The table, columns padded to their widest cell; one line per model."""
    at = time.time() if now is None else now
    lines = [list(COLUMNS)] + [_cells(row, at) for row in rows]
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
        "items": [
            {
                "name": row.model.workload.owner.name,
                "namespace": row.model.workload.owner.namespace,
                "source": row.model.source,
                "spec": row.model.workload.spec.to_wire(),
                "generation": row.model.generation,
                "status": row.status.to_wire() if row.status else None,
            }
            for row in rows
        ],
        "problems": list(problems),
        "notes": list(notes),
    }
