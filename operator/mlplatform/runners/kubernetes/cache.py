"""The managed objects as the runner's watches last delivered them: reads without requests.

An informer's store, as controller-runtime's client reads from: ``WorkloadEvents`` fills it
(``replace`` with each kind's listing, ``apply`` with each watch event, ``drop`` when a
watch ends), and the runner reads the Deployment, the Service and the pods of a model from
it instead of asking the API server — converging or checking a model then costs no read
at all. A kind is *synced* from its listing until its watch ends; the runner asks the API
server for a kind that is not.

Only objects with this controller's managed labels are here (the watches select by them):
"not in the cache" means "no object of ours", and the runner's create then answers for
anything else of that name (409: read, and refuse it if it is not ours). What the cache
holds may lag behind the API server by one event; every write the runner bases on it is
safe against that: a create of an object that exists meanwhile gets 409 and reads it, a
patch restores owned fields whatever the version. ``written`` keeps the runner's own
writes (the answer of a create or patch) so that a reconcile right after its own write does
not act on the older copy; it never replaces a version the watch delivered meanwhile.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

_Bucket = tuple[str, str]  # kind, namespace


class ObjectCache:
    """Managed objects by kind, namespace and name; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buckets: dict[_Bucket, dict[str, dict[str, Any]]] = {}  # by name
        self._synced: set[str] = set()

    # --- fed by the watches -----------------------------------------------------------

    def replace(self, kind: str, items: list[dict[str, Any]]) -> None:
        """A fresh listing of ``kind``: it is synced from now on."""
        with self._lock:
            self._forget(kind)
            for item in items:
                bucket, name = _place(kind, item)
                self._buckets.setdefault(bucket, {})[name] = item
            self._synced.add(kind)

    def apply(self, kind: str, event_type: str, obj: dict[str, Any]) -> None:
        """One watch event (ADDED, MODIFIED, DELETED) of ``kind``."""
        bucket, name = _place(kind, obj)
        with self._lock:
            if kind not in self._synced:
                return
            if event_type == "DELETED":
                self._buckets.get(bucket, {}).pop(name, None)
            else:
                self._buckets.setdefault(bucket, {})[name] = obj

    def drop(self, kind: str) -> None:
        """``kind``'s watch ended: it is read from the API server until listed again."""
        with self._lock:
            self._synced.discard(kind)
            self._forget(kind)

    # --- for the runner -----------------------------------------------------------------

    def synced(self, *kinds: str) -> bool:
        with self._lock:
            return all(kind in self._synced for kind in kinds)

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """The object as last delivered (None: no object of ours); only when synced."""
        with self._lock:
            return self._buckets.get((kind, namespace), {}).get(name)

    def select(self, kind: str, namespace: str, labels: Mapping[str, str]) -> list[dict[str, Any]]:
        """The objects of ``kind`` in ``namespace`` that carry every label of ``labels``."""
        with self._lock:
            candidates = list(self._buckets.get((kind, namespace), {}).values())
        return [obj for obj in candidates if _carries(obj, labels)]

    def written(self, kind: str, obj: dict[str, Any], base: dict[str, Any] | None) -> None:
        """The runner wrote ``obj`` (the API's answer) on top of ``base`` (None: a create).

        Kept unless the watch delivered another version meanwhile (then that one is newer
        than ``base`` and at least as new as the write)."""
        bucket, name = _place(kind, obj)
        with self._lock:
            if kind not in self._synced:
                return
            objects = self._buckets.setdefault(bucket, {})
            held = objects.get(name)
            if held is None if base is None else _version(held) == _version(base):
                objects[name] = obj

    def _forget(self, kind: str) -> None:
        for bucket in [b for b in self._buckets if b[0] == kind]:
            del self._buckets[bucket]


def _place(kind: str, obj: Mapping[str, Any]) -> tuple[_Bucket, str]:
    meta = obj.get("metadata") or {}
    return (kind, str(meta.get("namespace") or "")), str(meta.get("name") or "")


def _version(obj: Mapping[str, Any] | None) -> str:
    return str(((obj or {}).get("metadata") or {}).get("resourceVersion") or "")


def _carries(obj: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    have = (obj.get("metadata") or {}).get("labels") or {}
    return all(have.get(key) == value for key, value in labels.items())
