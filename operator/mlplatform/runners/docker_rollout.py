"""Updates without a gap: a new revision brought up behind the serving container.

When the spec (or the id) of a model whose container runs changes, the old container keeps
serving while a new one is created under a temporary name (``<name>-<version>_<revision>``)
with no alias. Each ``apply`` moves the update on (``Rollouts.step``): once the new
container has run for the minimum ready time and passes its readiness probe, it takes over
(``Rollouts.take_over``): it joins the network under the stable alias (both answer for a
moment), the old one is retired from the alias while it stays on the network (its requests
in flight finish, no new lookup returns it), drains, is stopped where it is (its grace
period) and removed, and the new one is renamed to the contract name ``<name>-<version>``.
Until then the status describes the serving container with a ``Rollout`` beside it; if the
new one crashes, cannot be pulled or never passes its probe, the old one keeps serving and
the rollout says why (the core backs off re-creating the new one, never touching the old).
Every step is idempotent and read back from the engine (the alias and the temporary name are
the only state), so a process killed in the middle finishes the update after its restart.

(The exception, decided by the runner: a model that publishes debug ports — one container
at a time can bind them — is replaced with a short gap, and its status says so.)
"""

from __future__ import annotations

import contextlib
import logging
import time

import docker
from docker.models.containers import Container

from mlplatform import errors
from mlplatform.models.status import Reason
from mlplatform.runners import base, docker_plan, docker_probe, docker_status
from mlplatform.runners.docker_containers import Containers
from mlplatform.runners.docker_debug import DebugClaim
from mlplatform.runners.docker_network import ModelsNetwork
from mlplatform.runners.docker_status import RUNNING, STARTING, holds_alias, status_of

log = logging.getLogger(__name__)

# Seconds both containers answer on the stable alias before the old one is retired from it:
# a client that looked the name up just before the new one joined got the old address only,
# and must have connected by then.
SWITCH_SETTLE_SECONDS = 1.0
# Seconds the old container stays reachable once no lookup of the alias returns it, before it
# is stopped: the engine drops its DNS record up to ~0.1 s after the endpoint (measured on
# 20.10), and a client that looked the name up just before must still connect and be
# answered (a request cut by the old container's going is the failure this avoids). One
# second covers both with room for a loaded machine; the old container is out of every
# answer meanwhile, so a longer drain only delays the update's end.
RETIRE_DRAIN_SECONDS = 1.0

# Why a new revision could not be started, as the core reports it.
_REASONS: dict[type[errors.RunnerError], Reason] = {
    errors.ImageNotFound: Reason.IMAGE_NOT_FOUND,
    errors.ImagePullFailed: Reason.IMAGE_PULL_FAILED,
    errors.StartFailed: Reason.START_FAILED,
}


class Rollouts:
    """Moves the updates of one runner's models on, one idempotent step per ``apply``."""

    def __init__(self, containers: Containers, network: ModelsNetwork, *, min_ready: float) -> None:
        self._containers = containers
        self._network = network
        self.min_ready = min_ready
        self.switch_settle = SWITCH_SETTLE_SECONDS
        self.retire_drain = RETIRE_DRAIN_SECONDS

    def step(
        self,
        client: docker.DockerClient,
        workload: base.Workload,
        plan: docker_plan.ContainerPlan,
        *,
        serving: Container,
        candidate: Container | None,
        claim: DebugClaim,
    ) -> base.RunnerStatus:
        """Move an update on by one step while ``serving`` keeps serving."""
        containers = self._containers

        def behind(rollout: base.Rollout) -> base.RunnerStatus:
            return docker_status.runner_status(
                serving, workload, claim, action=base.Action.NONE, rollout=rollout
            )

        if candidate is not None and status_of(candidate) not in (*RUNNING, *STARTING):
            # Its failure was reported (and backed off by the core) before this apply.
            containers.remove_all([candidate])
            candidate = None
        if candidate is None:
            try:
                candidate, _ = containers.create(client, workload, plan, candidate=True)
                containers.start(candidate)
            except (errors.ImageNotFound, errors.ImagePullFailed, errors.StartFailed) as error:
                if candidate is not None:
                    with contextlib.suppress(errors.RunnerError):
                        containers.reload(candidate)
                    if status_of(candidate) not in STARTING:
                        return behind(
                            docker_status.rollout(
                                candidate, output=containers.last_output(candidate)
                            )
                        )
                    containers.remove_all([candidate])
                reason = _REASONS.get(type(error), Reason.START_FAILED)
                return behind(
                    base.Rollout(
                        revision=plan.spec_hash,
                        workload_name=plan.candidate_name,
                        problem=base.Problem(reason, error.message),
                        message=error.message,
                    )
                )
            containers.reload(candidate)
        if status_of(candidate) not in RUNNING:
            return behind(
                docker_status.rollout(candidate, output=containers.last_output(candidate))
            )
        up = docker_status.up_for(candidate)
        if up < self.min_ready:
            return behind(
                docker_status.rollout(
                    candidate,
                    message="the new revision started; waiting to see it stay up",
                    recheck_after=max(self.min_ready - up, 0.05),
                )
            )
        readiness = workload.spec.container.readiness_probe
        if readiness is not None:
            if up < readiness.initial_delay_seconds:
                return behind(
                    docker_status.rollout(
                        candidate,
                        message="the new revision waits for initialDelaySeconds",
                        recheck_after=readiness.initial_delay_seconds - up,
                    )
                )
            result = docker_probe.probe(candidate, readiness, self._network.name)
            if not result.ok:
                waiting = f"the new revision is not ready: readiness probe failed: {result.message}"
                return behind(
                    docker_status.rollout(
                        candidate,
                        message=waiting,
                        waiting=base.Problem(Reason.PROBE_FAILED, waiting),
                        recheck_after=float(readiness.period_seconds),
                    )
                )
        return self.take_over(
            client, workload, plan, candidate=candidate, serving=serving, claim=claim
        )

    def take_over(
        self,
        client: docker.DockerClient,
        workload: base.Workload,
        plan: docker_plan.ContainerPlan,
        *,
        candidate: Container,
        serving: Container | None,
        claim: DebugClaim,
    ) -> base.RunnerStatus:
        """The new revision answers on the stable endpoint, the old one drains, then goes.

        Each step can be repeated: a takeover cut short (the process killed) is finished by
        the next apply, which finds the new container holding the alias.
        """
        network = self._network.get(client)
        self._network.check_endpoint(client, workload, plan.aliases[0])
        if not holds_alias(candidate, self._network.name, plan.aliases[0]):
            # Joined under its temporary name only; join again under the stable names, then
            # give the lookups made before (which could only return the old address) the
            # time to connect before the old container leaves.
            self._network.join_as(network, candidate, list(plan.aliases))
            if serving is not None and status_of(serving) in RUNNING:
                time.sleep(self.switch_settle)
        if serving is not None:
            if status_of(serving) in RUNNING and holds_alias(
                serving, self._network.name, plan.aliases[0]
            ):
                # Out of the alias's answers but still reachable, so the requests it serves
                # and those of clients that looked it up a moment ago are answered; leaving
                # the network instead would cut them (its interface goes at once).
                if not self._network.retire(network, serving):
                    log.warning(
                        "the old container %s did not keep its address on %s: requests in "
                        "flight to it were cut",
                        serving.name,
                        self._network.name,
                    )
                time.sleep(self.retire_drain)
            # Stopped where it is: a server that finishes its requests on SIGTERM (as model
            # servers do) drops none of those still running; no new one reaches it.
            self._containers.remove_all([serving])
        if candidate.name != plan.name:
            self._containers.rename(client, workload, candidate, plan.name)
        self._containers.reload(candidate)
        return docker_status.runner_status(
            candidate,
            workload,
            claim,
            action=base.Action.REPLACED,
            message="replaced the container without a gap: the new revision took over",
        )
