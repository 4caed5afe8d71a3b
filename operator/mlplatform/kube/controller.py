"""The operator's control loop around the reconcile core: one loop per MLModel, woken on change.

Each MLModel gets one long-lived loop (a kopf daemon calls ``serve``) for as long as the
object exists. The loop reconciles (in a worker thread: the runner blocks), writes the status
when it changed, posts the outcome's events, and waits until something may have changed:

- the spec changed (a kopf ``on.update`` handler calls ``wake``);
- the runner saw something happen to the model's container (the one ``DriftWatcher`` thread
  of the process calls ``wake`` through the event loop, by the owner uid in the labels);
- the core asked to look again (``Outcome.requeue_after``: back-off, probes, engine down);
- the resync found its container not as its status says (the safety net for missed events:
  every ``resync_interval``, one listing of the engine for all models; ``Reconciler.resync``).

Nothing polls Docker per object, and a steady model costs no Docker request at all. One model
is never reconciled by two threads at once (a lock per uid, taken in the worker thread so
that a cancelled await cannot release it early), and a model marked for deletion is never
reconciled again — so a deletion cannot race a re-create.

Deletion (``remove``) is bounded: after ``delete_timeout`` seconds of an unreachable engine
the object is released with a warning event, and its container is left to garbage
collection. The resync lists this controller's containers first and the MLModels second, so
a container whose owner is absent from the later listing was orphaned before it — a model
created in between cannot lose its new container. It runs at start-up, every
``resync_interval`` and whenever the engine answers again.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import fnmatch
import logging
import threading
import time
from collections.abc import Collection, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import kopf

from mlplatform import errors
from mlplatform.core.drift import DriftWatcher
from mlplatform.core.reconcile import Event, Outcome, Reconciler, Resync
from mlplatform.kube import status as status_patching
from mlplatform.kube.api import KubeApi, ObjectGone
from mlplatform.models.resource import validate_object
from mlplatform.models.spec import container_name
from mlplatform.models.status import MLModelStatus
from mlplatform.runners.base import Owner, Runner, RunnerEvent, Workload

log = logging.getLogger(__name__)

Logger = logging.Logger | logging.LoggerAdapter[Any]

# How soon to try again when a status write failed (API server busy or unreachable).
STATUS_RETRY = 2.0


# Deletions run at once (each mostly waits out its container's grace period).
DELETE_WORKERS = 64


class Controller:
    """Lives as long as the operator process; shared by every handler of the registry."""

    def __init__(
        self,
        *,
        reconciler: Reconciler,
        api: KubeApi,
        runner: Runner,
        namespaces: Collection[str] = (),
        resync_interval: float = 60.0,
        delete_timeout: float = 30.0,
        workers: int = 8,
    ) -> None:
        self.reconciler = reconciler
        self.api = api
        self.runner = runner
        self.namespaces = tuple(namespaces)
        self.resync_interval = resync_interval
        self.delete_timeout = delete_timeout
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix="mlplatform-reconcile")
        # Deletes mostly wait out grace periods: many run together, apart from the reconcile
        # workers, so deleting N models costs about one grace period, not N / workers.
        self._deleter = ThreadPoolExecutor(DELETE_WORKERS, thread_name_prefix="mlplatform-delete")
        self._wakers: dict[str, asyncio.Event] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._drift: DriftWatcher | None = None
        self._statuses: dict[str, MLModelStatus | None] = {}  # by uid, as last reconciled
        self._resync_task: asyncio.Task[None] | None = None
        self._resync_wanted = asyncio.Event()
        self._stopping = False

    # --- the process's life (kopf start-up and clean-up activities) -----------------------

    async def start(self) -> None:
        """Start the drift watcher thread and the resync loop (once the event loop runs)."""
        self._loop = asyncio.get_running_loop()
        self._drift = DriftWatcher(
            self.runner, self._on_runner_event, on_reconnect=self._on_reconnect
        ).start()
        self._resync_wanted.set()
        self._resync_task = asyncio.create_task(self._resync_loop(), name="mlplatform-resync")

    async def stop(self) -> None:
        """Stop the loops and let in-flight runner calls finish (a half-made container
        would otherwise race the next operator's adoption of it)."""
        self._stopping = True
        self.wake_all()
        if self._resync_task is not None:
            self._resync_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._resync_task
        if self._drift is not None:
            await asyncio.to_thread(self._drift.stop)
        await asyncio.to_thread(self._executor.shutdown, wait=True, cancel_futures=True)
        await asyncio.to_thread(self._deleter.shutdown, wait=True, cancel_futures=True)

    # --- waking loops --------------------------------------------------------------------

    def wake(self, uid: str) -> None:
        """Ask the loop of model ``uid`` to reconcile now (call from the event loop)."""
        waker = self._wakers.get(uid)
        if waker is not None:
            waker.set()

    def wake_all(self) -> None:
        for waker in list(self._wakers.values()):
            waker.set()

    def _call_soon(self, callback: Any, *args: Any) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(callback, *args)

    def _on_runner_event(self, event: RunnerEvent) -> None:
        # In the drift watcher's thread.
        log.debug("Runner event %s for %s", event.action, event.owner.key)
        self._call_soon(self.wake, event.owner.uid)

    def _on_reconnect(self) -> None:
        # In the drift watcher's thread: events were missed; look at everything again.
        self._call_soon(self.wake_all)
        self._call_soon(self._resync_wanted.set)

    # --- one model's loop (a kopf daemon) ------------------------------------------------

    async def serve(self, *, body: kopf.Body, stopped: Any, logger: Logger) -> None:
        """Reconcile one model until kopf stops the daemon (object deleted, operator exiting)."""
        uid = str(body["metadata"]["uid"])
        waker = asyncio.Event()
        self._wakers[uid] = waker
        self._statuses.setdefault(uid, None)

        async def wake_when_stopped() -> None:
            await stopped.wait()
            waker.set()

        stop_watch = asyncio.create_task(wake_when_stopped())
        previous = status_patching.parse(body.get("status"))
        written: Mapping[str, Any] | None = None  # the status as we last wrote it
        try:
            while not stopped and not self._stopping:
                waker.clear()
                try:
                    outcome = await self._run(self._reconcile_sync, uid, body, previous)
                except _ExecutorClosed:
                    return
                if outcome is None:  # marked for deletion
                    return
                base = written if written is not None else body.get("status") or {}
                patch = status_patching.status_patch(base, outcome.status)
                delay = outcome.requeue_after
                if patch:
                    try:
                        await self._run(self._write_status, body, patch)
                        written = outcome.status.to_wire()
                    except ObjectGone:
                        return
                    except Exception as error:  # API down or refusing: keep the loop alive
                        logger.warning("Failed to write the status: %s", error)
                        delay = STATUS_RETRY if delay is None else min(delay, STATUS_RETRY)
                previous = outcome.status
                self._statuses[uid] = previous
                self._post(body, outcome.events)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(waker.wait(), timeout=delay)
        finally:
            stop_watch.cancel()
            if self._wakers.get(uid) is waker:
                del self._wakers[uid]
                self._statuses.pop(uid, None)

    def _reconcile_sync(
        self, uid: str, body: kopf.Body, previous: MLModelStatus | None
    ) -> Outcome | None:
        with self._lock(uid):
            snapshot: dict[str, Any] = copy.deepcopy(dict(body))
            meta = snapshot.get("metadata", {})
            if meta.get("deletionTimestamp"):
                return None
            generation = meta.get("generation")
            generation = int(generation) if generation is not None else None
            owner = Owner(namespace=str(meta.get("namespace", "")), name=str(meta["name"]), uid=uid)
            model, problems = validate_object(snapshot)
            if model is None:
                return self.reconciler.refuse(
                    key=owner.key,
                    generation=generation,
                    previous=previous,
                    message="; ".join(map(str, problems)),
                )
            return self.reconciler.reconcile(
                Workload(owner=owner, spec=model.spec), generation=generation, previous=previous
            )

    def _write_status(self, body: kopf.Body, patch: Mapping[str, Any]) -> None:
        meta = body["metadata"]
        self.api.patch_status(str(meta["namespace"]), str(meta["name"]), patch)

    # --- deletion ------------------------------------------------------------------------

    async def remove(self, *, body: kopf.Body, logger: Logger) -> None:
        """Remove the model's container; give up (and release the object) after the timeout."""
        meta = body["metadata"]
        uid = str(meta["uid"])
        self.wake(uid)  # its loop sees the deletion mark and ends
        model, _ = validate_object(copy.deepcopy(dict(body)))
        owner = Owner(namespace=str(meta.get("namespace", "")), name=str(meta["name"]), uid=uid)
        if model is None:  # never valid, so never run: nothing to remove
            self.reconciler.metrics.set_phase(owner.key, None)
            return
        workload = Workload(owner=owner, spec=model.spec)
        # The container's grace period is the user's to spend; the bound comes on top of it.
        grace = model.spec.container.termination_grace_period_seconds
        deadline = time.monotonic() + self.delete_timeout + grace
        attempt = 0
        while True:
            attempt += 1
            remaining = deadline - time.monotonic()
            try:
                event = await asyncio.wait_for(
                    self._run(self._delete_sync, workload, executor=self._deleter),
                    timeout=max(remaining, 0.1),
                )
            except TimeoutError:
                problem = f"the runner did not answer within {self.delete_timeout + grace:.0f}s"
            except errors.RunnerError as error:
                problem = error.message
                retry = min(2.0 ** (attempt - 1), 10.0)
                if error.retryable and time.monotonic() + retry < deadline:
                    logger.info("Failed to remove the container (attempt %d): %s", attempt, problem)
                    await asyncio.sleep(retry)
                    continue
            else:
                if event is not None:
                    self._post(body, (event,))
                return
            break
        self.reconciler.metrics.set_phase(owner.key, None)
        message = (
            f"Released without removing container {container_name(model.spec.id)}: {problem}; "
            "it will be garbage-collected once the runner answers"
        )
        logger.warning("%s", message)
        self._post(body, (Event("Warning", "ContainerNotRemoved", message),))

    def _delete_sync(self, workload: Workload) -> Event | None:
        with self._lock(workload.owner.uid):
            return self.reconciler.delete(workload)

    # --- resync and garbage collection ------------------------------------------------------

    async def _resync_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._resync_wanted.wait(), timeout=self.resync_interval)
            self._resync_wanted.clear()
            try:
                result = await self._run(self.resync, dict(self._statuses))
            except errors.RunnerError as error:  # engine down: let every model say so
                log.info("Resync could not list the containers: %s", error)
                self.wake_all()
                continue
            except Exception as error:  # API down: the next round will tell
                log.info("Skipped a resync: %s", error)
                continue
            for uid in result.stale:
                self.wake(uid)
            for owned in result.removed:
                log.info(
                    "Removed orphaned container %s (owner %s is gone)",
                    owned.workload_name,
                    owned.owner.key,
                )

    def resync(self, statuses: Mapping[str, MLModelStatus | None]) -> Resync:
        """One listing of the engine: stale models, and orphans removed (blocking)."""
        return self.reconciler.resync(
            self.runner,
            statuses,
            lambda: self.api.live_uids(self._plain_namespaces()),
            scope=lambda owner: self._serves(owner.namespace),
        )

    def _serves(self, namespace: str) -> bool:
        return not self.namespaces or any(
            fnmatch.fnmatchcase(namespace, p) for p in self.namespaces
        )

    def _plain_namespaces(self) -> tuple[str, ...]:
        if any(set(p) & set("*?[!") for p in self.namespaces):
            return ()  # patterns: list the whole cluster and filter by ``_serves``
        return self.namespaces

    # --- helpers ---------------------------------------------------------------------------

    def _lock(self, uid: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(uid, threading.Lock())

    async def _run(self, fn: Any, *args: Any, executor: ThreadPoolExecutor | None = None) -> Any:
        try:
            future = asyncio.get_running_loop().run_in_executor(
                executor or self._executor, fn, *args
            )
        except RuntimeError as error:  # the executor is shut down: the operator is exiting
            raise _ExecutorClosed(str(error)) from error
        return await future

    def _post(self, body: kopf.Body, events: Collection[Event]) -> None:
        for event in events:
            kopf.event(body, type=event.type, reason=event.reason, message=event.message)


class _ExecutorClosed(Exception):
    """Raised when work is submitted after ``stop``: the operator is exiting."""
