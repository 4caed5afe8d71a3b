"""``mlplatform logs NAME``: a local model's output, like ``kubectl logs``.

Reads the engine only (the container's logs, found by the model's owner labels and this
controller), so it works from any terminal while a watcher holds the folder. ``--previous``
shows the last terminated container while the engine still holds it: a crashed container is
kept only until its restart replaces it (its last lines stay in the status,
``lastFailure.message``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from dataclasses import dataclass

from mlplatform import argtypes, errors, flags
from mlplatform.config import Settings
from mlplatform.local import desired
from mlplatform.local.options import load_settings
from mlplatform.runners import selection


@dataclass(frozen=True)
class LogsConfig:
    """What one ``mlplatform logs`` reads, read once and frozen."""

    settings: Settings
    name: tuple[str, ...] = flags.positional(
        "NAME", parse=str, help="the model's metadata.name (one model)"
    )
    namespace: str = flags.option(
        desired.DEFAULT_NAMESPACE,
        "--namespace",
        "-n",
        parse=argtypes.namespace,
        metavar="NAMESPACE",
        help="the model's metadata.namespace",
    )
    follow: bool = flags.switch("--follow", "-f", help="keep printing new output until Ctrl-C")
    tail: int | None = flags.option(
        None, "--tail", parse=argtypes.count, metavar="LINES", help="only the last LINES lines"
    )
    previous: bool = flags.switch(
        "--previous", "-p", help="the last terminated container, while the engine holds it"
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    flags.add_arguments(parser, LogsConfig)


def _check(values: Mapping[str, object]) -> list[str]:
    names = values.get("name")
    count = len(names) if isinstance(names, tuple) else 0
    if count != 1:
        return [f"NAME: give exactly one model name, got {count}"]
    return []


def load(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> LogsConfig:
    return flags.load(LogsConfig, args, environ, settings=load_settings, check=_check)


def run(config: LogsConfig) -> int:
    """Print the model's output on stdout; 1 when it has none here (said on stderr)."""
    runner = selection.runner_for("docker", config.settings)
    try:
        chunks = runner.logs(
            config.namespace,
            config.name[0],
            previous=config.previous,
            tail=config.tail,
            follow=config.follow,
        )
        out = sys.stdout.buffer
        for chunk in chunks:
            out.write(chunk)
            out.flush()
    except LookupError as missing:
        print(f"mlplatform logs: {missing.args[0]}", file=sys.stderr)
        return 1
    except errors.RunnerError as error:
        print(f"mlplatform logs: {error.message}", file=sys.stderr)
        return 1
    return 0
