"""The kopf handlers of the operator: thin adapters from kopf's causes to the ``Operator``.

- ``on.event``: every watch event of an MLModel (the initial listing too) feeds the store,
  which enqueues the key when the change calls for a reconcile; no per-object task;
- ``on.delete``: waits, bounded in time, until the controller removed the container (kopf
  holds its finalizer meanwhile); only for models whose workload lives outside the cluster
  (``held_by_finalizer``): kopf is blind to the others (no finalizer, no bookkeeping
  annotations), whose objects Kubernetes' garbage collector removes;
- start-up / clean-up activities start and stop the controller (workers, event stream,
  resync).

``configure`` sets what the operator keeps on objects: a ``mlplatform.dev`` finalizer and
kopf's progress in ``mlplatform.dev`` annotations (only while a Docker model's deletion is
handled), so that ``status`` is ours alone; no last-handled copy (``NoDiffBase``).
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from typing import Any

import kopf

from mlplatform.kube.operator import Operator
from mlplatform.kube.store import held_by_finalizer, plain_namespaces
from mlplatform.models.spec import API_GROUP, API_VERSION, PLURAL

RESOURCE = (API_GROUP, API_VERSION, PLURAL)
FINALIZER = f"{API_GROUP}/finalizer"


def configure(
    settings: kopf.OperatorSettings, *, namespaces: Collection[str] = ()
) -> kopf.OperatorSettings:
    """Apply the operator's persistence, posting and scanning choices to kopf's settings
    (``namespaces``: the ones watched, none for the whole cluster)."""
    # Watching named namespaces only, the operator needs no cluster-wide right, so that a
    # namespace-scoped install (a Role in each, no ClusterRole: manifests/components/namespaced)
    # is complete: kopf neither lists namespaces (the names are the namespaces) nor watches
    # CRDs (the MLModel CRD is found once at start-up, by discovery, which needs no RBAC).
    # Patterns and the whole cluster keep kopf's scanning: new namespaces and CRDs are seen.
    settings.scanning.disabled = bool(namespaces) and bool(plain_namespaces(namespaces))
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=API_GROUP)
    settings.persistence.diffbase_storage = NoDiffBase()
    # kopf's own log lines become Events only from warnings up; ours are posted explicitly.
    settings.posting.level = logging.WARNING
    objects_log = logging.getLogger("kopf.objects")
    if not any(isinstance(f, _QuietObserve) for f in objects_log.filters):
        objects_log.addFilter(_QuietObserve())
    return settings


class NoDiffBase(kopf.DiffBaseStorage):
    """No last-handled copy of the objects: the operator has no creation, update or resume
    handler for kopf to tell apart (the store compares specs itself), and kopf tells a
    deletion from ``deletionTimestamp``, not from a diff. kopf otherwise deep-copies and
    compares every MLModel on every watch event, the operator's own status writes included,
    for nothing (and its annotation was never written: no handler ever matched a change)."""

    def build(self, *, body: kopf.Body, extra_fields: Any = None) -> kopf.BodyEssence:
        return {}  # a fresh one each time: kopf may change what it is given

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return {}

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        return None


class _QuietObserve(logging.Filter):
    """Drops kopf's "Handler 'observe' succeeded." line: that handler runs for every watch
    event of every MLModel (the operator's own status writes included) and only enqueues,
    so the line is one per event and says nothing."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (
            record.levelno == logging.INFO and record.getMessage() == "Handler 'observe' succeeded."
        )


def register(registry: kopf.OperatorRegistry, operator: Operator) -> None:
    """Register the handlers feeding ``operator`` on ``registry``."""

    @kopf.on.startup(id="start-controller", registry=registry)
    async def start_controller(**_: Any) -> None:
        await operator.start()

    @kopf.on.cleanup(id="stop-controller", registry=registry)
    async def stop_controller(**_: Any) -> None:
        await operator.stop()

    @kopf.on.event(*RESOURCE, id="observe", registry=registry)
    async def observe(type: str | None, body: kopf.Body, **_: Any) -> None:
        operator.observe(type, body)

    @kopf.on.delete(*RESOURCE, id="remove", registry=registry, when=_held)
    async def remove(body: kopf.Body, **_: Any) -> None:
        await operator.remove(body)


def _held(spec: kopf.Spec, **_: Any) -> bool:
    return held_by_finalizer(spec)
