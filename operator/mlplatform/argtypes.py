"""Argument types for the command line: a bad value is a usage error (exit 2) up front."""

from __future__ import annotations

import argparse
import re
from pathlib import Path


def _int_at_least(text: str, least: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < least:
        raise argparse.ArgumentTypeError(f"must be at least {least}, got {value}")
    return value


def positive_int(text: str) -> int:
    """An integer >= 1 (``--workers``)."""
    return _int_at_least(text, 1)


def count(text: str) -> int:
    """An integer >= 0 (``logs --tail``: a number of lines)."""
    return _int_at_least(text, 0)


def port_or_zero(text: str) -> int:
    """A TCP port, or 0 for "off"."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(
            f"must be a port between 1 and 65535 (0: off), got {value}"
        )
    return value


def positive_seconds(text: str) -> float:
    """A number of seconds > 0 (``--timeout``, ``--resync``)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number of seconds above 0, got {text}")
    return value


def file_in_existing_folder(text: str) -> Path:
    """A file path whose folder exists (``--status-file``): nothing is created behind a typo."""
    path = Path(text)
    folder = path.expanduser().resolve().parent
    if not folder.is_dir():
        raise argparse.ArgumentTypeError(f"folder {str(folder)!r} does not exist")
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is a folder, not a file")
    return path


_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})


def boolean(text: str) -> bool:
    """A switch's environment variable: true/false (also 1/0, yes/no, on/off; empty: false)."""
    word = text.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise argparse.ArgumentTypeError(f"{text!r} is not true or false")


_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_NAMESPACE_GLOB = re.compile(r"[-a-z0-9*?\[\]]*[*?\[][-a-z0-9*?\[\]]*")


def namespace(text: str) -> str:
    """A Kubernetes namespace name (``--namespace``): a DNS-1123 label, or a glob pattern of
    one as kopf takes them (``team-*``)."""
    if len(text) > 63 or not (_DNS_LABEL.fullmatch(text) or _NAMESPACE_GLOB.fullmatch(text)):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a namespace name (at most 63 lower-case letters, digits and "
            "'-', starting and ending with a letter or digit) or a pattern of one (team-*)"
        )
    return text
