"""The Docker runner: one serving container per MLModel, on one engine, found by its labels.

It fills the runner contract (``base.RunnerStatus``) from the container that serves the
model (``docker_status``). This module decides what ``apply`` does; the rest lives beside it:

- ``docker_plan`` ........ pure: spec → engine arguments, names, labels, spec hash.
- ``docker_containers`` .. a model's containers: found by labels (a same-named container
  that is not ours is a ``ContainerConflict`` and never touched), the image pull policy,
  created, started, removed within their grace period.
- ``docker_rollout`` ..... updates without a gap: the new revision behind the serving one.
- ``docker_network`` ..... the models' network and the stable endpoint (an alias held by
  another model is a ``ContainerConflict``).
- ``docker_debug`` ....... the debug ports: who holds them.
- ``docker_probe`` ....... the readiness probe (HTTP GET on the models' network).
- ``docker_status`` ...... pure: a container → ``RunnerStatus`` / ``Rollout``.
- ``docker_engine`` ...... the connection; engine errors → ours, by operation.
- ``docker_events`` ...... the engine's event stream, filtered by our labels.

The rules (docs/design.md names them), one place each:

- image pull policy ...... ``Containers.create``.
- removal on stop ........ ``apply`` / ``delete`` (see "Stopped containers" below).
- volumes ................ ``docker_plan.mounts_for``.
- debug ports ............ ``docker_debug.claim`` and ``docker_plan.debug_port_map``.
- enabled switch ......... ``_require_enabled``: ``RunnerDisabled`` from every call.
- names and labels ....... ``docker_plan.plan``; ownership from labels only
  (``Containers.not_a_strangers``).
- the stable endpoint .... ``docker_plan.stable_alias`` on every serving container;
  ``ModelsNetwork.check_endpoint``.
- updates without a gap .. ``docker_rollout``; a model whose new container publishes debug
  ports (one container at a time can bind them) is replaced in place with a short gap
  (``_replace``: created before the old one goes, so its claim never lapses), and its
  status says so.
- the grace period ....... ``Containers.remove``.
- security defaults ...... ``docker_plan`` (no privileged, no host network,
  ``no-new-privileges``, capabilities dropped, read-only ``/data`` and ``/models``).
- engine errors .......... ``docker_engine.RULES``, by operation (``Engine.guard``).

Stopped containers (removal on stop). Containers are not created with Docker's AutoRemove: an
auto-removed container takes its exit code and OOM flag with it, and a model that crashed
must say why ("exit code 3", "OOM-killed"). Instead a stopped container stays, stopped and
never restarted, only as the record of how it ended — ``observe`` reports it as ``exited``
with its code — until the next ``apply`` removes it and creates a fresh one, or ``delete``
removes it. Nothing in a stopped container is ever used again, so the storage folder stays
the only persistence; and no state lives in this process, so a restarted operator reads the
same story from the engine.

Idempotence. ``apply`` lists the model's containers (by owner label) and compares the serving
one's spec-hash label with the hash of what the workload asks for (``docker_plan``); when
they match and it runs, nothing is written.

Thread safety: one runner may be used from several threads (for different models); the
debug claim is decided and taken under a lock.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import docker
import docker.errors
from docker.models.containers import Container

from mlplatform import errors
from mlplatform.config import Settings
from mlplatform.models.spec import container_name
from mlplatform.runners import base, docker_debug, docker_plan, docker_probe, docker_status
from mlplatform.runners.docker_containers import Containers
from mlplatform.runners.docker_debug import DebugClaim
from mlplatform.runners.docker_engine import Engine, Operation
from mlplatform.runners.docker_events import DockerEventStream
from mlplatform.runners.docker_network import ModelsNetwork
from mlplatform.runners.docker_rollout import Rollouts
from mlplatform.runners.docker_status import RUNNING, ending, holds_alias, status_of


class DockerRunner:
    """Runs workloads as Docker containers; one per settings object, for the process's life."""

    type = "docker"
    # Every container of a model is found by its owner uid, whatever its id: an id change is
    # rolled out behind the serving container and the old id's goes when the new one takes
    # over, so the core has no old id to retire (nor a listing to pay for it).
    one_workload_per_owner = True

    def __init__(self, settings: Settings, *, min_ready: float = base.MIN_READY_SECONDS) -> None:
        if settings.runners_docker_network in docker_plan.FORBIDDEN_NETWORKS:
            raise errors.ConfigurationError(
                f'RUNNERS_DOCKER_NETWORK must name a user-defined network, not "'
                f'{settings.runners_docker_network}" (endpoints resolve by container name)'
            )
        self._settings = settings
        self._engine = Engine(settings)
        self._debug_lock = threading.Lock()
        self._network = ModelsNetwork(self._engine, settings)
        self._containers = Containers(self._engine, settings, self._network)
        self._rollouts = Rollouts(self._containers, self._network, min_ready=min_ready)

    def close(self) -> None:
        """Drop the engine connection (a later call connects again)."""
        self._engine.close()

    # --- the Runner interface ----------------------------------------------------------

    def apply(self, workload: base.Workload) -> base.RunnerStatus:
        """Converge: create, roll out a new revision behind the serving one, or leave alone."""
        self._require_enabled()
        if workload.spec.suspend:
            return self.delete(workload)
        claiming = workload.spec.debug and self._settings.runners_docker_host_port_debug
        with self._debug_lock if claiming else contextlib.nullcontext():
            return self._apply(workload)

    def observe(self, workload: base.Workload) -> base.RunnerStatus:
        """Report running / starting / exited (code, OOM) / missing; writes nothing."""
        self._require_enabled()
        client = self._engine.client()
        mine = self._containers.read(client, workload, check_name=True)
        self._containers.remember(workload, mine)
        found = self._containers.sort(mine, workload, None)
        claim = docker_debug.claim(self._engine, client, self._settings, workload)
        if found.serving is None:
            if found.candidate is not None:
                # Nothing serves; the next apply makes the new revision the serving one.
                return self._status(found.candidate, workload, claim, action=base.Action.NONE)
            return docker_status.missing(workload, claim)
        rollout = None
        if found.candidate is not None:
            rollout = docker_status.rollout(
                found.candidate,
                message="the new revision is starting",
                output=self._containers.last_output(found.candidate),
            )
        return self._status(
            found.serving, workload, claim, action=base.Action.NONE, rollout=rollout
        )

    def delete(self, workload: base.Workload) -> base.RunnerStatus:
        """Remove every container of the model (storage kept); missing is fine. Containers
        another manifest of the model now runs (the file moved) are left alone."""
        self._require_enabled()
        client = self._engine.client()
        found = self._containers.find(client, workload, revision=None)
        name = container_name(workload.spec.id)
        every = found.every()
        if not every:
            return base.RunnerStatus(
                state=base.State.REMOVED, workload_name=name, details={"containerName": name}
            )
        theirs = [c for c in every if _moved_away(c, workload)]
        if theirs and len(theirs) == len(every):
            # Another manifest runs this model now (the file moved): not this workload's to
            # remove.
            source = theirs[0].labels.get(base.LABEL_SOURCE)
            return base.RunnerStatus(
                state=base.State.REMOVED,
                workload_id=theirs[0].id,
                workload_name=str(theirs[0].name),
                message=f"container {theirs[0].name} now belongs to {source}; left running",
                details={"containerName": str(theirs[0].name)},
            )
        every = [c for c in every if c not in theirs]
        self._containers.remove_all(every)
        main = found.serving if found.serving in every else every[0]
        return base.RunnerStatus(
            state=base.State.REMOVED,
            action=base.Action.REMOVED,
            workload_id=main.id,
            workload_name=str(main.name),
            message="container removed; storage kept",
            details={"containerName": str(main.name)},
        )

    def probe(self, workload: base.Workload, status: base.RunnerStatus) -> base.ProbeResult:
        """One HTTP GET of the readiness probe against the serving container's IP."""
        self._require_enabled()
        readiness = workload.spec.container.readiness_probe
        if readiness is None:
            return base.ProbeResult(ok=True, message="no readiness probe")
        client = self._engine.client()
        try:
            container = self._containers.get(
                client, status.workload_id or container_name(workload.spec.id)
            )
        except errors.RunnerError as error:
            if isinstance(error.__cause__, docker.errors.NotFound):
                return base.ProbeResult(ok=False, message="the container is not running")
            raise
        return docker_probe.probe(container, readiness, self._network.name)

    def list_owned(self) -> list[base.OwnedWorkload]:
        """Every container labelled managed-by mlplatform and this controller."""
        self._require_enabled()
        client = self._engine.client()
        owned_filter: dict[str, str | list[str] | bool] = {
            "label": docker_plan.owned_label_filter(self._settings.controller)
        }
        with self._engine.guard(Operation.LIST):
            found = client.containers.list(all=True, sparse=True, filters=owned_filter)
        owned = []
        for container in found:
            labels: dict[str, str] = container.attrs.get("Labels") or {}
            model_id = labels.get(base.LABEL_MODEL_ID)
            if model_id is None:
                continue
            owned.append(
                base.OwnedWorkload(
                    owner=base.owner_from_labels(labels),
                    model_id=model_id,
                    workload_id=str(container.id),
                    workload_name=str(container.attrs["Names"][0]).lstrip("/"),
                    revision=labels.get(base.LABEL_SPEC_HASH, ""),
                    state=docker_status.state(str(container.attrs.get("State", "")), error=""),
                    source=labels.get(base.LABEL_SOURCE),
                    mounts=tuple(
                        (str(m.get("Destination")), str(m.get("Source")))
                        for m in container.attrs.get("Mounts") or []
                        if m.get("Type") == "bind"
                    ),
                )
            )
        return owned

    def remove_owned(self, owned: base.OwnedWorkload) -> None:
        """Remove one container found by ``list_owned``, after checking its labels again."""
        self._require_enabled()
        client = self._engine.client()
        try:
            with self._engine.guard(Operation.INSPECT, owned.workload_name):
                container = client.containers.get(owned.workload_id)
        except errors.RunnerError as error:
            if isinstance(error.__cause__, docker.errors.NotFound):
                return
            raise
        labels = container.labels
        if labels.get(base.LABEL_MANAGED_BY) != base.MANAGED_BY or (
            labels.get(base.LABEL_CONTROLLER) != self._settings.controller
        ):
            raise errors.ContainerConflict(
                f"container {owned.workload_name} is not managed by this controller"
            )
        self._containers.remove(container)

    def logs(
        self, namespace: str, name: str, *, previous: bool, tail: int | None, follow: bool
    ) -> Iterator[bytes]:
        """The output of the model's container (``docker logs``): the one that serves (else
        the newest); ``previous``: the newest that stopped, while the engine still holds it
        (a crashed container is kept until its restart replaces it)."""
        self._require_enabled()
        client = self._engine.client()
        labels = [
            *docker_plan.owned_label_filter(self._settings.controller),
            f"{base.LABEL_OWNER_NAMESPACE}={namespace}",
            f"{base.LABEL_OWNER_NAME}={name}",
        ]
        with self._engine.guard(Operation.LIST, f"of {namespace}/{name}"):
            found = client.containers.list(all=True, filters={"label": labels})
        mine = [c for c in found if not docker_plan.is_candidate_name(str(c.name))]
        mine.sort(key=lambda c: str(c.attrs.get("Created", "")), reverse=True)
        if previous:
            stopped = [c for c in mine if status_of(c) not in (*RUNNING, "created")]
            if not stopped:
                raise LookupError(
                    f"no terminated container of {namespace}/{name} on the engine (a crashed "
                    "one is kept only until its restart; its last lines are in the status, "
                    "lastFailure.message)"
                )
            chosen = stopped[0]
        else:
            running = [c for c in mine if status_of(c) in RUNNING]
            if not (running or mine):
                raise LookupError(
                    f"no container of {namespace}/{name} (controller "
                    f"{self._settings.controller}) on this engine"
                )
            chosen = (running or mine)[0]
        with self._engine.guard(Operation.LOGS, str(chosen.name)):
            stream = chosen.logs(
                stdout=True,
                stderr=True,
                stream=True,
                follow=follow,
                tail="all" if tail is None else tail,
            )
        return self._guarded(stream, str(chosen.name))

    def _guarded(self, stream: Iterator[bytes], name: str) -> Iterator[bytes]:
        with self._engine.guard(Operation.LOGS, name):
            yield from stream

    def stop_writes(self) -> None:
        """No new engine writes from now on (the process is stopping); see ``Engine``."""
        self._engine.stop_writes()

    def events(self) -> DockerEventStream:
        """A stream of engine events about this controller's containers (no reconnects)."""
        self._require_enabled()
        return DockerEventStream(self._engine, self._settings.controller)

    # --- apply, step by step -----------------------------------------------------------

    def _apply(self, workload: base.Workload) -> base.RunnerStatus:
        client = self._engine.client()
        claim = docker_debug.claim(self._engine, client, self._settings, workload)
        plan = docker_plan.plan(workload, self._settings, debug_base=claim.first_port)
        found = self._containers.find(
            client, workload, revision=plan.spec_hash, check_name=False, reuse=True
        )
        serving, candidate = found.serving, found.candidate
        self._containers.remove_all(found.leftovers)

        if candidate is not None and (
            serving is None or holds_alias(candidate, self._network.name, plan.aliases[0])
        ):
            # Nothing else serves, or a takeover was under way: the new revision takes over.
            if status_of(candidate) in RUNNING:
                return self._rollouts.take_over(
                    client, workload, plan, candidate=candidate, serving=serving, claim=claim
                )
            if serving is None and _never_started(candidate):
                # An in-place replacement cut short after the old container went: finish it
                # (the new one carries the model's debug-port claim; removing it would let
                # the claim lapse).
                self._containers.rename(client, workload, candidate, plan.name)
                failed = self._start(candidate)
                return self._status(
                    candidate, workload, claim, action=base.Action.REPLACED, message=failed
                )
            self._containers.remove_all([candidate])
            candidate = None

        if serving is not None and _current(serving, plan, self._network.name):
            if candidate is not None:
                self._containers.remove_all([candidate])  # a rollout the spec went back on
            state = serving.attrs["State"]
            if state["Status"] in (*RUNNING, "restarting"):
                return self._status(serving, workload, claim, action=base.Action.NONE)
            if state["Status"] == "created" and not state.get("Error"):
                failed = self._start(serving)
                return self._status(
                    serving, workload, claim, action=base.Action.CREATED, message=failed
                )
            message = f"replaced the stopped container ({ending(state)})"
            return self._replace(client, workload, plan, claim, old=serving, message=message)

        if serving is None:
            return self._create(client, workload, plan, claim, action=base.Action.CREATED)

        if status_of(serving) not in RUNNING or plan.debug_ports:
            # Nothing to keep serving (it stopped), or the new container publishes host
            # ports, which only one container can bind: replace in place, with a short gap.
            # (A container that publishes and is replaced by one that does not is rolled
            # out without a gap: the ports go free when it goes.)
            message = (
                "replaced the container: its spec changed (debug ports can be bound by one "
                "container at a time, so the update had a short gap)"
                if status_of(serving) in RUNNING
                else f"replaced the stopped container ({ending(serving.attrs['State'])})"
            )
            if candidate is not None:
                self._containers.remove_all([candidate])
            return self._replace(client, workload, plan, claim, old=serving, message=message)

        return self._rollouts.step(
            client, workload, plan, serving=serving, candidate=candidate, claim=claim
        )

    def _create(
        self,
        client: docker.DockerClient,
        workload: base.Workload,
        plan: docker_plan.ContainerPlan,
        claim: DebugClaim,
        *,
        action: base.Action,
        message: str = "",
    ) -> base.RunnerStatus:
        """Create and start the model's container under its contract name and the alias."""
        self._network.check_endpoint(client, workload, plan.aliases[0])
        container, pulled = self._containers.create(client, workload, plan, candidate=False)
        failed = self._start(container)
        return self._status(
            container, workload, claim, action=action, pulled=pulled, message=failed or message
        )

    def _replace(
        self,
        client: docker.DockerClient,
        workload: base.Workload,
        plan: docker_plan.ContainerPlan,
        claim: DebugClaim,
        *,
        old: Container,
        message: str,
    ) -> base.RunnerStatus:
        """Replace ``old`` in place: the new container is created (under its temporary
        name) before ``old`` goes, then renamed and started.

        So the model always has a container: the debug-port claim its label carries never
        lapses (docs/design.md, "Debug ports"), and a create that fails (a missing image)
        leaves ``old`` serving. A process killed in between leaves a created temporary
        container, which the next apply removes before doing this again.
        """
        self._network.check_endpoint(client, workload, plan.aliases[0])
        new, pulled = self._containers.create(client, workload, plan, candidate=True, serve=True)
        self._containers.remove_all([old])
        self._containers.rename(client, workload, new, plan.name)
        failed = self._start(new)
        return self._status(
            new,
            workload,
            claim,
            action=base.Action.REPLACED,
            pulled=pulled,
            message=failed or message,
        )

    def _status(
        self, container: Container, workload: base.Workload, claim: DebugClaim, **how: Any
    ) -> base.RunnerStatus:
        """``docker_status.runner_status``, with a stopped container's last output."""
        output = self._containers.last_output(container)
        return docker_status.runner_status(container, workload, claim, output=output, **how)

    def _start(self, container: Container) -> str:
        """Start ``container`` and read it back; why it failed to start, or ""."""
        failed = ""
        try:
            self._containers.start(container)
        except errors.StartFailed as error:
            # A bad command fails here; the stopped container keeps the exit code as the record.
            failed = error.message
        self._containers.reload(container)
        return failed

    def _require_enabled(self) -> None:
        if not self._settings.runners_docker_enabled:
            raise errors.RunnerDisabled(
                "the Docker runner is disabled: set RUNNERS_DOCKER_ENABLED=true to enable it"
            )


def _current(container: Container, plan: docker_plan.ContainerPlan, network: str) -> bool:
    """Whether ``container`` is what ``plan`` asks for: same spec hash, on the stable alias.

    (A container made before the alias existed is rolled over to one that has it.)
    """
    if container.labels.get(base.LABEL_SPEC_HASH) != plan.spec_hash:
        return False
    return status_of(container) not in RUNNING or holds_alias(container, network, plan.aliases[0])


def _never_started(container: Container) -> bool:
    """Whether ``container`` was created and never started (nor failed to start)."""
    state = container.attrs.get("State") or {}
    return state.get("Status") == "created" and not state.get("Error")


def _moved_away(container: Container, workload: base.Workload) -> bool:
    """Whether ``container`` now belongs to another manifest of the model (the file moved)."""
    source = container.labels.get(base.LABEL_SOURCE)
    return workload.source is not None and source is not None and source != workload.source
