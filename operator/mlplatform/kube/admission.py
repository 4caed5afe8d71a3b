"""Admission for MLModels: the validating and mutating webhooks, and the id-uniqueness index.

``register(registry)`` puts three handlers on a kopf registry (nothing is registered on import):

- ``validate-mlmodel`` (``@kopf.on.validate``, CREATE/UPDATE): denies an object that breaks a
  rule, with every problem as ``FIELD: MESSAGE`` joined by ``"; "`` — the words of
  ``mlplatform.models.resource``, the same as ``mlplatform validate`` prints — and denies a
  ``spec.id`` that another MLModel already holds, naming that object (code 422 for both).
- ``mutate-mlmodel`` (``@kopf.on.mutate``, CREATE/UPDATE): fills the spec's defaults (those of
  ``MLModelSpec``, nowhere else) as a JSON patch; an invalid spec is left alone for the
  validating webhook to deny with its reasons.
- ``mlmodel_ids`` (``@kopf.index``): the id's scope (``models.spec.id_scope``) → the
  MLModels whose ``spec.id`` falls in it. A ``runner: docker`` id is unique across the
  cluster and checked as a container name (``a-b:1`` and ``a:b-1`` both name the container
  ``a-b-1``, so the second is denied like a repeated id); a ``runner: kubernetes`` id only
  within its namespace (two teams may both run ``iris:1.0`` as Deployments).

Uniqueness rules. An object never conflicts with itself (an UPDATE keeps its id). An object
that is being deleted (``deletionTimestamp`` set) still holds its id: its container and storage
folder exist until its finalizer has run, so a new object with that id would collide with
them; the message says so, and the id is free once the old object is gone. The index is built
from kopf's watch, so it sees the namespaces the operator serves (the whole cluster by
default) and lags the API by the watch delay: two objects created with the same id within that
window can both be admitted — the reconciler's container-name conflict check is the backstop.

Everything here runs in the operator process; the webhook server is configured by
``webhook_server`` (TLS files from ``mlplatform.kube.certificates``).
"""

from __future__ import annotations

import copy
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kopf

from mlplatform.kube import certificates
from mlplatform.models.resource import Problem, validate_object, validate_spec
from mlplatform.models.spec import (
    API_GROUP,
    API_VERSION,
    PLURAL,
    container_name,
    id_scope,
    id_scope_words,
)

VALIDATE_ID = "validate-mlmodel"
MUTATE_ID = "mutate-mlmodel"
INDEX_ID = "mlmodel_ids"  # also the keyword under which kopf passes the index to handlers
OPERATIONS: tuple[kopf.Operation, ...] = ("CREATE", "UPDATE")
DENIED_CODE = 422


@dataclass(frozen=True)
class Holder:
    """An MLModel that holds a ``spec.id``, as the index remembers it."""

    namespace: str | None
    name: str
    deleting: bool
    model_id: str = ""
    runner: str = "docker"

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}" if self.namespace else self.name


def register(registry: kopf.OperatorRegistry) -> None:
    """Register the admission handlers and the id index on ``registry``."""
    resource = (API_GROUP, API_VERSION, PLURAL)
    kopf.index(*resource, id=INDEX_ID, registry=registry)(index_model_id)
    kopf.on.validate(*resource, id=VALIDATE_ID, operations=OPERATIONS, registry=registry)(
        validate_mlmodel
    )
    kopf.on.mutate(*resource, id=MUTATE_ID, operations=OPERATIONS, registry=registry)(
        mutate_mlmodel
    )


def webhook_server(
    *,
    cert_dir: Path,
    addr: str | None = None,
    port: int | None = None,
    host: str | None = None,
    names: Sequence[str] = (),
) -> kopf.WebhookServer:
    """kopf's HTTPS webhook server with our certificate (see ``certificates`` for the story).

    ``names`` are the DNS names / IPs the API server uses to reach us (they go into the
    certificate with ``host`` and ``addr``); ``host`` is the name put into webhook URLs.
    """
    all_names = [n for n in (host, *names, addr) if n and n not in {"0.0.0.0", "::"}]
    files = certificates.ensure_certificate(cert_dir, names=all_names or ["localhost"])
    return kopf.WebhookServer(
        addr=addr,
        port=port,
        host=host,
        certfile=str(files.certfile),
        pkeyfile=str(files.pkeyfile),
        cafile=str(files.cafile),
    )


# --- handlers -------------------------------------------------------------------------


def index_model_id(
    spec: Mapping[str, Any], meta: Mapping[str, Any], **_: Any
) -> dict[str, Holder] | None:
    """Index an MLModel under its id's scope (objects without a string id are not indexed)."""
    model_id = spec.get("id")
    name = meta.get("name")
    if not isinstance(model_id, str) or not isinstance(name, str):
        return None
    runner = spec.get("runner")
    holder = Holder(
        namespace=meta.get("namespace"),
        name=name,
        deleting=bool(meta.get("deletionTimestamp")),
        model_id=model_id,
        runner=runner if isinstance(runner, str) else "docker",
    )
    return {id_scope(model_id, holder.runner, holder.namespace): holder}


def validate_mlmodel(
    body: Mapping[str, Any], namespace: str | None, name: str | None, **kwargs: Any
) -> None:
    """Deny an invalid MLModel, or one whose ``spec.id`` another MLModel holds."""
    mlmodel_ids: Mapping[str, Collection[Holder]] = kwargs[INDEX_ID]
    obj = _plain(body)
    model, problems = validate_object(obj)
    if model is None:
        raise kopf.AdmissionError(message(problems), code=DENIED_CODE)
    model_id, runner = model.spec.id, model.spec.runner
    scope = id_scope(model_id, runner, namespace)
    others = holders(mlmodel_ids.get(scope, ()), namespace=namespace, name=name)
    if others:
        raise kopf.AdmissionError(
            message([duplicate_id_problem(model_id, others, runner=runner)]), code=DENIED_CODE
        )


def mutate_mlmodel(body: Mapping[str, Any], patch: kopf.Patch, **_: Any) -> None:
    """Fill the spec's defaults; an invalid spec is left for the validating webhook to deny."""
    incoming = _plain(body).get("spec")
    spec, problems = validate_spec(incoming)
    if spec is None or problems or not isinstance(incoming, dict):
        return
    wire = spec.to_wire()
    if wire != incoming:
        # kopf turns the merge patch into JSON-patch ops against the incoming object, so
        # only the fields that were missing (the defaults) come out as "add" operations.
        patch["spec"] = wire


# --- messages -------------------------------------------------------------------------


def message(problems: Iterable[Problem]) -> str:
    """All problems in one admission message: ``FIELD: MESSAGE; FIELD: MESSAGE``."""
    return "; ".join(str(problem) for problem in problems)


def holders(found: Iterable[Holder], *, namespace: str | None, name: str | None) -> list[Holder]:
    """The holders of an id other than the object itself (sorted, for a stable message)."""
    return sorted(
        (h for h in found if (h.namespace, h.name) != (namespace, name)),
        key=lambda h: (h.namespace or "", h.name),
    )


def duplicate_id_problem(
    model_id: str, others: Sequence[Holder], *, runner: str = "docker"
) -> Problem:
    """The problem reported when ``model_id``'s container name is already taken by ``others``."""
    described = ", ".join(
        f"MLModel {h.ref}"
        + (f" ({h.model_id})" if h.model_id and h.model_id != model_id else "")
        + (" (being deleted; retry once it is gone)" if h.deleting else "")
        for h in others
    )
    if all(h.model_id in ("", model_id) for h in others):
        claim = f'"{model_id}" is already used by {described}'
    else:
        claim = (
            f'"{model_id}" maps to container name "{container_name(model_id)}", already used by '
            f"{described}"
        )
    return Problem("spec.id", f"{claim}; {id_scope_words(runner)}")


def _plain(body: Mapping[str, Any]) -> dict[str, Any]:
    """A plain, private copy of a kopf body (the validators want dicts they may keep)."""
    return copy.deepcopy(dict(body))
