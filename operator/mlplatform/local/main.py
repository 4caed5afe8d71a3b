"""``mlplatform local PATH...``: MLModel manifests on disk as the desired state, no cluster.

The same validation, reconcile core and runner as the operator; the manifests play the part
of the API server (like the kubelet's static pods). Exit codes:

    0  watch mode stopped by SIGINT/SIGTERM (the models keep running); ``--once``: every
       model is Running (and Ready where it has a probe), or Stopped when suspended;
       ``--down``: every container of the manifests is gone
    1  ``--once``: a model failed or was not ready within ``--timeout``, a manifest is
       invalid, or the engine did not answer (after ``RUNNERS_DOCKER_TIMEOUT`` and one
       retry); ``--down``: a container could not be removed
    2  the settings or options are invalid (also: debug ports that would pass 65535), or
       no manifest was found at all
    130/143  interrupted by SIGINT/SIGTERM during ``--once`` or ``--down``
"""

from __future__ import annotations

import argparse
import concurrent.futures
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from mlplatform import errors, logs
from mlplatform.config import Settings
from mlplatform.core.controller import REMOVAL_WORKERS
from mlplatform.core.reconcile import Reconciler
from mlplatform.local import desired, preflight
from mlplatform.local.loop import LocalController
from mlplatform.local.report import Reporter, read_status_file
from mlplatform.runners import select

log = logging.getLogger(__name__)

LOCAL_CONTROLLER = "local"


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    """The settings, with controller ``local`` unless MLPLATFORM_CONTROLLER names another.

    Containers are labelled with the controller, so local mode and an operator sharing an
    engine never garbage-collect each other's models.
    """
    env = dict(os.environ if environ is None else environ)
    overrides: dict[str, object] = {}
    if "MLPLATFORM_CONTROLLER" not in {key.upper() for key in env}:
        overrides["controller"] = LOCAL_CONTROLLER
    return Settings.load(env, **overrides)


def _configure_logging(settings: Settings) -> None:
    logs.configure(settings.log_format)


def run(args: argparse.Namespace) -> int:
    try:
        settings = load_settings()
    except errors.ConfigurationError as error:
        print(f"mlplatform local: {error}", file=sys.stderr)
        return 2
    _configure_logging(settings)
    paths: list[Path] = list(args.paths)
    runners = select.Runners(settings)
    reconciler = Reconciler(runners)
    if not settings.runners_docker_enabled:
        log.warning("RUNNERS_DOCKER_ENABLED is not true: models with runner docker will not start")
    if args.down:
        return down(paths, reconciler)

    reporter = Reporter(
        lambda: (controller.rows(), controller.problems, controller.notes),
        output=args.output,
        status_file=args.status_file,
        live=not args.once,
    )
    controller = LocalController(
        paths=paths,
        reconciler=reconciler,
        runner=runners("docker"),
        on_change=reporter.changed,
        previous=read_status_file(args.status_file),
        workers=args.workers,
        resync=args.resync,
    )
    state = controller.load()
    for note in state.notes:
        log.info("Ignored %s", note)
    warnings, refusals = preflight.debug_checks(state.models.values(), settings)
    for line in warnings:
        log.warning("%s", line)
    for line in refusals:
        log.error("%s", line)
    if refusals:
        return 2
    if args.once and settings.runners_docker_enabled:
        problem = preflight.engine_problem(runners("docker"))
        if problem is not None:
            log.error(
                "The Docker engine did not answer within RUNNERS_DOCKER_TIMEOUT=%gs and one "
                "retry (%s); giving up",
                settings.runners_docker_timeout,
                problem,
            )
            return 1
    if not state.models and not state.problems:
        log.error("No MLModel manifests found in %s", " ".join(map(str, paths)))
        if args.once:
            return 2
    log.info(
        "Managing %d model(s) from %s as controller %s",
        len(state.models),
        " ".join(map(str, paths)),
        settings.controller,
    )
    if args.once:
        return once(controller, reporter, timeout=args.timeout)
    return watch(controller, reporter)


def once(controller: LocalController, reporter: Reporter, *, timeout: float) -> int:
    """Converge, print the status, exit: 0 when every model is as desired."""
    controller.collect_garbage()
    controller.start(watch=False)
    try:
        progress = controller.wait_settled(timeout)
    finally:
        controller.stop()
    reporter.final()
    if not progress.settled:
        log.error("Not every model converged within %.0fs", timeout)
    return 0 if progress.ok and not controller.problems else 1


def watch(controller: LocalController, reporter: Reporter) -> int:
    """Keep converging until SIGINT or SIGTERM; the models keep running after."""
    stop = threading.Event()
    restore = _on_signals(stop.set)
    controller.start(watch=True)
    log.info("Watching the manifests and the engine; Ctrl-C stops watching, models keep running")
    try:
        while not stop.wait(1.0):
            pass
    finally:
        log.info("Stopping; the models keep running (mlplatform local --down removes them)")
        controller.stop()
        restore()
    return 0


# Models removed at once by ``--down``: as many as the controller's removal pool (stops
# mostly wait out grace periods; bounded, so thousands do not open thousands of connections).
DOWN_CONCURRENCY = REMOVAL_WORKERS


def down(paths: list[Path], reconciler: Reconciler) -> int:
    """Remove every container of the valid models in the manifests (storage is kept).

    The models are removed concurrently: N models cost about one grace period, not N.
    """
    state = desired.load(paths)
    for line in state.problems:
        log.error("Skipped an invalid manifest: %s", line)
    models = sorted(state.models.items())

    def remove(item: tuple[str, desired.DesiredModel]) -> bool:
        key, model = item
        try:
            event = reconciler.delete(model.workload)
        except errors.RunnerError as error:
            log.error("Could not remove %s: %s", key, error.message)
            return False
        log.info("%s: %s", key, event.message if event is not None else "no container")
        return True

    failed = False
    if models:
        workers = min(DOWN_CONCURRENCY, len(models))
        with concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="down") as pool:
            failed = not all(pool.map(remove, models))
    if not state.models and not state.problems:
        log.error("No MLModel manifests found in %s", " ".join(map(str, paths)))
        return 2
    return 1 if failed else 0


def _on_signals(handler: Callable[[], None]) -> Callable[[], None]:
    """Call ``handler`` on SIGINT and SIGTERM; returns what puts the old handlers back."""

    def _handle(signum: int, frame: FrameType | None) -> None:
        handler()

    previous = {sig: signal.signal(sig, _handle) for sig in (signal.SIGINT, signal.SIGTERM)}

    def restore() -> None:
        for sig, old in previous.items():
            signal.signal(sig, old)

    return restore
