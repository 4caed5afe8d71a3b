"""Whether a live object still says what the plan says, and the JSON patch that restores it.

The comparison is a subset check: every field the plan sets must hold the planned value in
the live object; fields the plan does not set (server defaults, other controllers' labels)
are left alone. Kubernetes drops zero values (``false``, ``0``, ``""``, empty lists) when it
stores an object, so a zero value the plan sets matches an absent field; quantities match by
value (``0.5`` and ``500m`` are the same CPU). A hand edit of an owned field, a removed
label, a changed image: each is a difference, and ``restore_ops`` puts the planned value
back at each owned path (``add`` replaces a member in JSON patch).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from mlplatform.models import quantities

# The top-level fields of each kind's spec that the runner owns (replaced whole when drifted).
OWNED_SPEC_FIELDS: Final[dict[str, tuple[str, ...]]] = {
    "Deployment": (
        "replicas",
        "strategy",
        "minReadySeconds",
        "revisionHistoryLimit",
        "progressDeadlineSeconds",
        "template",
    ),
    "Service": ("type", "selector", "ports"),
    # A claim's spec is immutable once bound (but for growing it): only its metadata is owned.
    "PersistentVolumeClaim": (),
}
_QUANTITY_PARENTS: Final = frozenset({"requests", "limits"})


def differences(desired: Any, live: Any, path: str = "") -> list[str]:
    """The paths where ``live`` does not hold what ``desired`` sets (empty: in sync)."""
    if _is_zero(desired) and _is_zero(live):
        return []
    if isinstance(desired, Mapping):
        if not isinstance(live, Mapping):
            return [path or "/"]
        found: list[str] = []
        for key, value in desired.items():
            sub = f"{path}/{_escape(str(key))}"
            if path.rsplit("/", 1)[-1] in _QUANTITY_PARENTS and isinstance(value, str):
                if not _same_quantity(str(key), value, live.get(key)):
                    found.append(sub)
                continue
            found.extend(differences(value, live.get(key), sub))
        return found
    if isinstance(desired, list):
        if not isinstance(live, list) or len(live) != len(desired):
            return [path]
        found = []
        for index, (want, have) in enumerate(zip(desired, live, strict=True)):
            found.extend(differences(want, have, f"{path}/{index}"))
        return found
    return [] if desired == live else [path]


def object_differences(kind: str, desired: Mapping[str, Any], live: Mapping[str, Any]) -> list[str]:
    """Differences in the owned parts of an object: labels, annotations, owners, owned spec."""
    meta_want = desired.get("metadata") or {}
    meta_live = live.get("metadata") or {}
    found = [
        *differences(meta_want.get("labels") or {}, meta_live.get("labels"), "/metadata/labels"),
        *differences(
            meta_want.get("annotations") or {},
            meta_live.get("annotations"),
            "/metadata/annotations",
        ),
    ]
    for reference in meta_want.get("ownerReferences") or []:
        if not any(
            differences(reference, ref) == [] for ref in meta_live.get("ownerReferences") or []
        ):
            found.append("/metadata/ownerReferences")
    spec_want = desired.get("spec") or {}
    spec_live = live.get("spec") or {}
    for field in OWNED_SPEC_FIELDS[kind]:
        if field in spec_want:
            found.extend(differences(spec_want[field], spec_live.get(field), f"/spec/{field}"))
    return found


def restore_ops(kind: str, desired: Mapping[str, Any], live: Mapping[str, Any]) -> list[Any]:
    """A JSON patch that puts every owned part of ``desired`` back into ``live``."""
    ops: list[dict[str, Any]] = []
    meta_want = desired.get("metadata") or {}
    meta_live = live.get("metadata") or {}
    for field in ("labels", "annotations"):
        wanted: Mapping[str, str] = meta_want.get(field) or {}
        present = meta_live.get(field)
        if not isinstance(present, Mapping):
            ops.append({"op": "add", "path": f"/metadata/{field}", "value": dict(wanted)})
            continue
        ops.extend(
            {"op": "add", "path": f"/metadata/{field}/{_escape(key)}", "value": value}
            for key, value in wanted.items()
            if present.get(key) != value
        )
    references = list(meta_want.get("ownerReferences") or [])
    if references:
        ours = {ref["uid"] for ref in references}
        others = [
            ref
            for ref in meta_live.get("ownerReferences") or []
            if ref.get("uid") not in ours and not ref.get("controller")
        ]
        ops.append({"op": "add", "path": "/metadata/ownerReferences", "value": others + references})
    spec_want = desired.get("spec") or {}
    if OWNED_SPEC_FIELDS[kind] and not isinstance(live.get("spec"), Mapping):
        ops.append({"op": "add", "path": "/spec", "value": {}})
    ops.extend(
        {"op": "add", "path": f"/spec/{field}", "value": spec_want[field]}
        for field in OWNED_SPEC_FIELDS[kind]
        if field in spec_want
    )
    return ops


def _is_zero(value: Any) -> bool:
    return value is None or value is False or value == 0 or value in ("", [], {})


def _same_quantity(resource: str, want: str, have: Any) -> bool:
    if not isinstance(have, (str, int)) or isinstance(have, bool):
        return False
    if resource == "cpu":
        return quantities.parse_cpu(want) == quantities.parse_cpu(have)
    return quantities.parse_memory(want) == quantities.parse_memory(have)


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")
