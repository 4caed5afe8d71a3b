"""One writer per manifest: a second ``mlplatform local`` on overlapping paths refuses to start.

Each running ``mlplatform local`` holds an exclusive ``flock`` on its own file in
``<STORAGE_DIR>/.locks/local-<controller>/`` and writes its PID and roots into it. A run
that starts reads the others: one whose lock is still held and whose roots overlap its own
is the running writer, and it refuses naming its PID; a file whose lock can be taken
belongs to a process that is gone (the kernel drops a ``flock`` when its holder dies, even
by SIGKILL), and it is removed. The scan and the new lock file are made under a second
lock on the folder, so two runs started at the same moment cannot both pass.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from mlplatform.local.ownership import Roots


class Held(Exception):
    """Another live ``mlplatform local`` manages overlapping paths."""

    def __init__(self, pid: int | None, roots: list[str]) -> None:
        self.pid = pid
        self.roots = roots
        who = f"PID {pid}" if pid is not None else "another process"
        super().__init__(
            f"another mlplatform local ({who}) already manages {', '.join(roots)}; "
            "stop it first (one writer per manifest)"
        )


@dataclass
class WriterLock:
    """A held writer lock; ``release`` (or process exit) lets the next run start."""

    path: Path
    handle: IO[str]

    def release(self) -> None:
        with contextlib.suppress(OSError):
            self.path.unlink()
        self.handle.close()


def folder_for(storage_dir: Path, controller: str) -> Path:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in controller)
    return storage_dir.resolve() / ".locks" / f"local-{safe}"


def acquire(folder: Path, roots: Roots) -> WriterLock:
    """Take the writer lock for ``roots``; raises ``Held`` naming a live overlapping run."""
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / ".mutex").open("a") as mutex:
        fcntl.flock(mutex, fcntl.LOCK_EX)
        try:
            for other in sorted(folder.glob("*.lock")):
                _check(other, roots)
            path = folder / f"{os.getpid()}-{secrets.token_hex(4)}.lock"
            handle = path.open("w")
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            handle.write(json.dumps({"pid": os.getpid(), "roots": roots.describe()}))
            handle.flush()
            return WriterLock(path, handle)
        finally:
            fcntl.flock(mutex, fcntl.LOCK_UN)


def _check(path: Path, roots: Roots) -> None:
    try:
        handle = path.open("r")
    except FileNotFoundError:
        return
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            info = _read(handle)
            listed = info.get("roots")
            theirs = Roots.of(Path(str(p)) for p in (listed if isinstance(listed, list) else []))
            if roots.overlaps(theirs):
                pid = info.get("pid")
                raise Held(pid if isinstance(pid, int) else None, theirs.describe()) from None
            return
        # Nobody holds it: its process is gone. Take it over by removing it.
        with contextlib.suppress(OSError):
            path.unlink()


def _read(handle: IO[str]) -> dict[str, object]:
    try:
        data = json.loads(handle.read() or "{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
