"""What ``mlplatform local`` tells its user, and when: only when something changed.

- ``--output table`` (default): the ``kubectl get mlpm``-like table on stdout, re-printed when
  a cell other than AGE changes (watch mode), or once at the end (``--once``).
- ``--output wide`` (``--wide``): the same table with the whole status message.
- ``--output json``: one compact JSON document (an ``MLModelList`` whose items look like the
  API objects: ``metadata`` with name, namespace, generation and the source file as the
  ``mlplatform.dev/source`` annotation, ``spec``, ``status``; plus the manifest problems)
  per line on stdout, each time it changes.
- ``--status-file PATH``: the same JSON document, pretty-printed, replaced atomically on
  every change (any output mode). It is also read back at start-up, so a restarted process
  keeps its models' back-off and restart counts.

Logs (events such as ``Created container``, invalid manifests) go to stderr.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from mlplatform.local import table
from mlplatform.local.table import Row
from mlplatform.models.status import MLModelStatus

log = logging.getLogger(__name__)

Snapshot = Callable[[], tuple[list[Row], list[str], list[str]]]


class Reporter:
    """Prints the status when it changed; thread-safe (workers call ``changed``)."""

    def __init__(
        self,
        snapshot: Snapshot,
        *,
        output: str = "table",
        status_file: Path | None = None,
        live: bool = True,
        stream: TextIO | None = None,
    ) -> None:
        self._snapshot = snapshot
        self._output = output
        self._status_file = status_file
        self._live = live
        self._stream = stream or sys.stdout
        self._lock = threading.Lock()
        self._last_table: object = None
        self._last_json: str | None = None
        self._debug: dict[str, list[str]] = {}

    def changed(self) -> None:
        """Something may have changed: print and write what did."""
        rows, problems, notes = self._snapshot()
        with self._lock:
            self._announce_debug(rows)
            doc = table.document(rows, problems, notes)
            text = json.dumps(doc, sort_keys=True)
            if text != self._last_json:
                self._last_json = text
                self._write_status_file(doc)
                if self._live and self._output == "json":
                    self._print(text)
            fingerprint = (table.fingerprint(rows), tuple(problems))
            if self._live and self._output != "json" and fingerprint != self._last_table:
                self._last_table = fingerprint
                self._print(self._table(rows))

    def final(self) -> None:
        """Print the status once more, whatever changed (``--once``, and on exit)."""
        rows, problems, notes = self._snapshot()
        with self._lock:
            doc = table.document(rows, problems, notes)
            self._write_status_file(doc)
            if self._output == "json":
                self._print(json.dumps(doc, sort_keys=True))
            else:
                self._print(self._table(rows))

    def _table(self, rows: list[Row]) -> str:
        if not rows:
            return "No MLModels in the manifests."
        return table.render(rows, wide=self._output == "wide")

    def _announce_debug(self, rows: list[Row]) -> None:
        for row in rows:
            key = row.key
            endpoints = list(row.status.debug_endpoints) if row.status else []
            if endpoints and endpoints != self._debug.get(key):
                log.info("%s is published on this host at %s", key, " ".join(endpoints))
            self._debug[key] = endpoints

    def _print(self, text: str) -> None:
        print(text, file=self._stream, flush=True)
        if self._output != "json":
            print(file=self._stream, flush=True)

    def _write_status_file(self, doc: dict[str, Any]) -> None:
        if self._status_file is None:
            return
        path = self._status_file
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            temporary.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
            os.replace(temporary, path)
        except OSError as error:
            log.warning("Could not write the status file %s: %s", path, error)


def read_status_file(path: Path | None) -> dict[str, MLModelStatus]:
    """The statuses a previous run wrote (``namespace/name`` → status); empty if none."""
    if path is None or not path.is_file():
        return {}
    try:
        doc = json.loads(path.read_text())
        statuses = {}
        for item in doc.get("items", []):
            if item.get("status"):
                # Items are API-object shaped; files of older versions had the names on top.
                names = item.get("metadata", item)
                key = f"{names['namespace']}/{names['name']}"
                statuses[key] = MLModelStatus.model_validate(item["status"])
        return statuses
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        log.warning("Ignored the status file %s: %s", path, error)
        return {}
