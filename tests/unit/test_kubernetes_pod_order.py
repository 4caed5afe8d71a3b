"""The Kubernetes runner reads a revision's pods oldest first, by time, not by text."""

from __future__ import annotations

from typing import Any

from mlplatform.runners.kubernetes import plan
from mlplatform.runners.kubernetes.status import current_pods

HASH = {plan.ANNOTATION_SPEC_HASH: "abc"}
DEPLOYMENT = {"spec": {"template": {"metadata": {"annotations": HASH}}}}


def pod(name: str, created: str | None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "annotations": HASH}
    if created is not None:
        metadata["creationTimestamp"] = created
    return {"metadata": metadata}


def test_pods_of_the_revision_come_oldest_first_whatever_the_way_their_time_is_written() -> None:
    pods = [
        pod("no-time", None),
        pod("third", "2026-01-02T03:04:06Z"),
        pod("second", "2026-01-02T05:04:05.5+02:00"),  # 03:04:05.5 UTC
        pod("first", "2026-01-02T03:04:05Z"),
        pod("unreadable", "soon"),
    ]
    order = [p["metadata"]["name"] for p in current_pods(DEPLOYMENT, pods)]
    assert order == ["first", "second", "third", "no-time", "unreadable"]


def test_pods_of_another_revision_or_being_deleted_are_not_the_current_ones() -> None:
    other = pod("other", "2026-01-02T03:04:05Z")
    other["metadata"]["annotations"] = {plan.ANNOTATION_SPEC_HASH: "old"}
    leaving = pod("leaving", "2026-01-02T03:04:05Z")
    leaving["metadata"]["deletionTimestamp"] = "2026-01-02T03:05:00Z"
    kept = pod("kept", "2026-01-02T03:04:07Z")
    assert current_pods(DEPLOYMENT, [other, leaving, kept]) == [kept]
