"""The debug ports: one set of host ports, held by one model at a time.

With ``RUNNERS_DOCKER_HOST_PORT_DEBUG=P`` the claim belongs to a model (its owner), not to
a container: the model whose container carries the label ``mlplatform.dev/debug-ports``
(this controller's) holds it, in whatever state that container is (a crashed holder is
still the holder while it is restarted). The holder keeps it across its own updates and
restarts: a new container of the holder is created with the label before the old one goes
(``DockerRunner._replace``), so no reading of the engine ever finds the ports free in
between. The holder lets the claim go only when no container of it carries the label any
more: it was deleted, suspended, or stopped asking (``debug: false``; its next container
publishes nothing). Then the oldest running container asking for the ports (``debug:
true``) takes them, once; a model not yet created queues behind every running one.

The others run unpublished and their status names the holder. A claimer never replaces
itself to publish or unpublish while another holds the ports: its spec hash
(``docker_plan.debug_port_map``) changes only when it takes the claim. The runner decides
and takes the claim under a lock; two processes on one engine (two folders of one
controller) read the same labels, so they agree.
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
    holders: list[tuple[int, str, bool]] = []  # (created, model id, this model's)
    waiting: list[tuple[int, str]] = []
    mine: int | None = None
    for container in found:
        labels = container.attrs.get("Labels") or {}
        model_id = labels.get(base.LABEL_MODEL_ID)
        if not model_id:
            continue
        created = int(container.attrs.get("Created") or 0)
        own = labels.get(base.LABEL_OWNER_UID) == workload.owner.uid
        if docker_plan.LABEL_DEBUG_PORTS in labels:
            # The claim, whatever the container's state: a holder that crashed is
            # restarted with the ports, it has not let them go.
            holders.append((created, workload.spec.id if own else model_id, own))
        if own:
            # This model's own (any of its ids, any revision): its age is its place.
            mine = created if mine is None else min(mine, created)
            continue
        if (
            labels.get(docker_plan.LABEL_DEBUG_REQUESTED)
            and container.attrs.get("State") in RUNNING
        ):
            waiting.append((created, model_id))
    if holders:
        # Held. (Two holders only after a race of two processes on free ports: the older
        # claim wins, the younger could not bind the ports anyway.)
        _, holder, own = min(holders)
        return DebugClaim(configured=True, first_port=first if own else None, holder=holder)
    # The ports are free: the oldest running claimer takes them (first come, first
    # served); a model not yet created queues behind every running one.
    older = [w for w in waiting if mine is None or w < (mine, workload.spec.id)]
    if older:
        return DebugClaim(configured=True, holder=min(older)[1])
    return DebugClaim(configured=True, first_port=first, holder=workload.spec.id)
