"""Watches of the managed Deployments, Services, claims and pods, as one stream of RunnerEvents.

``WorkloadEvents`` is the Kubernetes runner's ``EventStream``: one thread per kind lists the
managed objects (for a resourceVersion) and watches from there, across all namespaces, by
the managed labels; every change becomes a ``RunnerEvent`` for the owner its labels name
(``action`` is ``"<kind>-<type>"``, e.g. ``"pod-modified"``, ``"deployment-deleted"``). A
server-side timeout re-opens the watch from the last version seen; an expired version (410)
or a broken connection ends the stream with ``RunnerUnavailable``, so the consumer
(``core.drift.DriftWatcher``) reconnects and resyncs what it may have missed. ``close()``
from any thread shuts the open responses down and ends the iteration.

The runner's own writes come back through the watch too; ``OwnWrites`` remembers the
resourceVersion of each object the runner just created or patched, and the event carrying
exactly that version is dropped (the reconcile that wrote it already knows). Any later
change of the object, by the cluster or by a person, is a new version and wakes the owner.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections.abc import Iterator
from typing import Any, Final

from mlplatform import errors
from mlplatform.runners import base
from mlplatform.runners.kubernetes import api, plan

log = logging.getLogger(__name__)

# Seconds the API server keeps a watch open before it ends it (then re-opened from the last
# version): short enough that a silently dropped connection is noticed.
WATCH_TIMEOUT: Final = 300
_DONE: Final = object()


class OwnWrites:
    """The resourceVersion of each object the runner wrote last (thread-safe).

    A write's event can reach the watch before the write's answer reaches the runner:
    ``begin`` marks the write in flight, and ``echo`` waits for its answer (at most
    ``IN_FLIGHT_WAIT`` seconds) before it judges an event about that object."""

    IN_FLIGHT_WAIT: Final = 2.0

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._versions: dict[tuple[str, str, str], str] = {}
        self._in_flight: dict[tuple[str, str, str], int] = {}

    def begin(self, kind: str, namespace: str, name: str) -> None:
        with self._changed:
            key = (kind, namespace, name)
            self._in_flight[key] = self._in_flight.get(key, 0) + 1

    def end(self, kind: str, namespace: str, name: str, written: dict[str, Any] | None) -> None:
        """The write's answer (None: it failed)."""
        key = (kind, namespace, name)
        version = ((written or {}).get("metadata") or {}).get("resourceVersion")
        with self._changed:
            if version:
                self._versions[key] = str(version)
            left = self._in_flight.get(key, 1) - 1
            if left > 0:
                self._in_flight[key] = left
            else:
                self._in_flight.pop(key, None)
            self._changed.notify_all()

    def echo(self, kind: str, meta: dict[str, Any]) -> bool:
        """Whether ``meta`` is the runner's own last write of that object (forgotten then)."""
        key = (kind, str(meta.get("namespace")), str(meta.get("name")))
        with self._changed:
            self._changed.wait_for(lambda: key not in self._in_flight, timeout=self.IN_FLIGHT_WAIT)
            if self._versions.get(key) != str(meta.get("resourceVersion")):
                return False
            del self._versions[key]
            return True


class WorkloadEvents:
    """A blocking iterator of ``RunnerEvent``s about managed objects (see the module doc)."""

    def __init__(
        self,
        objects: api.KubeObjects,
        selector: str,
        controller: str,
        own_writes: OwnWrites | None = None,
    ) -> None:
        self._objects = objects
        self._own_writes = own_writes or OwnWrites()
        self._selector = selector
        self._controller = controller
        self._queue: queue.Queue[Any] = queue.Queue()
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._responses: set[Any] = set()
        # Fail fast (the consumer backs off) when the API does not answer at all.
        self._versions = {
            kind: objects.list(kind, namespace=None, selector=selector)[1] for kind in api.KINDS
        }
        self._threads = [
            threading.Thread(
                target=self._watch, args=(kind,), name=f"k8s-watch-{kind}", daemon=True
            )
            for kind in api.KINDS
        ]
        for thread in self._threads:
            thread.start()

    def __iter__(self) -> Iterator[base.RunnerEvent]:
        while True:
            item = self._queue.get()
            if item is _DONE or self._closed.is_set():
                return
            if isinstance(item, errors.RunnerError):
                self.close()
                raise item
            yield item

    def close(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        with self._lock:
            responses = list(self._responses)
        for response in responses:
            _shutdown(response)
        self._queue.put(_DONE)

    # --- one thread per kind ------------------------------------------------------------

    def _watch(self, kind: str) -> None:
        version = self._versions[kind]
        try:
            while not self._closed.is_set():
                response = self._objects.watch(
                    kind, selector=self._selector, resource_version=version, timeout=WATCH_TIMEOUT
                )
                with self._lock:
                    self._responses.add(response)
                if self._closed.is_set():
                    _shutdown(response)
                try:
                    for event in api.watch_events(response):
                        version = self._handle(kind, event) or version
                finally:
                    with self._lock:
                        self._responses.discard(response)
                    _shutdown(response)
        except errors.RunnerError as error:
            if not self._closed.is_set():
                self._queue.put(error)
        except Exception as error:  # a broken stream: end it, the consumer reconnects
            if not self._closed.is_set():
                log.debug("The %s watch broke: %s", kind, error)
                self._queue.put(errors.RunnerUnavailable(f"the {kind} watch broke: {error}"))

    def _handle(self, kind: str, event: dict[str, Any]) -> str | None:
        kind_of_event = event.get("type")
        obj = event.get("object") or {}
        meta = obj.get("metadata") or {}
        if kind_of_event == "ERROR":
            code = obj.get("code")
            raise errors.RunnerUnavailable(
                f"the {kind} watch ended: {code} {obj.get('message') or obj.get('reason')}"
            )
        version = meta.get("resourceVersion")
        if kind_of_event == "BOOKMARK":
            return str(version) if version else None
        labels = meta.get("labels") or {}
        if (
            labels.get(base.LABEL_MANAGED_BY) != base.MANAGED_BY
            or labels.get(base.LABEL_CONTROLLER) != self._controller
        ):
            return str(version) if version else None
        if kind_of_event in ("ADDED", "MODIFIED") and self._own_writes.echo(kind, meta):
            return str(version) if version else None
        owner = _owner(labels)
        if owner is not None and not self._closed.is_set():
            model_id = (meta.get("annotations") or {}).get(plan.ANNOTATION_MODEL_ID) or ""
            self._queue.put(
                base.RunnerEvent(
                    owner=owner,
                    model_id=str(model_id),
                    action=f"{kind.lower()}-{str(kind_of_event).lower()}",
                )
            )
        return str(version) if version else None


def _owner(labels: dict[str, str]) -> base.Owner | None:
    owner = base.owner_from_labels(labels)
    return owner if owner.namespace and owner.name and owner.uid else None


def _shutdown(response: Any) -> None:
    """End a watch response from any thread (unblocks its reader)."""
    with contextlib.suppress(Exception):
        shutdown = getattr(response, "shutdown", None)
        if shutdown is not None:
            shutdown()
    with contextlib.suppress(Exception):
        response.close()  # never back to the pool: a watch connection is spent
