"""What ``mlplatform local`` checks before it starts: said up front, not found at run time.

- a model with ``debug: true`` while ``RUNNERS_DOCKER_HOST_PORT_DEBUG`` is unset: its ports
  will not be published (a warning: the model still runs);
- a debug base port whose consecutive host ports would pass 65535 for a debug model: refused
  (the settings cannot work for that model);
- ``--once`` with an engine that does not answer: one retry after a short pause, then give up
  (instead of waiting the whole ``--timeout``);
- a model whose container mounts its storage (or ``/data``, ``/models``) from another host
  folder than these settings would: refused naming both folders, because converging would
  replace the container and move its storage (a run started from another directory with
  the default, relative ``STORAGE_DIR``, or with other settings).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from mlplatform import errors
from mlplatform.config import Settings
from mlplatform.local.desired import DesiredModel
from mlplatform.runners import docker_plan
from mlplatform.runners.base import OwnedWorkload, Runner

ENGINE_RETRY_PAUSE = 2.0
# The setting that places each kind of volume (docker_plan.mounts_for).
_FOLDER_SETTING = {
    docker_plan.DATA_VOLUME: "DATA_DIR",
    docker_plan.MODELS_VOLUME: "MLMODELS_DIR",
}
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


def storage_moves(
    models: Iterable[DesiredModel], owned: Iterable[OwnedWorkload], settings: Settings
) -> list[str]:
    """Refusals, one line each: a model whose container (of the same id) mounts a volume
    from another host folder than these settings give it."""
    by_owner: dict[tuple[str, str], list[OwnedWorkload]] = {}
    for found in owned:
        by_owner.setdefault((found.owner.uid, found.model_id), []).append(found)
    refusals: list[str] = []
    for model in models:
        workload = model.workload
        if workload.spec.runner != "docker":
            continue
        wanted = {m.target: str(m.source) for m in docker_plan.mounts_for(workload, settings)}
        for running in by_owner.get((workload.owner.uid, workload.spec.id), []):
            for target, source in running.mounts:
                if target in wanted and wanted[target] != source:
                    setting = _FOLDER_SETTING.get(target, "STORAGE_DIR")
                    refusals.append(
                        f"{model.key}: its container {running.workload_name} mounts {target} "
                        f"from {source}, but these settings ({setting}) would mount "
                        f"{wanted[target]}; refusing to move its storage: run with the "
                        f"settings it was started with, or remove it first (--down)"
                    )
    return refusals
