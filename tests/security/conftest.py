"""Prints the suite's figures at the end of the run (see tests/reliability/figures.py)."""

from __future__ import annotations

import pytest

from tests.reliability import figures


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    figures.summary(terminalreporter.write_line, terminalreporter.write_sep)
