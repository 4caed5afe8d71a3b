"""The managed objects as the runner's watches last delivered them: reads without requests.

An informer's store, as controller-runtime's client reads from: ``WorkloadEvents`` fills it
with one listing of every kind (``replace``, which starts a new *epoch*), then each watch
event (``apply``), and empties it when its stream ends (``drop``). Between ``replace`` and
``drop`` the cache is *synced* and the runner reads the Deployment, the Service and the pods
of a model from it instead of asking the API server — converging or checking a model then
costs no read at all; otherwise it asks the API server. Every ``apply`` and ``drop`` names
the epoch of the listing it follows: a stream that was closed (or failed halfway through
its listings) can never write into, or empty, the listing of the stream after it.

Only objects with this controller's managed labels are here (the watches select by them):
"not in the cache" means "no object of ours", and the runner's create then answers for
anything else of that name (409: read, and refuse it if it is not ours). What the cache
holds may lag behind the API server by one event; every write the runner bases on it is
safe against that: a create of an object that exists meanwhile gets 409 and reads it, a
patch carries the uid it was computed for (a replaced object refuses it). ``written``
keeps the runner's own writes (the answer of a create or patch) so that a reconcile right
after its own write does not act on the older copy; it never replaces a version the watch
delivered meanwhile.
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
        self._epoch = 0  # of the listing held; 0: none (not synced)
        self._epochs = 0  # the last one handed out

    # --- fed by the watches -----------------------------------------------------------

    def replace(self, listings: Mapping[str, list[dict[str, Any]]]) -> int:
        """Fresh listings of every kind: synced from now on; the epoch of this listing."""
        with self._lock:
            self._buckets = {}
            for kind, items in listings.items():
                for item in items:
                    bucket, name = _place(kind, item)
                    self._buckets.setdefault(bucket, {})[name] = item
            self._epochs += 1
            self._epoch = self._epochs
            return self._epoch

    def apply(self, epoch: int, kind: str, event_type: str, obj: dict[str, Any]) -> None:
        """One watch event (ADDED, MODIFIED, DELETED) of ``kind``, after listing ``epoch``."""
        bucket, name = _place(kind, obj)
        with self._lock:
            if epoch != self._epoch:
                return
            if event_type == "DELETED":
                self._buckets.get(bucket, {}).pop(name, None)
            else:
                self._buckets.setdefault(bucket, {})[name] = obj

    def drop(self, epoch: int) -> None:
        """The stream of listing ``epoch`` ended: read the API server until the next one."""
        with self._lock:
            if epoch == self._epoch:
                self._epoch = 0
                self._buckets = {}

    # --- for the runner -----------------------------------------------------------------

    def synced(self) -> bool:
        with self._lock:
            return self._epoch != 0

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """The object as last delivered (None: no object of ours); only when synced."""
        with self._lock:
            return self._buckets.get((kind, namespace), {}).get(name)

    def select(self, kind: str, namespace: str, labels: Mapping[str, str]) -> list[dict[str, Any]]:
        """The objects of ``kind`` in ``namespace`` that carry every label of ``labels``."""
        with self._lock:
            candidates = list(self._buckets.get((kind, namespace), {}).values())
        return [obj for obj in candidates if carries(obj, labels)]

    def written(self, kind: str, obj: dict[str, Any], base: dict[str, Any] | None) -> None:
        """The runner wrote ``obj`` (the API's answer) on top of ``base`` (None: a create).

        Kept unless the watch delivered another version meanwhile (then that one is newer
        than ``base`` and at least as new as the write)."""
        bucket, name = _place(kind, obj)
        with self._lock:
            if not self._epoch:
                return
            objects = self._buckets.setdefault(bucket, {})
            held = objects.get(name)
            if held is None if base is None else _version(held) == _version(base):
                objects[name] = obj


def _place(kind: str, obj: Mapping[str, Any]) -> tuple[_Bucket, str]:
    meta = obj.get("metadata") or {}
    return (kind, str(meta.get("namespace") or "")), str(meta.get("name") or "")


def _version(obj: Mapping[str, Any] | None) -> str:
    return str(((obj or {}).get("metadata") or {}).get("resourceVersion") or "")


def carries(obj: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """Whether ``obj`` has every label of ``labels`` (a label selector of equalities)."""
    have = (obj.get("metadata") or {}).get("labels") or {}
    return all(have.get(key) == value for key, value in labels.items())
