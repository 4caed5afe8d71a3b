"""The suite's figures: what was tried and survived, printed at the end of the pytest run.

Tests call ``record("hostile manifests tried", 112)`` (or ``add`` to count up); the
``pytest_terminal_summary`` hooks of ``tests/security`` and ``tests/reliability`` print the
table once, and write it as JSON to ``$MLPLATFORM_FIGURES`` when that is set (CI keeps it).
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

_lock = threading.Lock()
_figures: dict[str, Any] = {}
_printed = False


def record(name: str, value: Any) -> None:
    """Set one figure (the last value wins)."""
    with _lock:
        _figures[name] = value


def add(name: str, amount: int = 1) -> None:
    """Count up one figure."""
    with _lock:
        _figures[name] = int(_figures.get(name, 0)) + amount


def peak(name: str, value: float) -> None:
    """Keep the largest value seen for one figure."""
    with _lock:
        _figures[name] = max(float(_figures.get(name, value)), value)


def snapshot() -> dict[str, Any]:
    with _lock:
        return dict(sorted(_figures.items()))


def summary(write_line: Any, write_sep: Any) -> None:
    """Print the figures once per run (both suites' hooks call this)."""
    global _printed  # noqa: PLW0603 - one table per process, whichever hook runs first
    figures = snapshot()
    if _printed or not figures:
        return
    _printed = True
    write_sep("=", "mlplatform reliability and security figures")
    width = max(map(len, figures))
    for name, value in figures.items():
        shown = f"{value:.2f}" if isinstance(value, float) else str(value)
        write_line(f"{name.ljust(width)}  {shown}")
    target = os.environ.get("MLPLATFORM_FIGURES")
    if target:
        Path(target).write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
