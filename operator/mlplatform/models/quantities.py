"""Kubernetes resource quantities as the Docker runner needs them (CPU in nano-CPUs, bytes)."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from mlplatform.models import rules

MEMORY_SUFFIXES = {
    "": 1,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
}
# Larger than any machine: the spec refuses absurd values before Docker sees them.
MAX_BYTES = 2**50
MAX_CPUS = 1024


def parse_cpu(value: str | int) -> int | None:
    """CPU quantity → nano-CPUs (``"250m"`` → 250_000_000); None when not a quantity."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        nano = value * 10**9
    elif re.fullmatch(rules.CPU_PATTERN.strip("^$"), value):
        nano = int(value[:-1]) * 10**6 if value.endswith("m") else int(Decimal(value) * 10**9)
    else:
        return None
    return nano


def parse_memory(value: str | int) -> int | None:
    """Memory quantity → bytes (``"512Mi"`` → 536870912); None when not a quantity."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        size = value
    else:
        match = re.fullmatch(rules.MEMORY_PATTERN.strip("^$"), value)
        if match is None:
            return None
        number, suffix = value[: len(value) - len(match.group(2) or "")], match.group(2) or ""
        try:
            size = int(Decimal(number) * MEMORY_SUFFIXES[suffix])
        except InvalidOperation:
            return None
    return size
