"""What ``mlplatform local`` checks before it starts: said up front, not found at run time.

- a model with ``debug: true`` while ``RUNNERS_DOCKER_HOST_PORT_DEBUG`` is unset: its ports
  will not be published (a warning: the model still runs);
- a debug base port whose consecutive host ports would pass 65535 for a debug model: refused
  (the settings cannot work for that model);
- ``--once`` with an engine that does not answer: one retry after a short pause, then give up
  (instead of waiting the whole ``--timeout``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from mlplatform import errors
from mlplatform.config import Settings
from mlplatform.local.desired import DesiredModel
from mlplatform.runners.base import Runner

ENGINE_RETRY_PAUSE = 2.0
MAX_PORT = 65535


def debug_checks(models: Iterable[DesiredModel], settings: Settings) -> tuple[list[str], list[str]]:
    """Warnings and refusals about debug ports, one line each."""
    warnings: list[str] = []
    refusals: list[str] = []
    base = settings.runners_docker_host_port_debug
    for model in models:
        spec = model.workload.spec
        if not spec.debug:
            continue
        if base is None:
            warnings.append(
                f"{model.key}: debug is true but RUNNERS_DOCKER_HOST_PORT_DEBUG is not set: "
                "its ports will not be published on this host"
            )
            continue
        last = base + len(spec.container.ports) - 1
        if last > MAX_PORT:
            refusals.append(
                f"{model.key}: debug ports {base}-{last} pass {MAX_PORT} "
                f"({len(spec.container.ports)} ports from RUNNERS_DOCKER_HOST_PORT_DEBUG={base}); "
                f"set it to at most {MAX_PORT - len(spec.container.ports) + 1}"
            )
    return warnings, refusals


def engine_problem(
    runner: Runner,
    *,
    pause: float = ENGINE_RETRY_PAUSE,
    sleep: Callable[[float], None] = time.sleep,
) -> str | None:
    """None when the engine answers; else why not, after one retry."""
    problem = None
    for attempt in range(2):
        try:
            runner.list_owned()
        except errors.RunnerUnavailable as error:
            problem = error.message
        else:
            return None
        if attempt == 0:
            sleep(pause)
    return problem
