"""Log lines on stderr for the front ends: plain text, or one JSON object per line.

``MLPLATFORM_LOG_FORMAT=json`` gives ``{"time", "level", "logger", "message"}`` objects (the
time in RFC 3339, UTC, to the millisecond), so a log shipper needs no parsing rules; ``text``
gives ``HH:MM:SS message`` lines for people.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import TextIO

from mlplatform.models import timestamps


class JsonFormatter(logging.Formatter):
    """One JSON object per record; the message is never split over lines."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": timestamps.rfc3339(record.created, digits=3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure(log_format: str, *, stream: TextIO | None = None, name: str = "mlplatform") -> None:
    """Send the ``name`` loggers' INFO and above to ``stream`` (stderr) in ``log_format``."""
    handler = logging.StreamHandler(stream or sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", datefmt="%H:%M:%S"))
    root = logging.getLogger(name)
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    root.propagate = False
