"""An in-memory ``Runner`` for unit tests of the reconcile logic (never of Docker behaviour).

It keeps containers in a dict and lets a test kill them, make the engine unavailable, make
the next apply fail, or make the probe fail, and counts the writes the core asks for. It can
also answer as a runner that judges readiness, counts restarts and names problems itself.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from mlplatform import errors
from mlplatform.models import timestamps
from mlplatform.models.spec import container_name
from mlplatform.runners.base import (
    Action,
    EventStream,
    OwnedWorkload,
    Owner,
    ProbeResult,
    Problem,
    Rollout,
    RunnerStatus,
    State,
    Termination,
    Workload,
)

_ids = itertools.count(1)


@dataclass
class _Container:
    id: str
    name: str
    owner: Owner
    model_id: str
    spec_hash: str
    state: State = State.RUNNING
    source: str | None = None
    exit_code: int | None = None
    oom: bool = False
    started_at: str = field(default_factory=lambda: timestamps.rfc3339(time.time(), digits=6))


class MemoryRunner:
    type = "memory"

    def __init__(self) -> None:
        self.containers: dict[str, _Container] = {}
        self.available = True
        self.fail_apply: errors.RunnerError | None = None
        self.probe_ok = True
        self.exit_on_start: int | None = None
        self.writes = 0
        self.applies = 0
        self.lists = 0
        # As a runner that judges readiness, counts restarts, knows problems (pods) would:
        self.ready: bool | None = None
        self.restart_count: int | None = None
        self.problem: Problem | None = None
        # As a runner bringing a new revision up behind the serving workload would (Docker):
        # while set, apply keeps the running container and reports this rollout beside it.
        self.rollout: Rollout | None = None
        self.details: dict[str, Any] = {}
        self.probes = 0
        self.writes_stopped = False

    # --- test controls ---
    def kill(self, name: str, exit_code: int = 1, *, oom: bool = False) -> None:
        container = self.containers[name]
        container.state, container.exit_code, container.oom = State.EXITED, exit_code, oom

    def _check(self, *, write: bool = False) -> None:
        if not self.available:
            raise errors.RunnerUnavailable("engine does not answer")
        if write and self.writes_stopped:
            raise errors.Stopping("not done, the process is stopping")

    def _status(
        self, c: _Container | None, name: str, action: Action = Action.NONE
    ) -> RunnerStatus:
        if c is None:
            return RunnerStatus(state=State.MISSING, action=action, workload_name=name)
        ended = (
            Termination(exit_code=c.exit_code, oom_killed=c.oom)
            if c.state == State.EXITED
            else None
        )
        return RunnerStatus(
            state=c.state,
            action=action,
            workload_id=c.id,
            workload_name=c.name,
            revision=c.spec_hash,
            endpoints=[f"http://{c.name}:8080"] if c.state == State.RUNNING else [],
            started_at=c.started_at,
            termination=ended,
            ready=self.ready,
            restart_count=self.restart_count,
            problem=self.problem,
            details=dict(self.details),
            rollout=self.rollout if c.state == State.RUNNING else None,
        )

    # --- Runner ---
    def apply(self, workload: Workload) -> RunnerStatus:
        self._check(write=True)
        self.applies += 1
        name = container_name(workload.spec.id)
        if self.fail_apply is not None:
            raise self.fail_apply
        if workload.spec.suspend:  # as the Docker runner: suspended means no container
            return self.delete(workload)
        spec_hash = workload.spec.model_dump_json()
        current = self.containers.get(name)
        if current and current.owner.uid != workload.owner.uid:
            raise errors.ContainerConflict(f"container {name} belongs to {current.owner.key}")
        if (
            current
            and current.state == State.RUNNING
            and (current.spec_hash == spec_hash or self.rollout is not None)
        ):
            return self._status(current, name)
        action = Action.REPLACED if current else Action.CREATED
        self.writes += 1
        created = _Container(
            f"c{next(_ids)}",
            name,
            workload.owner,
            workload.spec.id,
            spec_hash,
            source=workload.source,
        )
        if self.exit_on_start is not None:
            created.state, created.exit_code = State.EXITED, self.exit_on_start
        self.containers[name] = created
        return self._status(created, name, action)

    def observe(self, workload: Workload) -> RunnerStatus:
        self._check()
        name = container_name(workload.spec.id)
        return self._status(self.containers.get(name), name)

    def delete(self, workload: Workload) -> RunnerStatus:
        self._check(write=True)
        name = container_name(workload.spec.id)
        removed = self.containers.pop(name, None)
        if removed:
            self.writes += 1
        return RunnerStatus(
            state=State.REMOVED,
            action=Action.REMOVED if removed else Action.NONE,
            workload_name=name,
        )

    def probe(self, workload: Workload, status: RunnerStatus) -> ProbeResult:
        self.probes += 1
        return ProbeResult(self.probe_ok, "200 OK" if self.probe_ok else "connection refused")

    def list_owned(self) -> list[OwnedWorkload]:
        self._check()
        self.lists += 1
        return [
            OwnedWorkload(c.owner, c.model_id, c.id, c.name, c.spec_hash, c.state, c.source)
            for c in self.containers.values()
        ]

    def remove_owned(self, owned: OwnedWorkload) -> None:
        self._check(write=True)
        self.containers.pop(owned.workload_name, None)

    def events(self) -> EventStream:
        raise NotImplementedError("the in-memory runner has no event stream")

    def stop_writes(self) -> None:
        self.writes_stopped = True

    def logs(
        self, namespace: str, name: str, *, previous: bool, tail: int | None, follow: bool
    ) -> Iterator[bytes]:
        raise LookupError("the in-memory runner keeps no output")
