"""The one controller of both front ends: a work queue of model keys and workers that
reconcile them (controller-runtime's shape, in Python).

A front end gives the controller two things and otherwise only enqueues keys:

- a ``DesiredStateSource``: for a key, the workload to converge (with its generation and
  the status last written), or a refusal (the spec breaks a rule), or a deletion in
  progress, or nothing; the keys it serves; the owner uids alive (for garbage collection);
- a ``StatusSink``: told each step's outcome (status and events) and each released key.

The operator feeds its source from kopf's watch and writes statuses to the API server;
local mode feeds it from manifest files and writes the table / JSON / status file.

Who enqueues: the front end when the desired state changed; the runner's event stream
(``DriftWatcher``: a key whose workload changed outside a call); the reconcile itself
(``Outcome.requeue_after``); the resync, whose timer is a key of the queue too — one
listing of the runner for all models, queueing the models whose workload disagrees with
their status and removing orphans. A steady model costs the runner no request at all.

The queue hands a key to one worker at a time, and many adds of one key while it waits are
one reconcile. A step that raises (a status write the API refused, a surprise) is retried
with the controller's one back-off (``BackoffPolicy.retry``); a success ``forget``s the
count. A model's own back-off after crashes is not here: it is ``consecutiveFailures`` in
its status, kept by the ``Reconciler``.

A key marked for deletion is never reconciled again: its workload is removed through the
runner, retried while the runner is unavailable, and released — told to the sink, which
lets the front end drop it — once removed, or once the deletion's timeout has passed (the
workload is then left to garbage collection). ``deletion``/``expire``/``wait_deletion``
let a front end wait for that release with a bound even while a runner call hangs.

Removals — a deletion, or a model suspended — mostly wait out a container's grace period:
a worker hands them to a removal pool (``removal_workers`` threads, apart from the
``workers``), so removing N models costs about one grace period, not N / workers, and
reconciles go on meanwhile. The key stays handed out (the queue's ``done`` comes once the
removal ended), so one key is still never worked on twice at a time.

``stop`` ends the event sources, lets in-flight runner calls finish and joins the workers.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Collection, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass
from typing import Protocol

from mlplatform import errors
from mlplatform.core.backoff import RETRY, BackoffPolicy
from mlplatform.core.clock import MONOTONIC, Clock
from mlplatform.core.drift import DriftWatcher
from mlplatform.core.reconcile import Event, Outcome, Reconciler, Resync
from mlplatform.core.workqueue import WorkQueue
from mlplatform.models.spec import container_name
from mlplatform.models.status import MLModelStatus
from mlplatform.runners.base import OwnedWorkload, Owner, Runner, RunnerEvent, Workload

log = logging.getLogger(__name__)

# The resync's key in the work queue: not a ``namespace/name``, so never a model's.
RESYNC = "(resync)"
# Removals (deletions, suspends) run at once: each mostly waits out a grace period. Bounded,
# so a folder of thousands does not open thousands of engine connections.
REMOVAL_WORKERS = 64


# --- what the desired-state source answers ----------------------------------------------


@dataclass(frozen=True)
class Desired:
    """A model to converge: its workload, generation and the status last written."""

    workload: Workload
    generation: int | None
    status: MLModelStatus | None = None

    @property
    def owner(self) -> Owner:
        return self.workload.owner


@dataclass(frozen=True)
class Refused:
    """A model whose spec breaks a rule: nothing is run for it, its status says why."""

    owner: Owner
    generation: int | None
    problems: tuple[str, ...]
    status: MLModelStatus | None = None


@dataclass(frozen=True)
class Deleting:
    """A model marked for deletion: remove its workload, then release the key."""

    owner: Owner
    workload: Workload | None  # None: never valid, so nothing was ever run for it
    timeout: float | None = None  # release after this long even if not removed; None: never


Found = Desired | Refused | Deleting


class DesiredStateSource(Protocol):
    """The front end's desired state, as the controller reads it (from worker threads)."""

    def get(self, key: str) -> Found | None:
        """What ``key`` stands for now; None when the front end has no such model."""

    def list_keys(self) -> Collection[str]:
        """Every key the front end holds (for a resync)."""

    def live_uids(self) -> Collection[str]:
        """The owner uids that exist now, read fresh (workloads of others are orphans)."""

    def in_scope(self, owned: OwnedWorkload) -> bool:
        """Whether a workload found in the runner is this front end's: only those are
        checked against their model's status, and removed when their owner is gone."""


class StatusSink(Protocol):
    """Where outcomes go (called from worker threads; may raise ``RetryLater``)."""

    def write(self, key: str, found: Desired | Refused, outcome: Outcome) -> None:
        """Keep ``outcome.status`` as the key's status and tell ``outcome.events``."""

    def released(self, key: str, found: Deleting, events: Sequence[Event]) -> None:
        """``key`` is deleted (or given up on): tell ``events``, drop the key."""


class EventSource(Protocol):
    """Something that enqueues keys while it runs (started and stopped by the controller)."""

    def start(self) -> object: ...

    def stop(self) -> None: ...


class RetryLater(Exception):
    """Raised by a sink when the outcome could not be written: the key is tried again."""


class ControllerStopped(Exception):
    """A deletion was still in progress when the controller stopped."""


@dataclass(frozen=True)
class Released:
    """How a deletion ended."""

    removed: bool  # the workload is gone (or there was none); False: left to the resync
    message: str = ""


class Deletion:
    """One object's deletion in progress; ``future`` resolves once the key is released."""

    def __init__(self, key: str, uid: str, timeout: float | None, deadline: float | None) -> None:
        self.key = key
        self.uid = uid  # a later object of the same name is another deletion
        self.timeout = timeout
        self.deadline = deadline
        self.future: Future[Released] = Future()
        self.settled = False  # claimed by whoever releases it (a worker or ``expire``)


class Controller:
    """Reconciles the keys of one front end with ``workers`` threads; see the module doc."""

    def __init__(
        self,
        *,
        reconciler: Reconciler,
        runner: Runner,
        more_runners: Sequence[Runner] = (),
        source: DesiredStateSource,
        sink: StatusSink,
        workers: int = 8,
        removal_workers: int = REMOVAL_WORKERS,
        resync_interval: float | None = 60.0,
        watch_runner: bool = True,
        sources: Sequence[EventSource] = (),
        retry: BackoffPolicy = RETRY,
        clock: Clock = MONOTONIC,
    ) -> None:
        self.reconciler = reconciler
        self.runner = runner
        # Every runner this front end drives (the operator: each enabled one): each has its
        # event stream watched and its workloads listed by the resync.
        self.runners: tuple[Runner, ...] = (runner, *more_runners)
        self.source = source
        self.sink = sink
        self.resync_interval = resync_interval
        self.clock = clock
        self.queue: WorkQueue[str] = WorkQueue(clock=clock, backoff=retry)
        self._workers = workers
        self._removals = ThreadPoolExecutor(
            max(1, removal_workers), thread_name_prefix="mlplatform-remove"
        )
        self._removing: set[Future[None]] = set()
        self._removing_lock = threading.Lock()
        self._sources: list[EventSource] = []
        if watch_runner:
            self._sources.extend(
                DriftWatcher(
                    each, self._on_runner_event, on_reconnect=self.resync_soon, retry=retry
                )
                for each in self.runners
            )
        self._sources.extend(sources)
        self._lock = threading.Condition()  # guards the deletions; notified on each release
        self._deletions: dict[str, Deletion] = {}
        self._threads: list[threading.Thread] = []
        self._stopped = False

    # --- what front ends and sources call ------------------------------------------------

    def enqueue(self, key: str, after: float = 0.0) -> None:
        """Reconcile ``key`` (now, or in ``after`` seconds); many calls make one reconcile."""
        self.queue.add(key, after)

    def enqueue_all(self) -> None:
        for key in self.source.list_keys():
            self.queue.add(key)

    def resync_soon(self) -> None:
        """Run a resync now (the runner answers again: events may have been missed)."""
        self.queue.add(RESYNC)

    def _on_runner_event(self, event: RunnerEvent) -> None:
        # In the drift watcher's thread: only workloads of a model we hold, by owner uid.
        key = event.owner.key
        found = self.source.get(key)
        if found is not None and found.owner.uid == event.owner.uid:
            log.debug("Runner event %s on %s", event.action, key)
            self.queue.add(key)

    # --- life ------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the workers, the event sources and (with an interval) the resync timer."""
        for index in range(self._workers):
            thread = threading.Thread(
                target=self._work, name=f"mlplatform-worker-{index}", daemon=True
            )
            thread.start()
            self._threads.append(thread)
        for source in self._sources:
            source.start()
        if self.resync_interval is not None:
            self.queue.add(RESYNC)

    def stop(self, timeout: float | None = None) -> None:
        """Stop the sources, let in-flight steps finish, join the workers, all within
        ``timeout`` (None: wait for them). Models keep running; deletions still in progress
        fail with ``ControllerStopped``."""
        deadline = None if timeout is None else time.monotonic() + timeout  # real time
        self.queue.shutdown()  # first: no step starts once stopping has begun
        for source in reversed(self._sources):
            source.stop()
        for thread in self._threads:
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        # Removals in flight finish too (within the same bound); queued ones never start.
        self._removals.shutdown(wait=False, cancel_futures=True)
        with self._removing_lock:
            in_flight = set(self._removing)
        if in_flight:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            wait_futures(in_flight, timeout=left)
        with self._lock:
            self._stopped = True
            pending = [d for d in self._deletions.values() if not d.settled]
            self._lock.notify_all()
        for deletion in pending:
            if not deletion.future.done():
                deletion.future.set_exception(ControllerStopped(deletion.key))

    # --- workers -----------------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            key = self.queue.get()
            if key is None:
                return
            if self._is_removal(key) and self._hand_to_removals(key):
                continue
            self._step(key)

    def _is_removal(self, key: str) -> bool:
        """Whether ``key``'s next step removes a workload (a deletion, a suspend)."""
        if key == RESYNC:
            return False
        found = self.source.get(key)
        return isinstance(found, Deleting) or (
            isinstance(found, Desired) and found.workload.spec.suspend
        )

    def _hand_to_removals(self, key: str) -> bool:
        """Run ``key``'s step in the removal pool; False when the pool is shut down."""
        try:
            future = self._removals.submit(self._step, key)
        except RuntimeError:  # the controller is stopping: the worker steps it itself
            return False
        with self._removing_lock:
            self._removing.add(future)
        future.add_done_callback(self._removal_done)
        return True

    def _removal_done(self, future: Future[None]) -> None:
        with self._removing_lock:
            self._removing.discard(future)

    def _step(self, key: str) -> None:
        """One step of ``key`` with the controller's retry policy; ends its hand-out."""
        try:
            self._process(key)
        except RetryLater as error:
            wait = self.queue.add_rate_limited(key)
            log.warning("%s: %s; retrying in %.1fs", key, error, wait or 0.0)
        except Exception:  # a worker must outlive any one model's surprise
            wait = self.queue.add_rate_limited(key)
            log.exception("Reconcile of %s failed; retrying in %.1fs", key, wait or 0.0)
        finally:
            self.queue.done(key)

    def _process(self, key: str) -> None:
        if key == RESYNC:
            try:
                self.resync()
            finally:
                if self.resync_interval is not None:
                    self.queue.add(RESYNC, self.resync_interval)
            return
        found = self.source.get(key)
        if isinstance(found, Deleting):
            self._delete(key, found)
            return
        self._drop_deletion(key)
        if found is None:  # the front end no longer holds it (deleted and released)
            self.queue.forget(key)
            self.reconciler.metrics.set_phase(key, None)
            return
        if isinstance(found, Refused):
            outcome = self.reconciler.refuse(
                key=key,
                generation=found.generation,
                previous=found.status,
                message="; ".join(found.problems),
            )
        else:
            outcome = self.reconciler.reconcile(
                found.workload, generation=found.generation, previous=found.status
            )
        self.sink.write(key, found, outcome)
        if outcome.rate_limited:  # the runner is unreachable: back off, with every other key
            self.queue.add_rate_limited(key)
            return
        self.queue.forget(key)
        if outcome.requeue_after is not None:
            self.queue.add(key, outcome.requeue_after)

    # --- deletion ---------------------------------------------------------------------------

    def deletion(self, key: str) -> Deletion:
        """The deletion of ``key`` (which the source marks ``Deleting``), begun now if it was
        not yet; its ``future`` resolves when the key is released."""
        found = self.source.get(key)
        uid = found.owner.uid if found is not None else ""
        deletion = self._deletion(key, uid, found.timeout if isinstance(found, Deleting) else None)
        self.queue.add(key)
        return deletion

    def _deletion(self, key: str, uid: str, timeout: float | None) -> Deletion:
        with self._lock:
            deletion = self._deletions.get(key)
            if deletion is None or (deletion.settled and deletion.uid != uid):
                deadline = None if timeout is None else self.clock.now() + timeout
                deletion = self._deletions[key] = Deletion(key, uid, timeout, deadline)
            if self._stopped and not deletion.future.done():
                deletion.future.set_exception(ControllerStopped(key))
            return deletion

    def expire(self, deletion: Deletion) -> None:
        """Release ``deletion`` now if it is not yet (its deadline passed while the runner
        did not answer): the workload is left to garbage collection."""
        found = self.source.get(deletion.key)
        if isinstance(found, Deleting):
            timeout = deletion.timeout or 0.0
            self._give_up(deletion, found, f"the runner did not answer within {timeout:.0f}s")

    def wait_deletion(self, deletion: Deletion) -> Released:
        """Block until ``deletion`` is released, or its deadline passes (then ``expire`` it).
        Raises ``ControllerStopped`` when the controller stops first."""
        with self._lock:
            while not deletion.settled and not self._stopped:
                left = None if deletion.deadline is None else deletion.deadline - self.clock.now()
                if left is not None and left <= 0:
                    break
                self.clock.wait(self._lock, left)
        if not deletion.settled and not self._stopped:
            self.expire(deletion)
        return deletion.future.result()

    def _delete(self, key: str, found: Deleting) -> None:
        deletion = self._deletion(key, found.owner.uid, found.timeout)
        if deletion.settled:
            return  # released already (given up while a runner call hung)
        if found.workload is None:
            self._release(deletion, found, Released(True), ())
            return
        try:
            event = self.reconciler.delete(found.workload)
        except errors.RunnerError as error:
            wait = None
            if error.retryable or deletion.deadline is None:
                wait = self.queue.add_rate_limited(key, before=deletion.deadline)
            if wait is not None:
                log.info(
                    "Could not remove %s yet (%s); retrying in %.1fs", key, error.message, wait
                )
                return
            self._give_up(deletion, found, error.message)
            return
        self._release(deletion, found, Released(True), () if event is None else (event,))

    def _give_up(self, deletion: Deletion, found: Deleting, problem: str) -> None:
        name = container_name(found.workload.spec.id) if found.workload else found.owner.key
        message = (
            f"Released without removing container {name}: {problem}; "
            "it will be garbage-collected once the runner answers"
        )
        if self._release(
            deletion,
            found,
            Released(False, message),
            (Event("Warning", "ContainerNotRemoved", message),),
        ):
            log.warning("%s: %s", deletion.key, message)
            self.reconciler.metrics.set_phase(deletion.key, None)

    def _release(
        self, deletion: Deletion, found: Deleting, result: Released, events: Sequence[Event]
    ) -> bool:
        """Release once (a worker and ``expire`` may race); whether this call did."""
        with self._lock:
            if deletion.settled:
                return False
            deletion.settled = True
        self.queue.forget(deletion.key)
        try:
            self.sink.released(deletion.key, found, events)
        finally:
            with self._lock:
                if not deletion.future.done():
                    deletion.future.set_result(result)
                self._lock.notify_all()
            # Once the front end drops the key, this look finds it absent and ends the record.
            self.queue.add(deletion.key)
        return True

    def _drop_deletion(self, key: str) -> None:
        """``key`` is desired again or gone: its released deletion record is done with."""
        with self._lock:
            deletion = self._deletions.pop(key, None)
        if deletion is not None and not deletion.future.done():
            deletion.future.set_result(Released(False, "the model is no longer being deleted"))

    # --- resync ------------------------------------------------------------------------------

    def resync(self) -> Resync | None:
        """One listing per runner: queue the models whose workload disagrees with their
        status, remove the orphans in scope. Blocking; None when it could not list."""
        statuses: dict[str, MLModelStatus | None] = {}
        by_uid: dict[str, str] = {}
        kinds: dict[str, str] = {}
        for key in self.source.list_keys():
            found = self.source.get(key)
            if isinstance(found, Desired):
                statuses[found.owner.uid] = found.status
                by_uid[found.owner.uid] = key
                kinds[found.owner.uid] = found.workload.spec.runner
        stale: set[str] = set()
        removed: list[OwnedWorkload] = []
        listed = False
        for runner in self.runners:
            # With several runners, each judges the models that run on it only.
            mine = (
                statuses
                if len(self.runners) == 1
                else {uid: s for uid, s in statuses.items() if kinds[uid] == runner.type}
            )
            try:
                result = self.reconciler.resync(
                    runner, mine, self.source.live_uids, scope=self.source.in_scope
                )
            except errors.RunnerError as error:  # engine down: let its models say so
                log.warning(
                    "Resync could not list the %s workloads (%s); checking its models",
                    runner.type,
                    error,
                )
                if len(self.runners) == 1:
                    self.enqueue_all()
                else:
                    for uid in mine:
                        self.queue.add(by_uid[uid])
                continue
            except Exception as error:  # the front end could not list its owners: next round
                log.warning("Skipped a resync: %s", error)
                return None
            listed = True
            stale |= result.stale
            removed.extend(result.removed)
        if not listed:
            return None
        self.reconciler.metrics.resyncs.inc()
        for uid in stale:
            self.queue.add(by_uid[uid])
        for owned in removed:
            log.info(
                "Removed the workload of %s (model %s): its owner is gone",
                owned.owner.key,
                owned.model_id,
            )
        return Resync(frozenset(stale), tuple(removed))
