"""The local status table and JSON: AGE from the workload, a wide mode, API-shaped items."""

from __future__ import annotations

from datetime import UTC, datetime

from mlplatform.local import table
from mlplatform.local.desired import desired_model
from mlplatform.local.table import Row
from mlplatform.models.resource import parse_object
from mlplatform.models.status import MLModelStatus

LONG = "image pull failed: " + "x" * 150


def _row(status: dict[str, object] | None, since: float) -> Row:
    model = parse_object(
        {
            "apiVersion": "mlplatform.dev/v1alpha1",
            "kind": "MLModel",
            "metadata": {"name": "a", "namespace": "ns"},
            "spec": {"id": "a:1", "container": {"image": "a", "ports": [80]}},
        }
    )
    parsed = MLModelStatus.model_validate(status) if status is not None else None
    return Row(desired_model(model, "/m/a.yaml"), parsed, since)


def _status(started: str | None = None, message: str = "") -> dict[str, object]:
    status: dict[str, object] = {
        "phase": "Running",
        "message": message,
        "conditions": [
            {
                "type": "Ready",
                "status": "False",
                "reason": "ImagePullFailed",
                "message": message,
                "lastTransitionTime": "2026-01-01T00:00:00Z",
            }
        ],
    }
    if started is not None:
        status["runner"] = {"type": "docker", "startedAt": started}
    return status


def _cells(text: str) -> dict[str, str]:
    header, line = text.splitlines()
    starts = [header.index(column) for column in table.COLUMNS]
    ends = [*starts[1:], None]
    return {
        column: line[start:end].strip()
        for column, start, end in zip(table.COLUMNS, starts, ends, strict=True)
    }


def test_age_is_the_containers_age_not_the_time_this_process_saw_it() -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC).timestamp()
    # Started 16 s ago, seen by this process only now.
    row = _row(_status(started="2026-01-01T11:59:44Z"), since=now)
    assert _cells(table.render([row], now=now))["AGE"] == "16s"
    # No runner start known: the time since first seen.
    row = _row(_status(), since=now - 180)
    assert _cells(table.render([row], now=now))["AGE"] == "3m"


def test_the_reason_column_and_the_wide_message() -> None:
    row = _row(_status(message=LONG), since=0)
    cells = _cells(table.render([row], now=10))
    assert cells["REASON"] == "ImagePullFailed"
    assert cells["MESSAGE"].endswith("…") and len(cells["MESSAGE"]) == table.MESSAGE_WIDTH
    assert _cells(table.render([row], now=10, wide=True))["MESSAGE"] == LONG


def test_json_items_look_like_the_api_objects() -> None:
    doc = table.document([_row(_status(), since=0)], [], [])
    [item] = doc["items"]
    assert set(item) == {"apiVersion", "kind", "metadata", "spec", "status"}
    assert (item["apiVersion"], item["kind"]) == ("mlplatform.dev/v1alpha1", "MLModel")
    metadata = item["metadata"]
    assert (metadata["name"], metadata["namespace"]) == ("a", "ns")
    assert isinstance(metadata["generation"], int)
    assert metadata["annotations"] == {"mlplatform.dev/source": "/m/a.yaml"}
    assert item["spec"]["id"] == "a:1"
    assert item["status"]["phase"] == "Running"
