"""The engine's event stream about managed containers, as ``RunnerEvent``s.

One ``DockerEventStream`` is one HTTP stream from the engine (``GET /events``), filtered by
the engine itself to containers labelled managed-by mlplatform *and* this controller, and
to the verbs that matter for drift (start, die, kill, oom, destroy). It blocks while
iterating; ``close()`` from another thread ends the iteration cleanly.

The stream does not reconnect: when the engine goes away, iteration raises
``RunnerUnavailable`` and the caller opens a new stream later (after a resync, since events
were missed in between). That keeps the retry policy in the reconcile core, in one place.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

from mlplatform import errors
from mlplatform.runners import base, docker_plan
from mlplatform.runners.docker_engine import Engine, Operation

EVENT_ACTIONS = ("start", "die", "kill", "oom", "destroy")


class DockerEventStream:
    """A blocking iterator of ``RunnerEvent``s; lives until closed or the engine goes away."""

    def __init__(self, engine: Engine, controller: str) -> None:
        self._closed = threading.Event()
        filters = {
            "type": "container",
            "event": list(EVENT_ACTIONS),
            "label": docker_plan.owned_label_filter(controller),
        }
        self._engine = engine
        with engine.guard(Operation.OPEN_EVENTS):
            self._stream: Any = engine.client().events(decode=True, filters=filters)

    def __iter__(self) -> Iterator[base.RunnerEvent]:
        try:
            with self._engine.guard(Operation.READ_EVENTS):
                for raw in self._stream:
                    if self._closed.is_set():
                        return
                    event = _runner_event(raw)
                    if event is not None:
                        yield event
        except errors.RunnerUnavailable:
            if not self._closed.is_set():
                raise
            return
        if not self._closed.is_set():
            raise errors.RunnerUnavailable("the Docker engine closed the event stream")

    def close(self) -> None:
        """End the iteration (from any thread); idempotent."""
        if self._closed.is_set():
            return
        self._closed.set()
        try:
            self._stream.close()
        except Exception:  # closing a half-dead socket may fail any way it likes
            return


def _runner_event(raw: dict[str, Any]) -> base.RunnerEvent | None:
    actor = raw.get("Actor") or {}
    labels: dict[str, str] = actor.get("Attributes") or {}
    action = str(raw.get("Action") or raw.get("status") or "")
    model_id = labels.get(base.LABEL_MODEL_ID)
    if model_id is None or action.partition(":")[0] not in EVENT_ACTIONS:
        return None
    return base.RunnerEvent(
        owner=base.owner_from_labels(labels), model_id=model_id, action=action.partition(":")[0]
    )
