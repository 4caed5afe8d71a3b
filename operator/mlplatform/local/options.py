"""What ``mlplatform local`` runs with: its options, declared once, and the settings.

The tunables it shares with the operator have the operator's variables
(``MLPLATFORM_WORKERS``, ``MLPLATFORM_RESYNC_INTERVAL``); what one invocation does (its
paths, ``--once``/``--down``, ``--prune-empty``, ``--timeout``, the output) is said on the
command line only (docs/design.md, "Settings").
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from mlplatform import argtypes, config, flags
from mlplatform.config import Settings

# Local mode's controller label unless MLPLATFORM_CONTROLLER names another: containers are
# labelled with it, so local mode and an operator sharing an engine never garbage-collect
# each other's models.
LOCAL_CONTROLLER = "local"


@dataclass(frozen=True)
class LocalConfig:
    """Everything one ``mlplatform local`` process runs with, read once and frozen."""

    settings: Settings
    paths: tuple[Path, ...] = flags.positional(
        "PATH",
        parse=Path,
        help="manifest file or folder (folders are read recursively, hidden ones skipped)",
    )
    once: bool = flags.switch("--once", group="mode", help="converge, print the status table, exit")
    down: bool = flags.switch(
        "--down", group="mode", help="remove every container of the given manifests"
    )
    prune_empty: bool = flags.switch(
        "--prune-empty",
        help="allow a folder with no models: remove every model this run made from it",
    )
    timeout: float = flags.option(
        120.0,
        "--timeout",
        parse=argtypes.positive_seconds,
        metavar="SECONDS",
        help="how long --once waits for every model to converge",
    )
    output: str = flags.option(
        "table",
        "--output",
        "-o",
        choices=("table", "wide", "json"),
        help="status on stdout: a table, a wide table (whole messages), or JSON",
        also=(flags.ConstFlag("--wide", "wide", "same as --output wide"),),
    )
    status_file: Path | None = flags.option(
        None,
        "--status-file",
        parse=argtypes.file_in_existing_folder,
        metavar="FILE",
        help="also keep the status as JSON in this file (read back at start-up; "
        "its folder must exist)",
    )
    workers: int = flags.workers()
    resync: float = flags.option(
        30.0,
        "--resync",
        parse=argtypes.positive_seconds,
        env="MLPLATFORM_RESYNC_INTERVAL",
        metavar="SECONDS",
        help="time between full resyncs and garbage collection",
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``mlplatform local``."""
    flags.add_arguments(parser, LocalConfig)


def environment_help() -> str:
    """The variables ``mlplatform local --help`` lists: not the Kubernetes runner's (local
    mode runs runner docker only), and local mode's own defaults (controller label, the
    Docker runner on)."""
    return config.environment_help(
        omit=("RUNNERS_KUBERNETES_",),
        defaults={"MLPLATFORM_CONTROLLER": LOCAL_CONTROLLER, "RUNNERS_DOCKER_ENABLED": "true"},
    )


def load_settings(environ: Mapping[str, str]) -> Settings:
    """The settings, with local mode's defaults where no variable (nor ``.env`` in
    development) says otherwise: controller ``local``, and the Docker runner on — it is the
    only engine local mode has (the operator keeps the original service's default, off)."""
    overrides: dict[str, object] = {}
    given = {key.upper() for key in config.read_environment(environ)}
    if "MLPLATFORM_CONTROLLER" not in {key.upper() for key in environ}:
        overrides["controller"] = LOCAL_CONTROLLER
    if "RUNNERS_DOCKER_ENABLED" not in given:
        overrides["runners_docker_enabled"] = True
    return Settings.load(environ, **overrides)


def load(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> LocalConfig:
    """The settings and the options, merged once (``environ``: None for the process's)."""
    return flags.load(LocalConfig, args, environ, settings=load_settings)
