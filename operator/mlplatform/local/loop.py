"""Local mode's front end: manifests on disk are the desired state, the report is the sink.

Lives as long as ``mlplatform local`` runs. ``LocalController`` is, for the one
``core.controller.Controller`` it starts:

- the desired-state source: ``load`` reads the manifests (``local.desired``), diffs them
  against what it holds and enqueues what changed — a new or changed model is converged, a
  removed one is deleted (retried until the runner removed it; nothing else waits on it);
- the status sink: each outcome's status is kept for the table, the JSON and the status
  file (``on_change`` tells the reporter), its events are logged;
- the owner of the one event source that is local: a file watcher (inotify, through
  watchfiles) that reloads when the manifests changed and then held still for a moment
  (a save in progress is not read half-written).

The controller brings the workers, the runner's event stream, the resync timer (one
listing of the engine every ``resync`` seconds, removing the workloads made from these
manifests whose model is no longer desired: ``in_scope`` says which are this run's) and the
retries. ``--once`` decides on ``progress``:
every model as desired, or failed for good; the statuses are frozen at that moment.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import watchfiles

from mlplatform import errors
from mlplatform.core.controller import Controller, Deleting, Desired, Found, Refused
from mlplatform.core.reconcile import Event, Outcome, Reconciler
from mlplatform.local import desired, held, ownership
from mlplatform.local.desired import DesiredModel, DesiredState
from mlplatform.local.table import Row
from mlplatform.models import documents
from mlplatform.models.status import MLModelStatus, Phase
from mlplatform.runners.base import OwnedWorkload, Runner

log = logging.getLogger(__name__)

# Milliseconds the manifests must be quiet before a batch of changes is read.
QUIET_MS = 10
# Seconds ``stop`` waits for the watchers and the steps in flight: no new engine write starts
# once it is called, so what is left is at most one engine request per worker, which the
# process does not wait out (its lock is released at once; the engine finishes the request).
STOP_TIMEOUT = 0.5


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
        on_event: Callable[[str, Event], None] | None = None,
        previous: dict[str, MLModelStatus] | None = None,
        workers: int = 8,
        resync: float = 30.0,
        roots: ownership.Roots | None = None,
    ) -> None:
        self._paths = list(paths)
        # The manifest files (modification time, size) as the last reading found them.
        self.files_read: dict[Path, tuple[int, int] | None] = {}
        # What this run may remove: workloads whose source is under its roots and whose
        # manifest is not held by being invalid (see ``in_scope``).
        self._roots = roots or ownership.Roots.of(self._paths)
        self._held_files: frozenset[str] = frozenset()
        # Models a refused manifest holds: known by spec (kept in memory, key → file) or
        # only by workload (after a restart); with each refused file's first problem.
        self._kept: dict[str, str] = {}
        self._held: list[OwnedWorkload] = []
        self._refused: dict[str, str] = {}
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
        self._frozen = False  # set when --once has decided: statuses stay as they were
        self._stopping = False  # set by ``stop``: outcomes are no longer told nor kept
        self._controller: Controller | None = None

    # --- desired state ----------------------------------------------------------------

    def load(self) -> DesiredState:
        """Read the manifests and enqueue what changed; returns what was read."""
        # Who already runs decides contested ids and keys; an invalid file holds the
        # workloads it made.
        self.files_read = _files(self._paths)  # before: a change during the read shows
        state = desired.load(self._paths, running=self._running())
        changed: list[str] = []
        with self._lock:
            now = time.time()
            kept = desired.keep_last_valid(state, self._desired)
            for key in kept:
                log.warning(
                    "Kept the last valid version of %s while its manifest has problems", key
                )
            state.problems.extend(desired.holding_lines(state, kept))
            self._held_files = frozenset(state.failed_files)
            self._kept = {key: state.models[key].workload.source or "" for key in kept}
            self._held = list(state.held)
            self._refused = dict(state.refused)
            for owned in self._held:
                self._since.setdefault(owned.owner.key, now)
            old = self._desired
            self._desired = dict(state.models)
            for key, model in state.models.items():
                self._removing.pop(key, None)
                before = old.get(key)
                # Not only a new generation: a manifest moved to another file re-labels its
                # workload with the new source.
                if before is None or before.workload != model.workload:
                    self._since.setdefault(key, now)
                    self._given_up.discard(key)
                    self._fresh.discard(key)
                    changed.append(key)
            for key, model in old.items():
                if key not in state.models:
                    self._removing[key] = model
                    changed.append(key)
            problems_changed = state.problems != self._problems
            self._problems, self._notes = list(state.problems), list(state.notes)
            self._changed.notify_all()
        if self._controller is not None:  # before ``start``, every key is queued at start
            for key in changed:
                self._controller.enqueue(key)
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
        """The models as they stand, sorted by key (for the table and JSON); a model held by
        a refused manifest is shown as such (``held``)."""
        with self._lock:
            now = time.time()
            rows = []
            for key, model in self._desired.items():
                status = self._status.get(key)
                file = self._kept.get(key)
                if status is not None and file is not None:
                    status = held.restate(status, file, self._refused.get(file, "invalid"))
                rows.append(Row(model, status, self._since.get(key, now)))
            for owned in self._held:
                key = owned.owner.key
                if key in self._desired:
                    continue
                status = held.observed(
                    owned,
                    self._refused.get(owned.source or "", "invalid"),
                    runner=self._runner.type,
                    previous=self._status.get(key),
                )
                rows.append(Row(None, status, self._since.get(key, now), held=owned))
            return sorted(rows, key=lambda row: row.key)

    def keys(self) -> list[str]:
        with self._lock:
            return sorted(self._desired)

    # --- the controller's desired-state source ------------------------------------------

    def get(self, key: str) -> Found | None:
        with self._lock:
            model = self._desired.get(key)
            if model is not None:
                return Desired(model.workload, model.generation, self._status.get(key))
            removing = self._removing.get(key)
            if removing is not None:
                # Nothing waits on a local removal: retried until the runner has done it.
                return Deleting(removing.workload.owner, removing.workload, timeout=None)
        return None

    def list_keys(self) -> list[str]:
        with self._lock:
            return [*self._desired, *self._removing]

    def live_uids(self) -> set[str]:
        with self._lock:
            models = [*self._desired.values(), *self._removing.values()]
        return {m.workload.owner.uid for m in models}

    def in_scope(self, owned: OwnedWorkload) -> bool:
        """A workload this run may check and remove: made from a manifest under its paths
        (``ownership.may_prune``), and not from one that is invalid now (it holds them)."""
        with self._lock:
            held = self._held_files
        return ownership.may_prune(owned, self._roots, held)

    def _running(self) -> list[OwnedWorkload]:
        """This run's workloads in the engine (none when it cannot be asked)."""
        try:
            return [o for o in self._runner.list_owned() if self._roots.covers(o.source)]
        except errors.RunnerError as error:
            log.warning("Could not list the containers (%s); file order decides", error.message)
            return []

    # --- the controller's status sink -------------------------------------------------------

    def write(self, key: str, found: Desired | Refused, outcome: Outcome) -> None:
        with self._lock:
            if self._stopping:
                return  # a step cut short by the stop: its outcome is not what runs
        for event in outcome.events:
            self._on_event(key, event)
        with self._lock:
            model = self._desired.get(key)
            if model is None or self._frozen:
                return  # removed meanwhile (its removal is queued), or --once has decided
            self._status[key] = outcome.status
            if model.generation == found.generation:
                self._fresh.add(key)
            if outcome.requeue_after is None and outcome.status.phase == Phase.FAILED:
                self._given_up.add(key)
            else:
                self._given_up.discard(key)
            self._changed.notify_all()
        self._on_change()

    def released(self, key: str, found: Deleting, events: Sequence[Event]) -> None:
        with self._lock:
            if self._stopping:
                return
        for event in events:
            self._on_event(key, event)
        with self._lock:
            forgotten = key not in self._desired and self._removing.pop(key, None) is not None
            if forgotten:
                self._status.pop(key, None)
                self._since.pop(key, None)
                self._given_up.discard(key)
            self._changed.notify_all()
        if forgotten:
            log.info("Forgot %s: its manifest is gone", key)
        self._on_change()

    # --- running ------------------------------------------------------------------------

    def start(self, *, watch: bool) -> None:
        """Start the controller's workers; with ``watch``, also the file watcher, the
        runner's event stream and the resync timer."""
        self._controller = Controller(
            reconciler=self._reconciler,
            runner=self._runner,
            source=self,
            sink=self,
            workers=self._workers,
            resync_interval=self._resync if watch else None,
            watch_runner=watch,
            sources=[_ManifestWatcher(self._paths, self.load, self.files_read)] if watch else [],
        )
        self._controller.enqueue_all()
        self._controller.start()

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Stop watching and converging, within ``timeout``; the models keep running (they
        are the desired state).

        No engine write starts once this is called: the runner refuses them
        (``stop_writes``), so a step in flight ends at its next write, as if the process
        had been killed there (every step is read back from the engine, so the next run
        finishes it). What such a step reports is not told, and its status not kept.
        """
        with self._lock:
            self._stopping = True
        self._runner.stop_writes()
        if self._controller is not None:
            self._controller.stop(timeout)

    def collect_garbage(self) -> None:
        """Remove this controller's containers whose model is not desired (by owner uid)."""
        try:
            removed = self._reconciler.collect_garbage(
                self._runner, self.live_uids, scope=self.in_scope
            )
        except errors.RunnerError as error:
            log.warning("Garbage collection skipped: %s", error.message)
            return
        self._log_removed(removed)

    @staticmethod
    def _log_removed(removed: Sequence[OwnedWorkload]) -> None:
        for owned in removed:
            log.info(
                "Removed the workload of %s (model %s): it is no longer in the manifests",
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
                # An update that failed twice has failed (the old revision keeps serving).
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


def _log_event(key: str, event: Event) -> None:
    level = logging.WARNING if event.type == "Warning" else logging.INFO
    log.log(level, "%s: %s: %s", key, event.reason, event.message)


class _ManifestWatcher:
    """Reloads the manifests when they changed (an event source of the controller).

    inotify (watchfiles), on the folders that hold the given paths: a change is seen in
    milliseconds and an idle watcher costs nothing. A batch is read once the files have
    been quiet for QUIET_MS (a save in progress is not read half-written; a half-read file
    would only be refused as invalid and read again on its next change). Once the watch is
    set (within half a second), "Watching the manifests for changes" is logged and the
    manifests are read once more if a file changed since the first reading: an edit made
    during start-up is not lost.
    """

    def __init__(
        self,
        paths: Sequence[Path],
        reload: Callable[[], object],
        read: dict[Path, tuple[int, int] | None],
    ) -> None:
        self._paths = list(paths)
        self._reload = reload
        self._read = read  # the manifest files as the last reading found them
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mlplatform-files", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(5.0)

    def _run(self) -> None:
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

        armed = False
        for changes in watchfiles.watch(
            *roots,
            watch_filter=relevant,
            step=QUIET_MS,
            debounce=1000,
            stop_event=self._stopped,
            rust_timeout=500,
            yield_on_timeout=True,  # the first answer, a change or not, says the watch is set
            raise_interrupt=False,
        ):
            if not armed:
                armed = True
                log.info("Watching the manifests for changes")
                # The manifests were read before the watch was set: a change made in between
                # was seen by neither, so they are read once more if any file differs.
                if changes or _files(self._paths) != self._read:
                    self._reload()
                continue
            if changes:
                log.info("Manifests changed; reloading")
                self._reload()


def _files(paths: Sequence[Path]) -> dict[Path, tuple[int, int] | None]:
    """Each manifest file under ``paths`` with its modification time and size (None: gone)."""
    found: dict[Path, tuple[int, int] | None] = {}
    for path in documents.manifest_files(list(paths)):
        try:
            stat = path.stat()
        except OSError:
            found[path] = None
        else:
            found[path] = (stat.st_mtime_ns, stat.st_size)
    return found


def _existing_folder(path: Path) -> Path:
    """The folder to watch for ``path``: itself if a folder, else its nearest existing parent."""
    folder = path if path.is_dir() else path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder
