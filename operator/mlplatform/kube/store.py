"""The operator's desired-state source: the MLModels kopf watches, kept for the controller.

kopf's event handler puts every body it sees here (``observe``); the store validates it
once, keeps what the controller needs (the workload or the refusal, the generation, a
deletion mark) and says whether the change matters — a new object, a new generation or
spec, a deletion mark. The status of a key is the operator's own: read from the object
the first time it is seen (so a restarted operator keeps back-off and restart counts),
then the last one the sink wrote. The status an event carries is compared with the one the
object held after our last write: our own writes coming back are not read again and wake
nothing; a status someone else wrote wakes the model, whose next write puts ours back.

A model whose workload lives in the cluster (``runner: kubernetes``) carries no finalizer
(``held_by_finalizer``): its objects' ``ownerReferences`` let Kubernetes' garbage collector
remove them, and deleting it never waits for the operator. When such a model is gone from
the API server the store keeps it as ``Deleting`` until the controller has deleted its
objects too (promptly, and on an API server that collects slowly), then drops it.

Thread-safe: kopf's event loop writes, the controller's workers read.
"""

from __future__ import annotations

import contextvars
import copy
import fnmatch
import threading
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from mlplatform.core.controller import Deleting, Desired, Found, Refused
from mlplatform.kube import status_patch as status_patching
from mlplatform.kube.api import KubeApi
from mlplatform.models.resource import validate_object
from mlplatform.models.status import MLModelStatus
from mlplatform.runners.base import OwnedWorkload, Owner, Workload
from mlplatform.runners.kubernetes.runner import TYPE as KUBERNETES


@dataclass
class Entry:
    """One MLModel as last seen, with the operator's own status for it."""

    reference: dict[str, Any]  # apiVersion, kind, metadata.name/namespace/uid (for events)
    found: Found  # without status
    fingerprint: tuple[object, ...]  # what, when it changes, calls for a reconcile
    status: MLModelStatus | None  # the status the last reconcile produced
    written: Mapping[str, Any]  # the status as the object holds it (last written or read)
    context: contextvars.Context  # kopf's context of the handler that saw it (to post events)
    gone: bool = False  # deleted from the API server; kept until its workload is removed


class ModelStore:
    """MLModels by ``namespace/name``; the ``DesiredStateSource`` of the operator."""

    def __init__(
        self, api: KubeApi, *, namespaces: Collection[str] = (), delete_timeout: float = 30.0
    ) -> None:
        self._api = api
        self.namespaces = tuple(namespaces)
        self.delete_timeout = delete_timeout
        self._lock = threading.Lock()
        self._entries: dict[str, Entry] = {}

    # --- fed by kopf ------------------------------------------------------------------------

    def observe(self, body: Mapping[str, Any]) -> str | None:
        """Keep ``body`` (seen by a kopf handler, whose context is kept to post events);
        its key when the change calls for a reconcile, else None."""
        seen = dict(body)
        meta = seen.get("metadata", {})
        owner = Owner(
            namespace=str(meta.get("namespace", "")), name=str(meta["name"]), uid=str(meta["uid"])
        )
        generation = meta.get("generation")
        deleting = bool(meta.get("deletionTimestamp"))
        reference = {
            "apiVersion": seen.get("apiVersion"),
            "kind": seen.get("kind"),
            "metadata": {"name": owner.name, "namespace": owner.namespace, "uid": owner.uid},
        }
        context = contextvars.copy_context()
        with self._lock:
            entry = self._entries.get(owner.key)
            if entry is not None and entry.fingerprint == (
                owner.uid,
                generation,
                seen.get("spec"),
                deleting,
            ):  # a status write or a metadata change (the operator's own, mostly)
                entry.reference, entry.context = reference, context
                held = seen.get("status")
                if not isinstance(held, Mapping) or held == entry.written:
                    return None  # our own write coming back, or not about the status
                # Someone else's status write (or our own echo overtaking the write's answer):
                # the next patch is made against what the object holds, and puts ours back.
                entry.written = copy.deepcopy(dict(held))
                return owner.key
        # Copied only now: the object is kept, and kopf's body is not ours to hold.
        snapshot: dict[str, Any] = copy.deepcopy(seen)
        fingerprint = (owner.uid, generation, snapshot.get("spec"), deleting)
        found = _found(snapshot, owner, generation, deleting, self.delete_timeout)
        with self._lock:
            entry = self._entries.get(owner.key)
            if entry is None or entry.found.owner.uid != owner.uid:
                raw = snapshot.get("status")
                entry = self._entries[owner.key] = Entry(
                    reference=reference,
                    found=found,
                    fingerprint=fingerprint,
                    status=status_patching.parse(raw),
                    written=dict(raw) if isinstance(raw, Mapping) else {},
                    context=context,
                )
            else:
                entry.reference, entry.found, entry.fingerprint = reference, found, fingerprint
                entry.context = context
        return owner.key

    def forget(self, body: Mapping[str, Any]) -> str | None:
        """The object is gone from the API server: drop it, or, when no finalizer held it
        for its workload's removal, keep it ``Deleting`` until ``release``; its key, if it
        was held."""
        meta = body.get("metadata", {})
        key = f"{meta.get('namespace', '')}/{meta.get('name')}"
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry.found.owner.uid != str(meta.get("uid")):
                return None
            found = entry.found
            if isinstance(found, Desired) and not held_by_finalizer(body.get("spec")):
                grace = found.workload.spec.container.termination_grace_period_seconds
                entry.found = Deleting(found.owner, found.workload, self.delete_timeout + grace)
                entry.gone = True
            else:
                del self._entries[key]
        return key

    def release(self, key: str) -> None:
        """The controller is done with ``key``: drop it if it is gone from the API server."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry.gone:
                del self._entries[key]

    # --- for the sink -------------------------------------------------------------------------

    def entry(self, key: str) -> Entry | None:
        with self._lock:
            return self._entries.get(key)

    def keep_status(self, key: str, status: MLModelStatus) -> None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                entry.status = status

    def keep_written(self, key: str, written: Mapping[str, Any]) -> None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                entry.written = written

    # --- DesiredStateSource ---------------------------------------------------------------------

    def get(self, key: str) -> Found | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            found, status = entry.found, entry.status
        if isinstance(found, Desired):
            return Desired(found.workload, found.generation, status)
        if isinstance(found, Refused):
            return Refused(found.owner, found.generation, found.problems, status)
        return found

    def list_keys(self) -> list[str]:
        with self._lock:
            return list(self._entries)

    def live_uids(self) -> set[str]:
        """Every MLModel's uid now stored in the API server (a listing, not this store: the
        watch may not have delivered every object yet)."""
        return self._api.live_uids(self._plain_namespaces())

    def in_scope(self, owned: OwnedWorkload) -> bool:
        return not self.namespaces or any(
            fnmatch.fnmatchcase(owned.owner.namespace, p) for p in self.namespaces
        )

    def _plain_namespaces(self) -> tuple[str, ...]:
        return plain_namespaces(self.namespaces)


def held_by_finalizer(spec: object) -> bool:
    """Whether the operator holds a finalizer on an MLModel of ``spec``: when its workload
    lives outside the cluster (a Docker container), which only the operator can remove."""
    return not (isinstance(spec, Mapping) and spec.get("runner") == KUBERNETES)


def plain_namespaces(namespaces: Collection[str]) -> tuple[str, ...]:
    """The namespaces to list in, one by one; empty (every namespace, then filtered by
    ``in_scope``) when there are none or any is a pattern."""
    if any(set(p) & set("*?[!") for p in namespaces):
        return ()
    return tuple(namespaces)


def _found(
    snapshot: dict[str, Any],
    owner: Owner,
    generation: object,
    deleting: bool,
    delete_timeout: float,
) -> Found:
    number = int(str(generation)) if generation is not None else None
    model, problems = validate_object(snapshot)
    if deleting:
        if model is None:
            return Deleting(owner, None, timeout=delete_timeout)
        # The container's grace period is the user's to spend; the bound comes on top of it.
        grace = model.spec.container.termination_grace_period_seconds
        return Deleting(owner, Workload(owner=owner, spec=model.spec), delete_timeout + grace)
    if model is None:
        return Refused(owner, number, tuple(map(str, problems)))
    return Desired(Workload(owner=owner, spec=model.spec), number)
