"""``mlplatform local PATH...``: MLModel manifests on disk as the desired state, no cluster.

The same validation, reconcile core and runner as the operator; the manifests play the part
of the API server (like the kubelet's static pods). Exit codes:

    0  watch mode stopped by SIGINT/SIGTERM (the models keep running); ``--once``: every
       model is Running (and Ready where it has a probe), or Stopped when suspended;
       ``--down``: every container of the manifests is gone
    1  ``--once``: a model failed or was not ready within ``--timeout``, a manifest is
       invalid, or the engine did not answer (after ``RUNNERS_DOCKER_TIMEOUT`` and one
       retry); ``--down``: a container could not be removed
    2  the settings, options or paths are invalid (a path that does not exist, ``-``, a
       folder with no model without ``--prune-empty``; debug ports that would pass 65535),
       or another ``mlplatform local`` manages the same manifests; nothing is changed
    130/143  interrupted by SIGINT/SIGTERM during ``--once`` or ``--down``
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import os
import shlex
import shutil
import signal
import sys
from pathlib import Path
from types import FrameType

from mlplatform import errors, logs
from mlplatform.core.controller import REMOVAL_WORKERS
from mlplatform.core.reconcile import Reconciler
from mlplatform.local import desired, ownership, preflight, writer_lock
from mlplatform.local.loop import LocalController
from mlplatform.local.options import LOCAL_CONTROLLER, LocalConfig
from mlplatform.local.report import Reporter, read_status_file
from mlplatform.runners import selection
from mlplatform.runners.base import OwnedWorkload, Runner

log = logging.getLogger(__name__)


def run(config: LocalConfig) -> int:
    """``config``: the settings and options, merged and checked by ``local.options.load``."""
    settings = config.settings
    logs.configure(settings.log_format)
    paths: list[Path] = list(config.paths)
    # Ownership: every check of the arguments comes before the first engine request.
    refusal = check_paths(paths, allow_empty=config.prune_empty or config.down)
    if refusal:
        print(f"mlplatform local: {refusal}", file=sys.stderr)
        return 2
    roots = ownership.Roots.of(paths)
    try:
        lock = writer_lock.acquire(roots)
    except writer_lock.Held as held:
        print(f"mlplatform local: {held}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"mlplatform local: cannot take the writer lock: {error}", file=sys.stderr)
        return 2
    try:
        return _run(config, paths, roots)
    finally:
        lock.release()


def check_paths(paths: list[Path], *, allow_empty: bool) -> str:
    """Why these manifest paths must not be run (nothing read from the engine), or ``""``.

    A run removes what its paths no longer declare, so a mistyped path must not read as
    "no models": a path that does not exist, ``-`` or a folder without any model is refused
    (the last unless the user asks for it with ``--prune-empty`` or ``--down``).
    """
    for path in paths:
        if str(path) == "-":
            return (
                'PATH "-": reading manifests from standard input is not supported; '
                "give files or folders"
            )
        if not path.exists():
            return f'PATH "{path}": does not exist'
        if not path.is_dir():
            continue
        found = desired.load([path])
        if not allow_empty and not found.models and not found.problems:
            return (
                f"{path} holds no MLModel: this would remove every model under {path}; "
                "pass --prune-empty to allow"
            )
    return ""


def _run(config: LocalConfig, paths: list[Path], roots: ownership.Roots) -> int:
    settings = config.settings
    runners = selection.Runners(settings)
    reconciler = Reconciler(runners)
    if not settings.runners_docker_enabled:
        log.warning(
            "The Docker runner is off (RUNNERS_DOCKER_ENABLED=false): models with runner "
            "docker will not start; unset the variable (local mode's default is true) or set "
            "it to true to run them"
        )
    if config.down:
        return down(paths, reconciler, roots, runners("docker"))

    reporter = Reporter(
        lambda: (controller.rows(), controller.problems, controller.notes),
        output=config.output,
        status_file=config.status_file,
        live=not config.once,
    )
    controller = LocalController(
        paths=paths,
        reconciler=reconciler,
        runner=runners("docker"),
        on_change=reporter.changed,
        previous=read_status_file(config.status_file),
        workers=config.workers,
        resync=config.resync,
        roots=roots,
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
    if config.once and settings.runners_docker_enabled:
        problem = preflight.engine_problem(runners("docker"))
        if problem is not None:
            log.error(
                "The Docker engine did not answer within RUNNERS_DOCKER_TIMEOUT=%gs and one "
                "retry (%s); giving up",
                settings.runners_docker_timeout,
                problem,
            )
            return 1
    if settings.runners_docker_enabled:
        try:
            owned = runners("docker").list_owned()
        except errors.RunnerError as error:
            owned = []  # the engine does not answer: the models will say so
            log.debug("Could not list the containers before starting: %s", error.message)
        moves = preflight.storage_moves(state.models.values(), owned, settings)
        for line in moves:
            log.error("%s", line)
        if moves:
            return 2
    if not state.models and not state.problems:
        # Only reached with --prune-empty (check_paths refuses it otherwise).
        log.warning(
            "No MLModel in %s: every model made from them is removed", " ".join(map(str, paths))
        )
    log.info(
        "Managing %d model(s) from %s as controller %s",
        len(state.models),
        " ".join(map(str, paths)),
        settings.controller,
    )
    if config.once:
        return once(controller, reporter, timeout=config.timeout)
    return watch(controller, reporter, down=down_command(config))


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
    # An invalid manifest fails --once even while its models keep their containers.
    return 0 if progress.ok and not controller.problems else 1


def watch(controller: LocalController, reporter: Reporter, *, down: str) -> int:
    """Keep converging until SIGINT or SIGTERM; the models keep running after. ``down``: the
    command that removes them, as the user may paste it."""
    signals = _StopSignals()
    controller.start(watch=True)
    log.info("Watching the manifests and the engine; Ctrl-C stops watching, models keep running")
    try:
        signals.wait()
    finally:
        log.info("Stopping; the models keep running (remove them with: %s)", down)
        controller.stop()
        signals.close()
    return 0


def down_command(config: LocalConfig) -> str:
    """The shell command that removes this run's models, as it runs when pasted anywhere:
    this very program (``mlplatform`` when that is the one on the PATH, else its full path,
    or ``python -m mlplatform``), the paths made absolute, and the variables that decide
    which containers it finds."""
    program = Path(sys.argv[0]).absolute() if sys.argv and sys.argv[0] else Path()
    on_path = shutil.which("mlplatform")
    if program.name != "mlplatform" or not program.is_file():
        command = [sys.executable, "-m", "mlplatform"]
    elif on_path is not None and Path(on_path).resolve() == program.resolve():
        command = ["mlplatform"]
    else:
        command = [str(program)]
    settings = config.settings
    variables = []
    if settings.controller != LOCAL_CONTROLLER:
        variables.append(f"MLPLATFORM_CONTROLLER={shlex.quote(settings.controller)}")
    if settings.docker_host:
        variables.append(f"DOCKER_HOST={shlex.quote(settings.docker_host)}")
    if not settings.runners_docker_enabled:
        variables.append("RUNNERS_DOCKER_ENABLED=true")
    paths = [str(Path(path).absolute()) for path in config.paths]
    return " ".join([*variables, shlex.join([*command, "local", *paths, "--down"])])


# Models removed at once by ``--down``: as many as the controller's removal pool (stops
# mostly wait out grace periods; bounded, so thousands do not open thousands of connections).
DOWN_CONCURRENCY = REMOVAL_WORKERS


def down(paths: list[Path], reconciler: Reconciler, roots: ownership.Roots, runner: Runner) -> int:
    """Remove every container made from these manifests (storage is kept).

    The valid models' containers, and every other container whose source lies under the
    paths (a renamed id, a deleted or invalid manifest). Removals run concurrently: N models
    cost about one grace period, not N.
    """
    state = desired.load(paths)
    for line in state.problems:
        log.error("Skipped an invalid manifest: %s", line)

    def remove(item: tuple[str, desired.DesiredModel]) -> bool:
        key, model = item
        try:
            event = reconciler.delete(model.workload)
        except errors.NeedsCluster:
            # A model of runner kubernetes: local mode never ran anything of it here.
            log.info("%s: nothing to remove here (runner %s)", key, model.workload.spec.runner)
            return True
        except errors.RunnerError as error:
            log.error("Could not remove %s: %s", key, error.message)
            return False
        log.info("%s: %s", key, event.message if event is not None else "no workload")
        return True

    def remove_other(owned: OwnedWorkload) -> bool:
        try:
            runner.remove_owned(owned)
        except errors.RunnerError as error:
            log.error("Could not remove %s: %s", owned.workload_name, error.message)
            return False
        log.info("%s: Removed workload %s", owned.owner.key, owned.workload_name)
        return True

    with concurrent.futures.ThreadPoolExecutor(DOWN_CONCURRENCY, thread_name_prefix="down") as pool:
        ok = all(list(pool.map(remove, sorted(state.models.items()))))
        try:
            others = [o for o in runner.list_owned() if roots.covers(o.source)]
        except errors.RunnerError as error:
            log.error(
                "Could not list the other containers of %s: %s",
                " ".join(map(str, paths)),
                error.message,
            )
            return 1
        ok = all(list(pool.map(remove_other, others))) and ok
    return 0 if ok else 1


class _StopSignals:
    """SIGINT and SIGTERM, waited for on a pipe until ``close`` puts the old handlers back.

    The handler only writes a byte to the pipe: it takes no lock. It used to set a
    ``threading.Event``, whose lock the main thread holds inside ``Event.wait`` and
    ``Event.set``: a second signal landing in the first one's handler (Ctrl-C twice, or once
    through a wrapper that forwards it, as ``timeout`` does) deadlocked the process, which
    then ignored every signal but SIGKILL.
    """

    def __init__(self) -> None:
        self._read, self._write = os.pipe()
        os.set_blocking(self._write, False)
        # The signal may be delivered to any thread, and Python runs its handler only in the
        # main thread, once that thread runs again: blocked in ``wait``'s read, it might
        # never. The interpreter's own low-level handler writes to the wakeup fd from
        # whichever thread took the signal, so the read returns at once.
        self._previous_wakeup = signal.set_wakeup_fd(self._write, warn_on_full_buffer=False)
        self._previous = {
            sig: signal.signal(sig, self._handle) for sig in (signal.SIGINT, signal.SIGTERM)
        }

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        with contextlib.suppress(BlockingIOError):  # the pipe is full: one byte is enough
            os.write(self._write, b"\0")

    def wait(self) -> None:
        """Until the first SIGINT or SIGTERM (at once if one came already)."""
        os.read(self._read, 1)

    def close(self) -> None:
        for sig, old in self._previous.items():
            signal.signal(sig, old)
        signal.set_wakeup_fd(self._previous_wakeup)
        os.close(self._read)
        os.close(self._write)
