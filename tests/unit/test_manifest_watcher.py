"""The local file watcher's start: an edit between the first reading and the watch is read."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from mlplatform.local.loop import _files, _ManifestWatcher

MANIFEST = "apiVersion: mlplatform.dev/v1alpha1\nkind: MLModel\n"


class _Set(logging.Handler):
    """Notes the moment the watcher says its watch is set."""

    def __init__(self) -> None:
        super().__init__()
        self.event = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage() == "Watching the manifests for changes":
            self.event.set()


def _watched(folder: Path, read: dict[Path, tuple[int, int] | None]) -> list[str]:
    """The watcher's reloads from its start until its watch is set (stopped then: a reload
    it decided on has finished when ``stop`` returns)."""
    reloads: list[str] = []
    watch_set = _Set()
    logger = logging.getLogger("mlplatform.local.loop")
    logger.addHandler(watch_set)
    level = logger.level
    logger.setLevel(logging.INFO)
    watcher = _ManifestWatcher([folder], lambda: reloads.append("reload"), read)
    watcher.start()
    try:
        assert watch_set.event.wait(10), "the watch was never set"
    finally:
        watcher.stop()
        logger.removeHandler(watch_set)
        logger.setLevel(level)
    return reloads


def test_an_edit_made_after_the_first_reading_is_read_once_the_watch_is_set(
    tmp_path: Path,
) -> None:
    path = tmp_path / "a.yaml"
    path.write_text(MANIFEST)
    read = _files([tmp_path])
    path.write_text(MANIFEST + "metadata: {name: a}\n")  # before the watch exists
    assert _watched(tmp_path, read) == ["reload"]


def test_with_nothing_changed_since_the_reading_the_start_reads_nothing_again(
    tmp_path: Path,
) -> None:
    (tmp_path / "a.yaml").write_text(MANIFEST)
    assert _watched(tmp_path, _files([tmp_path])) == []


def test_a_file_added_after_the_reading_is_a_change(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(MANIFEST)
    read = _files([tmp_path])
    (tmp_path / "b.yaml").write_text(MANIFEST)
    assert _watched(tmp_path, read) == ["reload"]
