"""The desired state of local mode: the valid MLModels found in the given files and folders.

A model's key is ``namespace/name`` (namespace ``default`` when the manifest has none). Its
owner uid is derived from the key, so a restarted ``mlplatform local`` recognises the
containers it made before (they carry the uid as a label) and adopts them instead of making
new ones. Its generation is derived from the spec, so it changes exactly when the spec does —
what ``metadata.generation`` is in a cluster.

Two manifests for one key, or two models whose ids map to one container name: the one whose
container already runs keeps it, else the first in file order; the other is reported as
invalid, as the cluster's admission webhook would refuse it (``ownership`` has the rules).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from mlplatform.local import ownership
from mlplatform.models import documents
from mlplatform.models.resource import ValidMLModel
from mlplatform.models.spec import container_name
from mlplatform.runners.base import OwnedWorkload, Owner, Workload

DEFAULT_NAMESPACE = "default"


@dataclass(frozen=True)
class DesiredModel:
    """One valid MLModel from disk: who owns it, what to run, where it was read."""

    workload: Workload
    generation: int
    source: str  # FILE[#DOC]

    @property
    def key(self) -> str:
        return self.workload.owner.key

    @property
    def file(self) -> str:
        return self.source.split("#", 1)[0]


@dataclass
class DesiredState:
    """Everything read from the manifests in one pass."""

    models: dict[str, DesiredModel] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # FILE[#DOC]: FIELD: MESSAGE
    notes: list[str] = field(default_factory=list)  # other kinds, empty folders
    failed_files: set[str] = field(default_factory=set)  # resolved files with a problem
    # Containers of files that exist but do not validate: kept as they are (not desired,
    # never removed), shown with the file's problem.
    held: list[OwnedWorkload] = field(default_factory=list)
    # Resolved file → its first problem (``FIELD: MESSAGE``), for the rows of held models.
    refused: dict[str, str] = field(default_factory=dict)

    def refuse(self, file: str, problem: str) -> None:
        """Record that ``file`` (resolved) is refused; its first problem is the one shown."""
        self.failed_files.add(file)
        self.refused.setdefault(file, problem)

    def held_lines(self) -> list[str]:
        """One line per held container, for the table and JSON problems."""
        return [
            f"{h.source}: MLModel {h.owner.key} ({h.model_id}) keeps running its last valid "
            f"spec in container {h.workload_name} while this file is refused"
            for h in self.held
        ]


def owner_uid(namespace: str, name: str) -> str:
    """A stable uid for a local model: the same key always gets the same containers."""
    digest = hashlib.sha256(f"{namespace}/{name}".encode()).hexdigest()
    return f"local-{digest[:24]}"


def generation_of(model: ValidMLModel) -> int:
    """A positive integer that changes when the spec changes (``metadata.generation``)."""
    wire = json.dumps(model.spec.to_wire(), sort_keys=True, separators=(",", ":"))
    return int(hashlib.sha256(wire.encode()).hexdigest()[:8], 16) or 1


def desired_model(model: ValidMLModel, source: str, file: str | None = None) -> DesiredModel:
    """The model as local mode runs it; ``file`` (resolved) is recorded on its workload."""
    namespace = model.namespace or DEFAULT_NAMESPACE
    owner = Owner(namespace=namespace, name=model.name, uid=owner_uid(namespace, model.name))
    return DesiredModel(
        workload=Workload(owner=owner, spec=model.spec, source=file),
        generation=generation_of(model),
        source=source,
    )


def resolved(path: Path) -> str:
    """A manifest's identity in ``source`` labels: its absolute path, symlinks resolved."""
    return str(path.resolve())


@dataclass(frozen=True)
class _Claim:
    key: str
    model_id: str
    where: str | None


def load(paths: Iterable[Path], *, running: Iterable[OwnedWorkload] = ()) -> DesiredState:
    """Read every manifest under ``paths``; invalid documents become problem lines.

    ``running`` is what the engine holds for this controller (empty when unknown). It
    decides who keeps a contested name or id: a model whose container already runs keeps
    it whatever the file order, and a file that does not validate holds the names and keys
    of the containers it made (see ``ownership``). Otherwise the first in file order wins.
    """
    state = DesiredState()
    running = list(running)
    candidates: list[tuple[DesiredModel, str]] = []
    for path in documents.manifest_files(list(paths)):
        if not path.exists():
            # Not a failed read: a manifest named on the command line and then deleted is
            # a removal, like a file gone from a folder.
            state.problems.append(f"{path}: (file): does not exist")
            continue
        file = resolved(path)
        for document in documents.read_documents(path):
            if document.problems:
                state.problems.extend(document.report())
                state.refuse(file, str(document.problems[0]))
                continue
            if document.model is None:
                state.notes.append(f"{document.where}: ignored (kind {document.kind})")
                continue
            candidates.append((desired_model(document.model, document.where, file), file))
    # Containers of files that exist but are refused now keep their names and keys.
    names: dict[str, _Claim] = {}
    keys: dict[str, str | None] = {}
    for held in ownership.held_by_invalid_files(running, state.failed_files):
        names[held.workload_name] = _Claim(held.owner.key, held.model_id, held.source)
        keys[held.owner.key] = held.source
        state.held.append(held)
    ordered = ownership.first_holders_first(
        candidates,
        (
            ownership.holds(
                running,
                uid=m.workload.owner.uid,
                name=container_name(m.workload.spec.id),
                source=file,
            )
            for m, file in candidates
        ),
    )
    accepted: list[DesiredModel] = []
    for model, file in ordered:
        problem = _claim(model, names, keys)
        if problem:
            state.problems.append(f"{model.source}: {problem}")
            state.refuse(file, problem)
            continue
        accepted.append(model)
        names[container_name(model.workload.spec.id)] = _Claim(
            model.key, model.workload.spec.id, model.source
        )
        keys[model.key] = model.source
    for model in accepted:
        state.models[model.key] = model
    return state


def _claim(model: DesiredModel, names: dict[str, _Claim], keys: dict[str, str | None]) -> str:
    """Why ``model`` may not take its key or container name, or ``""``."""
    if model.key in keys:
        where = keys[model.key]
        return f"metadata.name: MLModel {model.key} is already defined" + (
            f" in {where}" if where else ""
        )
    holder = names.get(container_name(model.workload.spec.id))
    if holder is not None:
        return ownership.name_taken_message(
            new_id=model.workload.spec.id,
            holder_key=holder.key,
            holder_id=holder.model_id,
            holder_where=holder.where,
        )
    return ""


def holding_lines(state: DesiredState, kept: list[str]) -> list[str]:
    """Problem lines for the models an invalid file keeps running (its containers held)."""
    lines = state.held_lines()
    for key in kept:
        model = state.models[key]
        lines.append(
            f"{model.source}: MLModel {key} ({model.workload.spec.id}) keeps running its last "
            "valid spec while this file is refused"
        )
    return lines


def keep_last_valid(new: DesiredState, old: dict[str, DesiredModel]) -> list[str]:
    """Keep running the previous models of files that now have problems; their keys.

    A manifest being edited may be briefly invalid (a typo, a half-written save). As the
    API server refuses a bad update and the object keeps its last good spec, a model whose
    file now fails to read keeps its last valid version instead of being removed.
    """
    kept = []
    used_names = {container_name(m.workload.spec.id) for m in new.models.values()}
    for key, model in old.items():
        if key in new.models or model.workload.source not in new.failed_files:
            continue
        if container_name(model.workload.spec.id) in used_names:
            continue
        new.models[key] = model
        used_names.add(container_name(model.workload.spec.id))
        # Found by the engine's labels too; the in-memory version is the fuller one.
        new.held = [h for h in new.held if h.owner.key != key]
        kept.append(key)
    return kept
