"""From the status the reconcile core returns to the merge patch that writes it.

The core returns the *whole* status each time; what is written is the difference from what
the object holds, as a JSON merge patch (RFC 7386): changed fields, and ``null`` for fields
that are gone (a merge patch would otherwise keep them). Nothing is written when nothing
changed, so a resync of a steady model costs no API write.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from mlplatform.models.status import MLModelStatus

log = logging.getLogger(__name__)

# Keys under ``status`` that belong to someone else (kopf's own bookkeeping, if any).
FOREIGN_KEYS = frozenset({"kopf"})


def parse(raw: object) -> MLModelStatus | None:
    """The status an object carries, or None when it has none we can read."""
    if not isinstance(raw, Mapping) or not raw:
        return None
    try:
        return MLModelStatus.model_validate({k: v for k, v in raw.items() if k not in FOREIGN_KEYS})
    except ValidationError as error:
        log.warning("Ignored an unreadable status: %s", error.errors()[:3])
        return None


def merge_patch(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """The merge patch that turns ``old`` into ``new`` (empty when they are equal)."""
    patch: dict[str, Any] = {}
    for key, value in new.items():
        before = old.get(key)
        if before == value:
            continue
        if isinstance(before, Mapping) and isinstance(value, Mapping):
            patch[key] = merge_patch(before, value)
        else:
            patch[key] = value
    for key in old:
        if key not in new and key not in FOREIGN_KEYS:
            patch[key] = None
    return patch


def status_patch(current: object, status: MLModelStatus) -> dict[str, Any]:
    """The patch of ``status`` that writes ``status`` over ``current`` (the object's status)."""
    old = dict(current) if isinstance(current, Mapping) else {}
    return merge_patch(old, status.to_wire())
