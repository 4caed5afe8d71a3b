"""Watches of the managed Deployments, Services, claims and pods, as one stream of RunnerEvents.

``WorkloadEvents`` is the Kubernetes runner's ``EventStream``: it lists the managed objects of
each kind (for a resourceVersion) and watches from there, by the managed labels, in one
thread per kind — across all namespaces, or per namespace when the operator is given its
namespaces (so a Role in each is enough). Each listing and event also goes to the runner's
``ObjectCache`` (what the runner reads instead of the API server), and every change becomes
a ``RunnerEvent`` for the owner its labels name (``action`` is ``"<kind>-<type>"``, e.g.
``"pod-modified"``, ``"deployment-deleted"``). A
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
from mlplatform.runners.kubernetes.cache import ObjectCache

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
        *,
        cache: ObjectCache | None = None,
        namespaces: tuple[str, ...] = (),
    ) -> None:
        self._objects = objects
        self._own_writes = own_writes or OwnWrites()
        self._cache = cache or ObjectCache()
        self._selector = selector
        self._controller = controller
        self._queue: queue.Queue[Any] = queue.Queue()
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._responses: set[Any] = set()
        scopes: tuple[str | None, ...] = namespaces or (None,)
        # Every listing first (failing fast, the consumer backs off, when the API does not
        # answer), then the cache takes them all at once: never some kinds only.
        self._versions: dict[tuple[str, str | None], str] = {}
        listings: dict[str, list[dict[str, Any]]] = {kind: [] for kind in api.KINDS}
        for kind in api.KINDS:
            for namespace in scopes:
                found, version = objects.list(kind, namespace=namespace, selector=selector)
                listings[kind].extend(item for item in found if self._managed(item))
                self._versions[kind, namespace] = version
        self._epoch = self._cache.replace(listings)
        self._threads = [
            threading.Thread(
                target=self._watch,
                args=(kind, namespace),
                name=f"k8s-watch-{kind}" + (f"-{namespace}" if namespace else ""),
                daemon=True,
            )
            for kind, namespace in self._versions
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
        self._cache.drop(self._epoch)
        with self._lock:
            responses = list(self._responses)
        for response in responses:
            _shutdown(response)
        self._queue.put(_DONE)

    # --- one thread per kind ------------------------------------------------------------

    def _watch(self, kind: str, namespace: str | None) -> None:
        version = self._versions[kind, namespace]
        try:
            while not self._closed.is_set():
                response = self._objects.watch(
                    kind,
                    namespace=namespace,
                    selector=self._selector,
                    resource_version=version,
                    timeout=WATCH_TIMEOUT,
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
            self._cache.drop(self._epoch)  # events may be missed from here: read the API
            if not self._closed.is_set():
                self._queue.put(error)
        except Exception as error:  # a broken stream: end it, the consumer reconnects
            self._cache.drop(self._epoch)
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
        if not self._managed(obj):
            return str(version) if version else None
        self._cache.apply(self._epoch, kind, str(kind_of_event), obj)
        labels = meta.get("labels") or {}
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

    def _managed(self, obj: dict[str, Any]) -> bool:
        """Managed by this controller (an emulator or an old server may ignore a selector)."""
        labels = (obj.get("metadata") or {}).get("labels") or {}
        return bool(
            labels.get(base.LABEL_MANAGED_BY) == base.MANAGED_BY
            and labels.get(base.LABEL_CONTROLLER) == self._controller
        )


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
