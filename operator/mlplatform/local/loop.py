"""The local control loop: manifests on disk → work queue → reconcile workers → status.

Lives as long as ``mlplatform local`` runs. Threads, all daemons, all ended by ``stop``:

- ``workers`` reconcile workers: pop a key, call the core's ``reconcile`` (or ``delete`` for
  a model whose manifest is gone), keep the status, queue the key again after
  ``requeue_after``. The queue hands a key to one worker at a time.
- one file watcher (inotify, through watchfiles): when the manifests changed and then held
  still for a moment (a save in progress is not read half-written), it reloads: a new model
  is queued, a changed one is queued with its new generation, a removed one is queued for
  deletion.
- one drift watcher (``core.drift``): a Docker event about a managed container queues its
  owner; after a reconnect everything is resynced.
- one resync timer: every ``resync`` seconds lists the engine's containers once, queues
  the models whose container disagrees with their status, and removes containers of this
  controller whose model is no longer desired (also at start-up).

Everything is level-based: whatever woke a key, the worker reads the desired model and asks
the core to converge it.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import watchfiles

from mlplatform import errors
from mlplatform.core.drift import DriftWatcher
from mlplatform.core.reconcile import Event, Reconciler
from mlplatform.core.workqueue import WorkQueue
from mlplatform.local import desired
from mlplatform.local.desired import DesiredModel, DesiredState
from mlplatform.local.table import Row
from mlplatform.models import documents
from mlplatform.models.status import MLModelStatus, Phase
from mlplatform.runners.base import OwnedWorkload, Runner, RunnerEvent

log = logging.getLogger("mlplatform.local")

# Milliseconds the manifests must be quiet before a batch of changes is read.
QUIET_MS = 10
DELETE_RETRY = 5.0
# Models removed at once when their manifests go (each removal mostly waits for a stop).
REMOVE_WORKERS = 64
ERROR_RETRY = 5.0


@dataclass(frozen=True)
class Progress:
    """Where the models stand, for ``--once``: all settled? all as desired?"""

    settled: bool
    ok: bool


class LocalController:
    """Keeps the models of some manifest paths converged on one runner."""

    def __init__(
        self,
        *,
        paths: Sequence[Path],
        reconciler: Reconciler,
        runner: Runner,
        on_change: Callable[[], None] = lambda: None,
        on_event: Callable[[DesiredModel, Event], None] | None = None,
        previous: dict[str, MLModelStatus] | None = None,
        workers: int = 8,
        resync: float = 30.0,
    ) -> None:
        self._paths = list(paths)
        self._reconciler = reconciler
        self._runner = runner
        self._on_change = on_change
        self._on_event = on_event or _log_event
        self._workers = workers
        self._resync = resync
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._desired: dict[str, DesiredModel] = {}
        self._removing: dict[str, DesiredModel] = {}
        self._status: dict[str, MLModelStatus] = dict(previous or {})
        self._given_up: set[str] = set()  # last outcome was a failure with no retry
        self._fresh: set[str] = set()  # reconciled by this process at the current generation
        self._since: dict[str, float] = {}
        self._problems: list[str] = []
        self._notes: list[str] = []
        self._queue: WorkQueue[str] = WorkQueue()
        self._frozen = False  # set when --once has decided: statuses stay as they were
        self._stopped = threading.Event()
        self._threads: list[threading.Thread] = []
        self._drift: DriftWatcher | None = None
        self._removals = concurrent.futures.ThreadPoolExecutor(
            REMOVE_WORKERS, thread_name_prefix="mlplatform-remove"
        )

    # --- desired state ----------------------------------------------------------------

    def load(self) -> DesiredState:
        """Read the manifests and queue what changed; returns what was read."""
        state = desired.load(self._paths)
        with self._lock:
            kept = desired.keep_last_valid(state, self._desired)
            for key in kept:
                log.warning(
                    "Kept the last valid version of %s while its manifest has problems", key
                )
            old = self._desired
            self._desired = dict(state.models)
            now = time.time()
            for key, model in state.models.items():
                self._removing.pop(key, None)
                before = old.get(key)
                if before is None or before.generation != model.generation:
                    self._since.setdefault(key, now)
                    self._given_up.discard(key)
                    self._fresh.discard(key)
                    self._queue.add(key)
            for key, model in old.items():
                if key not in state.models:
                    self._removing[key] = model
                    self._queue.add(key)
            problems_changed = state.problems != self._problems
            self._problems, self._notes = list(state.problems), list(state.notes)
            self._changed.notify_all()
        if problems_changed:
            for line in state.problems:
                log.error("Skipped an invalid manifest: %s", line)
        self._on_change()
        return state

    @property
    def problems(self) -> list[str]:
        with self._lock:
            return list(self._problems)

    @property
    def notes(self) -> list[str]:
        with self._lock:
            return list(self._notes)

    def rows(self) -> list[Row]:
        """The models as they stand, sorted by key (for the table and JSON)."""
        with self._lock:
            return [
                Row(model, self._status.get(key), self._since.get(key, time.time()))
                for key, model in sorted(self._desired.items())
            ]

    def keys(self) -> list[str]:
        with self._lock:
            return sorted(self._desired)

    # --- threads ----------------------------------------------------------------------

    def start(self, *, watch: bool) -> None:
        """Start the workers; with ``watch``, also the file, drift and resync watchers."""
        for index in range(self._workers):
            self._spawn(self._work, f"mlplatform-worker-{index}")
        if watch:
            self._spawn(self._watch_files, "mlplatform-files")
            self._spawn(self._resync_forever, "mlplatform-resync")
            self._drift = DriftWatcher(
                self._runner, self._on_drift, on_reconnect=self.resync
            ).start()

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def stop(self, timeout: float = 10.0) -> None:
        """End every thread; the models keep running (they are the desired state)."""
        self._stopped.set()
        self._queue.shutdown()
        self._removals.shutdown(wait=False, cancel_futures=True)
        if self._drift is not None:
            self._drift.stop()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    # --- workers ----------------------------------------------------------------------

    def _work(self) -> None:
        while not self._stopped.is_set():
            key = self._queue.get()
            if key is None:
                return
            with self._lock:
                model = self._desired.get(key)
                removal = (model is None and key in self._removing) or (
                    model is not None and model.workload.spec.suspend
                )
            if removal:
                # A removal (a manifest gone, or a model suspended) mostly waits out a grace
                # period: it runs in the removal pool, so removing many models costs about one
                # grace period, and the worker moves on.
                # The key stays "processing" (not handed out again) until it is done.
                try:
                    self._removals.submit(self._process_then_done, key)
                    continue
                except RuntimeError:  # the pool is shut down: the process is stopping
                    self._queue.done(key)
                    return
            self._process_then_done(key)

    def _process_then_done(self, key: str) -> None:
        try:
            self._process(key)
        except Exception:  # a worker must outlive any one model's surprise
            log.exception("Reconcile of %s failed unexpectedly; retrying", key)
            self._queue.add(key, ERROR_RETRY)
        finally:
            self._queue.done(key)

    def _process(self, key: str) -> None:
        with self._lock:
            model = self._desired.get(key)
            removing = self._removing.get(key)
            previous = self._status.get(key)
        if model is not None:
            self._converge(key, model, previous)
        elif removing is not None:
            self._remove(key, removing)

    def _converge(self, key: str, model: DesiredModel, previous: MLModelStatus | None) -> None:
        outcome = self._reconciler.reconcile(
            model.workload, generation=model.generation, previous=previous
        )
        for event in outcome.events:
            self._on_event(model, event)
        with self._lock:
            if key not in self._desired or self._frozen:
                return  # removed meanwhile (its removal is queued), or --once has decided
            self._status[key] = outcome.status
            if self._desired[key].generation == model.generation:
                self._fresh.add(key)
            if outcome.requeue_after is None and outcome.status.phase == Phase.FAILED:
                self._given_up.add(key)
            else:
                self._given_up.discard(key)
            self._changed.notify_all()
        if outcome.requeue_after is not None:
            self._queue.add(key, outcome.requeue_after)
        self._on_change()

    def _remove(self, key: str, model: DesiredModel) -> None:
        try:
            event = self._reconciler.delete(model.workload)
        except errors.RunnerError as error:
            log.warning("Could not remove %s yet (%s); retrying", key, error.message)
            self._queue.add(key, DELETE_RETRY)
            return
        if event is not None:
            self._on_event(model, event)
        with self._lock:
            if self._removing.get(key) is model:
                del self._removing[key]
                self._status.pop(key, None)
                self._since.pop(key, None)
                self._given_up.discard(key)
            self._changed.notify_all()
        log.info("Forgot %s: its manifest is gone", key)
        self._on_change()

    # --- watchers ---------------------------------------------------------------------

    def _watch_files(self) -> None:
        # inotify (watchfiles), on the folders that hold the given paths: a change is seen in
        # milliseconds and an idle watcher costs nothing. A batch is read once the files have
        # been quiet for QUIET_MS (a save in progress is not read half-written; a half-read
        # file would only be refused as invalid and read again on its next change).
        given = [path.resolve() for path in self._paths]
        roots = sorted({_existing_folder(path) for path in given})
        files = {path for path in given if not path.is_dir()}
        folders = [path for path in given if path.is_dir()]

        def relevant(_: watchfiles.Change, name: str) -> bool:
            path = Path(name)
            return path in files or (
                path.suffix in documents.MANIFEST_SUFFIXES
                and any(path.is_relative_to(folder) for folder in folders)
            )

        for _ in watchfiles.watch(
            *roots,
            watch_filter=relevant,
            step=QUIET_MS,
            debounce=1000,
            stop_event=self._stopped,
            rust_timeout=500,
            raise_interrupt=False,
        ):
            log.info("Manifests changed; reloading")
            self.load()

    def _on_drift(self, event: RunnerEvent) -> None:
        key = event.owner.key
        with self._lock:
            known = key in self._desired or key in self._removing
        if known:
            log.debug("Engine event %s on %s; reconciling", event.action, key)
            self._queue.add(key)

    def _resync_forever(self) -> None:
        self.collect_garbage()
        while not self._stopped.wait(self._resync):
            self.resync()

    def resync(self) -> None:
        """Queue the models whose container disagrees with their status; remove orphans.

        One listing of the engine, however many models: steady models are not reconciled
        (the event stream tells of changes; this is the safety net for missed ones).
        """
        with self._lock:
            by_uid = {m.workload.owner.uid: key for key, m in self._desired.items()}
            statuses = {m.workload.owner.uid: self._status.get(k) for k, m in self._desired.items()}
        try:
            result = self._reconciler.resync(self._runner, statuses, self._live_uids)
        except errors.RunnerError as error:
            log.warning(
                "Resync could not list the containers (%s); checking every model", error.message
            )
            for key in by_uid.values():
                self._queue.add(key)
            return
        for uid in result.stale:
            self._queue.add(by_uid[uid])
        self._log_removed(result.removed)

    def collect_garbage(self) -> None:
        """Remove this controller's containers whose model is not desired (by owner uid)."""
        try:
            removed = self._reconciler.collect_garbage(self._runner, self._live_uids)
        except errors.RunnerError as error:
            log.warning("Garbage collection skipped: %s", error.message)
            return
        self._log_removed(removed)

    def _live_uids(self) -> set[str]:
        with self._lock:
            models = [*self._desired.values(), *self._removing.values()]
        return {m.workload.owner.uid for m in models}

    @staticmethod
    def _log_removed(removed: Sequence[OwnedWorkload]) -> None:
        for owned in removed:
            log.info(
                "Removed container %s: model %s (%s) is no longer in the manifests",
                owned.workload_name,
                owned.owner.key,
                owned.model_id,
            )

    # --- --once -----------------------------------------------------------------------

    def progress(self) -> Progress:
        """Settled: every model is as desired or has failed for good (or twice in a row)."""
        with self._lock:
            settled, ok = True, True
            for key, model in self._desired.items():
                status = self._status.get(key)
                if status is None or key not in self._fresh:
                    settled = ok = False
                    continue
                if _as_desired(model, status):
                    continue
                ok = False
                failed = (status.phase == Phase.FAILED or status.updating) and (
                    key in self._given_up or status.consecutive_failures >= 2
                )
                if not failed:
                    settled = False
            return Progress(settled=settled and not self._removing, ok=ok)

    def wait_settled(self, timeout: float) -> Progress:
        """Block until ``progress`` is settled or ``timeout`` seconds have passed.

        The statuses are frozen at that moment, so what is reported afterwards is what the
        verdict was made on (a back-off timer may still fire a reconcile before ``stop``).
        """
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                progress = self.progress()
                left = deadline - time.monotonic()
                if progress.settled or left <= 0:
                    self._frozen = True
                    return progress
                self._changed.wait(min(left, 1.0))


def _as_desired(model: DesiredModel, status: MLModelStatus) -> bool:
    if model.workload.spec.suspend:
        return status.phase == Phase.STOPPED
    # An update in progress is not converged: the serving container runs the old spec.
    return status.phase == Phase.RUNNING and status.ready and not status.updating


def _log_event(model: DesiredModel, event: Event) -> None:
    level = logging.WARNING if event.type == "Warning" else logging.INFO
    log.log(level, "%s: %s: %s", model.key, event.reason, event.message)


def _existing_folder(path: Path) -> Path:
    """The folder to watch for ``path``: itself if a folder, else its nearest existing parent."""
    folder = path if path.is_dir() else path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder
