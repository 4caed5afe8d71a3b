"""Command-line options of ``mlplatform local``."""

from __future__ import annotations

import argparse
from pathlib import Path

from mlplatform import argtypes


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "paths",
        nargs="+",
        type=Path,
        metavar="PATH",
        help="manifest file or folder (folders are read recursively, hidden ones skipped)",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--once", action="store_true", help="converge, print the status table, exit")
    mode.add_argument(
        "--down", action="store_true", help="remove every container of the given manifests"
    )
    parser.add_argument(
        "--prune-empty",
        action="store_true",
        help="allow a folder with no models: remove every model this run made from it",
    )
    parser.add_argument(
        "--timeout",
        type=argtypes.positive_seconds,
        default=120.0,
        metavar="SECONDS",
        help="how long --once waits for every model to converge",
    )
    parser.add_argument(
        "--output",
        "-o",
        choices=["table", "wide", "json"],
        default="table",
        help="status on stdout: a table, a wide table (whole messages), or JSON",
    )
    parser.add_argument(
        "--wide",
        action="store_const",
        const="wide",
        dest="output",
        help="same as --output wide",
    )
    parser.add_argument(
        "--status-file",
        type=argtypes.file_in_existing_folder,
        default=None,
        metavar="FILE",
        help="also keep the status as JSON in this file (read back at start-up; "
        "its folder must exist)",
    )
    parser.add_argument(
        "--workers",
        type=argtypes.positive_int,
        default=8,
        metavar="N",
        help="models reconciled at the same time",
    )
    parser.add_argument(
        "--resync",
        type=argtypes.positive_seconds,
        default=30.0,
        metavar="SECONDS",
        help="time between full resyncs and garbage collection",
    )
