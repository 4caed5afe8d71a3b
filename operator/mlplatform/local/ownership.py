"""What one ``mlplatform local`` run owns, and so what it may remove.

Ownership rules (docs/local.md, "What a run may remove"):

- Scope by source. Every container records the manifest file it came from (the
  ``mlplatform.dev/source`` label, the file's resolved path). A run removes only containers
  whose source lies under the roots on its own command line: a file root covers that file,
  a folder root anything beneath it. Two runs on different folders never touch each other's
  models, whatever their controller label (which still separates runs on top of this).
- An invalid manifest holds its models. While a file exists but does not validate, the
  containers it made keep running untouched, however the run started (watcher, restart,
  ``--once``), and nobody else may take their ids.
- First holder keeps an id. When two manifests claim one container name (the same
  ``spec.id``, or two ids that map to one name such as ``a-b:1`` and ``a:b-1``), the model
  whose container already runs keeps it; with none running, the first in file order does
  (roots in command-line order, files sorted within a folder, documents in file order).

Everything here is pure: it is given what the engine holds and what was read from disk.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from mlplatform.models.spec import container_name
from mlplatform.runners.base import OwnedWorkload

T = TypeVar("T")


@dataclass(frozen=True)
class Roots:
    """The manifest paths of one run, resolved: what its ``source`` labels may lie under."""

    files: frozenset[Path]
    folders: frozenset[Path]

    @classmethod
    def of(cls, paths: Iterable[Path]) -> Roots:
        files: set[Path] = set()
        folders: set[Path] = set()
        for path in paths:
            resolved = path.resolve()
            (folders if resolved.is_dir() else files).add(resolved)
        return cls(frozenset(files), frozenset(folders))

    def covers(self, source: str | None) -> bool:
        """Whether a workload with this source label belongs to this run.

        A workload without the label (made by a run before sources were recorded, or by the
        operator) belongs to no local run: it is never removed by scope alone.
        """
        if not source:
            return False
        path = Path(source)
        return path in self.files or any(path.is_relative_to(f) for f in self.folders)

    def overlaps(self, other: Roots) -> bool:
        """Whether two runs could claim one manifest (a path of one lies under the other's)."""
        mine, theirs = self.files | self.folders, other.files | other.folders
        return any(
            a == b or a.is_relative_to(b) or b.is_relative_to(a) for a in mine for b in theirs
        )

    def describe(self) -> list[str]:
        return sorted(str(p) for p in self.files | self.folders)


def may_prune(owned: OwnedWorkload, roots: Roots, held_files: Iterable[str]) -> bool:
    """A run may remove a workload only when its source is under its roots and not held."""
    return roots.covers(owned.source) and owned.source not in set(held_files)


def held_by_invalid_files(
    running: Iterable[OwnedWorkload], invalid_files: Iterable[str]
) -> list[OwnedWorkload]:
    """The workloads made from files that exist but do not validate now: they stay as they are."""
    invalid = set(invalid_files)
    return [o for o in running if o.source is not None and o.source in invalid]


def holds(running: Iterable[OwnedWorkload], *, uid: str, name: str, source: str | None) -> bool:
    """Whether a model (owner uid, container name, manifest file) already has its container."""
    return any(
        o.owner.uid == uid
        and o.workload_name == name
        and (o.source is None or source is None or o.source == source)
        for o in running
    )


def name_taken_message(
    *, new_id: str, holder_key: str, holder_id: str, holder_where: str | None
) -> str:
    """``spec.id: ...`` for an id whose container name is already claimed (one wording)."""
    where = f" in {holder_where}" if holder_where else ""
    name = container_name(new_id)
    if new_id == holder_id:
        return f'spec.id: "{new_id}" is already used by MLModel {holder_key}{where}'
    return (
        f'spec.id: "{new_id}" maps to container name "{name}", already used by '
        f"MLModel {holder_key} ({holder_id}){where}"
    )


def first_holders_first(candidates: Sequence[T], is_holder: Iterable[bool]) -> list[T]:
    """``candidates`` with the ones that already hold their container first, order kept."""
    flags = list(is_holder)
    return [c for c, f in zip(candidates, flags, strict=True) if f] + [
        c for c, f in zip(candidates, flags, strict=True) if not f
    ]
