"""The desired state of local mode: the valid MLModels found in the given files and folders.

A model's key is ``namespace/name`` (namespace ``default`` when the manifest has none). Its
owner uid is derived from the key, so a restarted ``mlplatform local`` recognises the
containers it made before (they carry the uid as a label) and adopts them instead of making
new ones. Its generation is derived from the spec, so it changes exactly when the spec does —
what ``metadata.generation`` is in a cluster.

Two manifests for one key, or two models with one ``spec.id``: the first (in file order)
wins and the second is reported as invalid, as the cluster's admission webhook would refuse it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from mlplatform.models import documents
from mlplatform.models.resource import ValidMLModel
from mlplatform.runners.base import Owner, Workload

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
    failed_files: set[str] = field(default_factory=set)  # files with at least one problem


def owner_uid(namespace: str, name: str) -> str:
    """A stable uid for a local model: the same key always gets the same containers."""
    digest = hashlib.sha256(f"{namespace}/{name}".encode()).hexdigest()
    return f"local-{digest[:24]}"


def generation_of(model: ValidMLModel) -> int:
    """A positive integer that changes when the spec changes (``metadata.generation``)."""
    wire = json.dumps(model.spec.to_wire(), sort_keys=True, separators=(",", ":"))
    return int(hashlib.sha256(wire.encode()).hexdigest()[:8], 16) or 1


def desired_model(model: ValidMLModel, source: str) -> DesiredModel:
    namespace = model.namespace or DEFAULT_NAMESPACE
    owner = Owner(namespace=namespace, name=model.name, uid=owner_uid(namespace, model.name))
    return DesiredModel(
        workload=Workload(owner=owner, spec=model.spec),
        generation=generation_of(model),
        source=source,
    )


def load(paths: Iterable[Path]) -> DesiredState:
    """Read every manifest under ``paths``; invalid documents become problem lines."""
    state = DesiredState()
    ids: dict[str, DesiredModel] = {}
    for path in documents.manifest_files(list(paths)):
        if not path.exists():
            # Not a failed read: a manifest named on the command line and then deleted is
            # a removal, like a file gone from a folder.
            state.problems.append(f"{path}: (file): does not exist")
            continue
        for document in documents.read_documents(path):
            if document.problems:
                state.problems.extend(document.report())
                state.failed_files.add(str(path))
                continue
            if document.model is None:
                state.notes.append(f"{document.where}: ignored (kind {document.kind})")
                continue
            model = desired_model(document.model, document.where)
            first = state.models.get(model.key)
            if first is not None:
                state.problems.append(
                    f"{document.where}: metadata.name: MLModel {model.key} is already defined "
                    f"in {first.source}"
                )
                state.failed_files.add(str(path))
                continue
            same_id = ids.get(model.workload.spec.id)
            if same_id is not None:
                state.problems.append(
                    f'{document.where}: spec.id: "{model.workload.spec.id}" is already used by '
                    f"MLModel {same_id.key} in {same_id.source}"
                )
                state.failed_files.add(str(path))
                continue
            state.models[model.key] = model
            ids[model.workload.spec.id] = model
    return state


def keep_last_valid(new: DesiredState, old: dict[str, DesiredModel]) -> list[str]:
    """Keep running the previous models of files that now have problems; their keys.

    A manifest being edited may be briefly invalid (a typo, a half-written save). As the
    API server refuses a bad update and the object keeps its last good spec, a model whose
    file now fails to read keeps its last valid version instead of being removed.
    """
    kept = []
    used_ids = {m.workload.spec.id for m in new.models.values()}
    for key, model in old.items():
        if key in new.models or model.file not in new.failed_files:
            continue
        if model.workload.spec.id in used_ids:
            continue
        new.models[key] = model
        used_ids.add(model.workload.spec.id)
        kept.append(key)
    return kept
