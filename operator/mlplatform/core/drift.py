"""One watcher of the runner's event stream for the whole process, feeding drift repair.

An event source of the controller: it runs in a thread, calls ``on_event`` for every event
about a managed workload (the controller queues its owner's key), and reconnects with the
controller's back-off when the engine goes away — calling ``on_reconnect`` once it is back,
so that a resync finds what it may have missed. ``stop`` ends it from any thread.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from mlplatform import errors
from mlplatform.core.backoff import RETRY, BackoffPolicy
from mlplatform.runners.base import EventStream, Runner, RunnerEvent

log = logging.getLogger(__name__)


class DriftWatcher:
    def __init__(
        self,
        runner: Runner,
        on_event: Callable[[RunnerEvent], None],
        *,
        on_reconnect: Callable[[], None] | None = None,
        retry: BackoffPolicy = RETRY,
    ) -> None:
        self._runner = runner
        self._on_event = on_event
        self._on_reconnect = on_reconnect
        self._retry = retry
        self._stopped = threading.Event()
        self._stream: EventStream | None = None
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="mlplatform-drift", daemon=True)

    def start(self) -> DriftWatcher:
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stopped.set()
        with self._lock:
            stream = self._stream
        if stream is not None:
            stream.close()
        self._thread.join(timeout)

    def _run(self) -> None:
        failures = 0
        while not self._stopped.is_set():
            try:
                stream = self._runner.events()
            except errors.RunnerError as error:
                failures += 1
                if isinstance(error, errors.NotPermitted) and failures == 1:
                    log.warning("Cannot watch the runner's workloads: %s", error)
                else:
                    log.debug("Event stream unavailable: %s", error)
                self._stopped.wait(self._retry.retry(failures))
                continue
            with self._lock:
                self._stream = stream
            if self._stopped.is_set():
                stream.close()
                return
            if failures and self._on_reconnect is not None:
                log.info("Reconnected to the runner's event stream after %d failure(s)", failures)
                self._on_reconnect()
            failures = 0
            try:
                for event in stream:
                    self._on_event(event)
            except errors.RunnerError as error:
                log.info("Lost the runner's event stream: %s", error)
            finally:
                stream.close()
                with self._lock:
                    self._stream = None
            if not self._stopped.is_set():
                failures += 1
                self._stopped.wait(self._retry.retry(failures))
