"""The debug ports: one set of host ports, held by one model at a time.

With ``RUNNERS_DOCKER_HOST_PORT_DEBUG=P``, the claim belongs to the container labelled
``mlplatform.dev/debug-ports`` (this controller's); if none is, the oldest running container
asking for them (``debug: true``) is first in line, and a model not yet created queues
behind every running one. The holder keeps the claim until its container is removed. The
others run unpublished and their status names the holder; because the decision is part of
the spec hash (``docker_plan.debug_port_map``), the next ``apply`` after the holder goes
publishes their ports. The runner decides and takes the claim under a lock.
"""

from __future__ import annotations

from dataclasses import dataclass

import docker

from mlplatform.config import Settings
from mlplatform.runners import base, docker_plan
from mlplatform.runners.docker_engine import Engine, Operation
from mlplatform.runners.docker_status import RUNNING


@dataclass(frozen=True)
class DebugClaim:
    """The debug-port claim as one model sees it."""

    configured: bool  # the host debug ports are configured at all
    first_port: int | None = None  # the first host port, when this model may publish them
    holder: str | None = None  # the model id holding (or next in line for) the claim

    def ports(self, workload: base.Workload, *, bound: bool) -> base.DebugPorts | None:
        """The claim in the runner contract's words; None when the model asks for none."""
        if not workload.spec.debug:
            return None
        if not self.configured:
            return base.DebugPorts(
                bound=False, holder=None, message="RUNNERS_DOCKER_HOST_PORT_DEBUG is not set"
            )
        other = self.holder if self.holder and self.holder != workload.spec.id else None
        message = f"debug ports are held by {other}" if other else ""
        return base.DebugPorts(bound=bound and other is None, holder=other, message=message)


def claim(
    engine: Engine, client: docker.DockerClient, settings: Settings, workload: base.Workload
) -> DebugClaim:
    """Who holds the debug ports, as ``workload`` sees it (one listing of the engine)."""
    first = settings.runners_docker_host_port_debug
    if not workload.spec.debug or first is None:
        return DebugClaim(configured=first is not None)
    owned: dict[str, str | list[str] | bool] = {
        "label": docker_plan.owned_label_filter(settings.controller)
    }
    with engine.guard(Operation.LIST, "claiming the debug ports"):
        found = client.containers.list(all=True, sparse=True, filters=owned)
    waiting: list[tuple[int, str]] = []
    mine: int | None = None
    for container in found:
        labels = container.attrs.get("Labels") or {}
        model_id = labels.get(base.LABEL_MODEL_ID)
        if not model_id:
            continue
        if labels.get(base.LABEL_OWNER_UID) == workload.owner.uid:
            # This model's own (any of its ids, any revision): its age is its place.
            created = int(container.attrs.get("Created") or 0)
            mine = created if mine is None else min(mine, created)
            continue
        if docker_plan.LABEL_DEBUG_PORTS in labels:
            return DebugClaim(configured=True, holder=model_id)
        if (
            labels.get(docker_plan.LABEL_DEBUG_REQUESTED)
            and container.attrs.get("State") in RUNNING
        ):
            waiting.append((int(container.attrs.get("Created") or 0), model_id))
    # The ports are free: the oldest running claimer takes them (first come, first
    # served); a model not yet created queues behind every running one.
    older = [w for w in waiting if mine is None or w < (mine, workload.spec.id)]
    if older:
        return DebugClaim(configured=True, holder=min(older)[1])
    return DebugClaim(configured=True, first_port=first, holder=workload.spec.id)
