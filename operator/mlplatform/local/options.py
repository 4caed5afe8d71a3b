"""Command-line options of ``mlplatform local``."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "paths", nargs="+", type=Path, metavar="PATH", help="manifest files or folders"
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
        "--timeout", type=float, default=120.0, help="seconds --once waits to converge"
    )
    parser.add_argument(
        "--output",
        choices=["table", "json"],
        default="table",
        help="status on stdout: a table, or one JSON document per change",
    )
    parser.add_argument(
        "--status-file",
        type=Path,
        default=None,
        help="also keep the status as JSON in this file (read back at start-up)",
    )
    parser.add_argument(
        "--workers", type=int, default=8, help="models reconciled at the same time (default 8)"
    )
    parser.add_argument(
        "--resync",
        type=float,
        default=30.0,
        help="seconds between full resyncs and garbage collection (default 30)",
    )
