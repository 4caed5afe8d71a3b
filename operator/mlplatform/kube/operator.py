"""The operator's front end: kopf feeds a store, the one controller reconciles, a sink writes.

``Operator`` wires, once for the process, the ``ModelStore`` (desired-state source), the
``KubeSink`` (status sink) and the ``core.controller.Controller`` with its workers, the
runner's event stream and the resync timer. kopf's handlers (``kube.handlers``) call it:

- ``observe``: every watch event of an MLModel (the initial listing included) goes to the
  store; a new object, a new generation or a deletion mark enqueues its key. The status
  writes of the operator itself come back as events and enqueue nothing.
- ``remove``: kopf's deletion handler (the finalizer is held meanwhile). The controller
  removes the workload (deletions of many objects together, in the controller's removal
  pool); the handler waits for the release at most ``delete_timeout`` seconds plus the
  model's grace period — past that (the engine does not answer) the object is released
  with a warning event and its container is left to garbage collection.
- ``start``/``stop``: kopf's start-up and clean-up activities. With peering, ``start`` only
  starts watching the peering (``kube.leadership``): the controller starts when this replica
  becomes the active one, and stops when another takes the lead (``on_lost`` then ends the
  process, which comes back as a standby). A standby replica runs no worker, resync or
  runner watch.

The blocking work (runner calls, status writes) happens in the controller's worker
threads; the kopf event loop only feeds the store, enqueues and waits on futures.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

import kopf

from mlplatform.core.controller import Controller, ControllerStopped
from mlplatform.core.reconcile import Reconciler
from mlplatform.kube.api import KubeApi
from mlplatform.kube.leadership import Leadership, Peering
from mlplatform.kube.sink import KubeSink
from mlplatform.kube.store import ModelStore
from mlplatform.runners.base import Runner

log = logging.getLogger(__name__)


class Operator:
    """Lives as long as the operator process; shared by every handler of the registry."""

    def __init__(
        self,
        *,
        reconciler: Reconciler,
        api: KubeApi,
        runner: Runner,
        more_runners: Sequence[Runner] = (),
        namespaces: Collection[str] = (),
        resync_interval: float = 60.0,
        delete_timeout: float = 30.0,
        workers: int = 8,
        peering: Peering | None = None,
        on_lost: Callable[[], None] = lambda: None,
    ) -> None:
        self.reconciler = reconciler
        self.delete_timeout = delete_timeout
        self.store = ModelStore(api, namespaces=namespaces, delete_timeout=delete_timeout)
        self.controller = Controller(
            reconciler=reconciler,
            runner=runner,
            more_runners=more_runners,
            source=self.store,
            sink=KubeSink(self.store, api),
            workers=workers,
            resync_interval=resync_interval,
        )
        self._on_lost = on_lost
        self._life = threading.Lock()
        self._running = False  # the controller started and not yet stopped
        self._ended = False  # the controller stopped: it never starts again in this process
        self.leadership: Leadership | None = None
        if peering is not None:
            self.leadership = Leadership(peering, on_lead=self._lead, on_lost=self._lost)

    async def start(self) -> None:
        if self.leadership is None:
            self._lead()
        else:
            log.info("Waiting to be the active replica (peering %s)", self.leadership.identity)
            self.leadership.start()

    async def stop(self) -> None:
        """Stop the event stream and the workers; runner calls in flight finish first (a
        half-made container would otherwise race the next operator's adoption of it)."""
        if self.leadership is not None:
            await asyncio.to_thread(self.leadership.stop)
        await asyncio.to_thread(self._end)

    def _lead(self) -> None:
        with self._life:
            if self._running or self._ended:
                return
            self._running = True
            self.controller.start()

    def _end(self) -> None:
        with self._life:
            running, self._running, self._ended = self._running, False, True
        if running:
            self.controller.stop()

    def _lost(self, why: str) -> None:
        log.warning("Stopping the controller and the process: %s", why)
        self._end()
        self._on_lost()

    def observe(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        """A watch event of kopf's (in its event loop and context)."""
        key = self.store.forget(body) if event_type == "DELETED" else self.store.observe(body)
        if key is not None:
            self.controller.enqueue(key)

    async def remove(self, body: Mapping[str, Any]) -> None:
        """Wait until the controller released the object (at most ``delete_timeout`` plus the
        model's grace period)."""
        self.store.observe(body)  # the deletion mark, if the watch has not told it yet
        key = f"{body['metadata'].get('namespace', '')}/{body['metadata']['name']}"
        deletion = self.controller.deletion(key)
        released = asyncio.wrap_future(deletion.future)
        left = None
        if deletion.deadline is not None:
            left = max(0.0, deletion.deadline - self.controller.clock.now())
        done, _ = await asyncio.wait({released}, timeout=left)
        if not done:  # a runner call hangs past the deadline: release without it
            self.controller.expire(deletion)
        try:
            await released
        except ControllerStopped as error:
            raise kopf.TemporaryError("the operator is stopping", delay=5) from error
