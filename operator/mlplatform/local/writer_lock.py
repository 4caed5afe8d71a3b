"""One writer per manifest: a second ``mlplatform local`` on overlapping paths refuses to start.

Each running ``mlplatform local`` holds an exclusive ``flock`` on its own file in one
machine-wide folder (``FOLDER``: ``/run/lock/mlplatform-local``, else the same name in the
temporary folder) and writes its PID and roots — the resolved manifest paths — into it. A
run that starts reads the others: one whose lock is still held and whose roots overlap its
own is the running writer, and it refuses naming its PID; a file whose lock can be taken
belongs to a process that is gone (the kernel drops a ``flock`` when its holder dies, even
by SIGKILL), and it is removed. The scan and the new lock file are made under a second
lock on the folder, so two runs started at the same moment cannot both pass.

The place depends on nothing a run is given — not the working directory, not
``STORAGE_DIR``, not the controller — so two runs on one folder always meet, however they
were started (the lock used to live under ``STORAGE_DIR``, whose default is relative to the
working directory). The folder is shared by every user (sticky, world-writable, like
``/tmp``); a lock file is readable by all, which is all a check needs.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import stat
import tempfile
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


LOCK_FOLDER_NAME = "mlplatform-local"


def machine_folder() -> Path:
    """The machine-wide folder of the writer locks."""
    run_lock = Path("/run/lock")
    if run_lock.is_dir() and os.access(run_lock, os.W_OK | os.X_OK):
        return run_lock / LOCK_FOLDER_NAME
    return Path(tempfile.gettempdir()) / LOCK_FOLDER_NAME


def acquire(roots: Roots, folder: Path | None = None) -> WriterLock:
    """Take the writer lock for ``roots`` (in ``folder``, the machine-wide one unless a
    test says otherwise); raises ``Held`` naming a live overlapping run."""
    folder = folder or machine_folder()
    _shared_folder(folder)
    # Opened read-only: a file another user created is still ours to lock.
    mutex_fd = os.open(folder / ".mutex", os.O_RDONLY | os.O_CREAT, 0o644)
    with os.fdopen(mutex_fd, "r") as mutex:
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


def _shared_folder(folder: Path) -> None:
    """Create ``folder`` for every user of the machine (sticky and world-writable)."""
    if folder.is_dir():
        return
    folder.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(OSError):  # made by another user meanwhile: theirs to set
        folder.chmod(stat.S_ISVTX | 0o777)


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
