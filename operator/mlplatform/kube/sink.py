"""The operator's status sink: each outcome's status to the API server, its events to kopf.

Called from the controller's worker threads. The status is kept in the ``ModelStore`` (the
next reconcile starts from it) and written as a JSON merge patch of what changed against
what the object holds (the server's answer to the last write, or a status someone else
wrote, as the store saw it) — nothing at all when nothing changed, so a resync of steady
models costs the API server no write, and a status edited by someone else is put back. A
write the API server refuses or does not answer raises ``RetryLater``; the controller tries
again with its back-off. An object already gone is not an error.

Events go through kopf's poster (``kopf.event``), run in the context kopf gave the handler
that last saw the object: kopf's documented way to post from another thread.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import cast

import kopf

from mlplatform.core.controller import Deleting, Desired, Refused, RetryLater
from mlplatform.core.reconcile import Event, Outcome
from mlplatform.kube import status_patch as status_patching
from mlplatform.kube.api import KubeApi, ObjectGone
from mlplatform.kube.store import Entry, ModelStore

log = logging.getLogger(__name__)


class KubeSink:
    """The ``StatusSink`` of the operator."""

    def __init__(self, store: ModelStore, api: KubeApi) -> None:
        self._store = store
        self._api = api

    def write(self, key: str, found: Desired | Refused, outcome: Outcome) -> None:
        entry = self._store.entry(key)
        if entry is None or entry.found.owner.uid != found.owner.uid:
            return  # deleted meanwhile
        self._store.keep_status(key, outcome.status)
        patch = status_patching.status_patch(entry.written, outcome.status)
        failure: Exception | None = None
        if patch:
            owner = found.owner
            try:
                held = self._api.patch_status(owner.namespace, owner.name, patch)
                self._store.keep_written(key, held)
            except ObjectGone:
                return
            except Exception as error:  # the API server is down or refused: retry
                failure = error
        _post(entry, outcome.events)
        if failure is not None:
            raise RetryLater(f"failed to write the status: {failure}") from failure

    def released(self, key: str, found: Deleting, events: Sequence[Event]) -> None:
        entry = self._store.entry(key)
        if entry is not None:
            _post(entry, events)
        self._store.release(key)


def _post(entry: Entry, events: Sequence[Event]) -> None:
    body = cast(kopf.Body, entry.reference)
    for event in events:
        try:
            entry.context.copy().run(
                kopf.event, body, type=event.type, reason=event.reason, message=event.message
            )
        except RuntimeError as error:  # kopf's loop is closed: the operator is exiting
            log.debug("Could not post %s: %s", event.reason, error)
