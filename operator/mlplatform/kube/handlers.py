"""The kopf handlers of the operator: thin adapters from kopf's causes to the ``Controller``.

- a daemon per MLModel runs ``Controller.serve``, the level-based loop (spawned for objects
  that exist at start-up and for new ones; stopped when an object is marked for deletion);
- ``on.update`` of ``spec`` wakes that loop at once (kopf has already refreshed the body the
  daemon reads);
- ``on.delete`` removes the container, bounded in time (kopf holds its finalizer meanwhile);
- start-up / clean-up activities start and stop the drift watcher and garbage collector.

``configure`` sets what the operator keeps on objects: a ``mlplatform.dev`` finalizer and
kopf's bookkeeping in ``mlplatform.dev`` annotations, so that ``status`` is ours alone.
"""

from __future__ import annotations

import logging
from typing import Any

import kopf

from mlplatform.kube.controller import Controller, Logger
from mlplatform.models.spec import API_GROUP, API_VERSION, PLURAL

RESOURCE = (API_GROUP, API_VERSION, PLURAL)
FINALIZER = f"{API_GROUP}/finalizer"


def configure(settings: kopf.OperatorSettings) -> kopf.OperatorSettings:
    """Apply the operator's persistence and posting choices to kopf's settings."""
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=API_GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=API_GROUP, key="last-handled-configuration"
    )
    # kopf's own log lines become Events only from warnings up; ours are posted explicitly.
    settings.posting.level = logging.WARNING
    return settings


def register(registry: kopf.OperatorRegistry, controller: Controller) -> None:
    """Register the reconcile handlers for ``controller`` on ``registry``."""

    @kopf.on.startup(id="start-controller", registry=registry)
    async def start_controller(**_: Any) -> None:
        await controller.start()

    @kopf.on.cleanup(id="stop-controller", registry=registry)
    async def stop_controller(**_: Any) -> None:
        await controller.stop()

    @kopf.daemon(*RESOURCE, id="reconcile", registry=registry, cancellation_timeout=30)
    async def reconcile(
        body: kopf.Body, stopped: kopf.DaemonStopped, logger: Logger, **_: Any
    ) -> None:
        await controller.serve(body=body, stopped=stopped, logger=logger)

    @kopf.on.update(*RESOURCE, field="spec", id="spec-changed", registry=registry)
    async def spec_changed(uid: str, **_: Any) -> None:
        controller.wake(uid)

    @kopf.on.delete(*RESOURCE, id="remove", registry=registry)
    async def remove(body: kopf.Body, logger: Logger, **_: Any) -> None:
        await controller.remove(body=body, logger=logger)
