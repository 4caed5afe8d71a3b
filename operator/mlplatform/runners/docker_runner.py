"""The Docker runner: one serving container per MLModel, on one engine, found by its labels.

It fills the runner contract (``base.RunnerStatus``) from the container that serves the
model: the workload is that container (id, name, spec-hash label as revision), an exited
container's code and OOM flag are its ``Termination``, the debug-port claim is
``DebugPorts``, a new revision being brought up behind it is a ``Rollout``, and ``details``
carries what only Docker knows (``containerId``, ``containerName``, ``imageId``,
``hostPorts``). The serving container's readiness and the restart count are left to the core.

The rules (docs/design.md names them), one place each:

- image pull policy ...... ``_create_container``: created straight from a present image;
  a missing one is pulled per ``imagePullPolicy`` (``Always`` pulls whenever a container is
  created, ``Never`` fails); a missing or unpullable image raises ``ImageNotFound`` /
  ``ImagePullFailed`` naming it.
- removal on stop ........ ``apply`` / ``delete`` (see "Stopped containers" below).
- volumes ................ ``docker_plan.mounts_for``.
- debug ports ............ ``_debug_claim`` (who holds them) and ``docker_plan.debug_port_map``.
- enabled switch ......... ``_require_enabled``: ``RunnerDisabled`` from every call.
- names and labels ....... ``docker_plan.plan``; ownership is read from labels only
  (``_not_ours``): a same-named container that is not ours raises ``ContainerConflict`` and
  is never touched.
- the stable endpoint .... ``docker_plan.stable_alias`` on every serving container;
  ``_check_endpoint``: an alias held by another model is a ``ContainerConflict``.
- updates without a gap .. ``_roll_out`` and ``_promote`` (below).
- the grace period ....... ``_remove``: every stop waits the container's own stop timeout
  (``spec.container.terminationGracePeriodSeconds``, set at create).
- security defaults ...... ``docker_plan`` (no privileged, no host network,
  ``no-new-privileges``, capabilities dropped, read-only ``/data`` and ``/models``).
- engine errors .......... ``docker_engine.RULES``, by operation (``Engine.guard``).

Updates without a gap. When the spec (or the id) of a model whose container runs changes,
the old container keeps serving while a new one is created under a temporary name
(``<name>-<version>_<revision>``) with no alias. Each ``apply`` moves the update on: once the
new container has run for the minimum ready time and passes its readiness probe, it joins
the network under the stable alias (both answer for a moment), the old one leaves the
network, is stopped (its grace period) and removed, and the new one is renamed to the
contract name ``<name>-<version>``. Until then the status describes the serving container
with a ``Rollout`` beside it; if the new one crashes, cannot be pulled or never passes its
probe, the old one keeps serving and the rollout says why (the core backs off re-creating the
new one, never touching the old). Every step is idempotent and read back from the engine (the
alias and the temporary name are the only state), so a process killed in the middle finishes
the update after its restart. The exception: a model that publishes debug ports (one
container at a time can bind them) is replaced with a short gap, and its status says so.

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

Debug ports. With ``RUNNERS_DOCKER_HOST_PORT_DEBUG=P``, the claim belongs to the
container labelled ``mlplatform.dev/debug-ports`` (this controller's); if none is, the first
model with ``debug: true`` to be applied takes it. The holder keeps it until its container is
removed. The others run unpublished and their status names the holder; because the decision
is part of the spec hash, the next ``apply`` after the holder goes publishes their ports.

Thread safety: one runner may be used from several threads (for different models); the
debug claim is decided and taken under a lock. The probe talks to the container's IP on the
models' network, so the operator must run where that network is routable (the engine's
host, or a container on it).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import http.client
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn

import docker
import docker.errors
import docker.utils
from docker.models.containers import (  # type: ignore[attr-defined]  # see _create
    Container,
    _create_container_args,
)
from docker.models.networks import Network

from mlplatform import errors
from mlplatform.config import Settings
from mlplatform.models import timestamps
from mlplatform.models.spec import ReadinessProbe, container_name
from mlplatform.models.status import Reason
from mlplatform.runners import base, docker_plan
from mlplatform.runners.docker_engine import Engine, Operation
from mlplatform.runners.docker_events import DockerEventStream

# How long a read waits for a container being removed (``docker rm -f``) to be gone.
REMOVAL_WAIT_SECONDS = 5
_ZERO_TIME = "0001-01-01T00:00:00Z"
_RUNNING = ("running", "paused")
_STARTING = ("created", "restarting")
# How soon to look at a new revision again while it is starting (it has no probe period yet).
_ROLLOUT_RECHECK = 0.25
# Seconds both containers answer on the stable alias before the old one leaves the network:
# a client that looked the name up just before the new one joined got the old address only,
# and must have connected by then.
SWITCH_SETTLE_SECONDS = 1.0
# How old an observe's reading may be for the apply after it to act on it (seconds).
_READING_FRESH = 1.0


@dataclass
class _Containers:
    """What the engine holds for one model, sorted by role."""

    serving: Container | None = None  # holds (or is to hold) the stable endpoint
    candidate: Container | None = None  # the desired revision, brought up behind it
    leftovers: list[Container] = field(default_factory=list)  # anything else of the model


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
        self._network_lock = threading.Lock()
        self._network_known = False
        self.min_ready = min_ready
        self.switch_settle = SWITCH_SETTLE_SECONDS
        # What the last observe read, per (thread, owner), for the apply that follows it.
        self._readings: dict[tuple[int, str], tuple[float, list[Container]]] = {}
        self._readings_lock = threading.Lock()

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
        mine = self._read(client, workload, check_name=True)
        self._remember(workload, mine)
        found = self._sort(mine, workload, None)
        _, holder = self._debug_claim(client, workload)
        if found.serving is None:
            if found.candidate is not None:
                # Nothing serves; the next apply makes the new revision the serving one.
                return self._status(
                    found.candidate, workload, action=base.Action.NONE, holder=holder
                )
            return self._missing(workload, holder)
        rollout = None
        if found.candidate is not None:
            rollout = self._rollout(found.candidate, message="the new revision is starting")
        return self._status(
            found.serving, workload, action=base.Action.NONE, holder=holder, rollout=rollout
        )

    def delete(self, workload: base.Workload) -> base.RunnerStatus:
        """Remove every container of the model (storage kept); missing is fine. Containers
        another manifest of the model now runs (the file moved) are left alone."""
        self._require_enabled()
        client = self._engine.client()
        found = self._containers(client, workload, revision=None)
        name = container_name(workload.spec.id)
        details = {"containerName": name}
        every = [c for c in (found.serving, found.candidate, *found.leftovers) if c is not None]
        if not every:
            return base.RunnerStatus(state=base.State.REMOVED, workload_name=name, details=details)
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
        self._remove_all(every)
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
        probe = workload.spec.container.readiness_probe
        if probe is None:
            return base.ProbeResult(ok=True, message="no readiness probe")
        client = self._engine.client()
        try:
            container = self._get(client, status.workload_id or container_name(workload.spec.id))
        except errors.RunnerError as error:
            if isinstance(error.__cause__, docker.errors.NotFound):
                return base.ProbeResult(ok=False, message="the container is not running")
            raise
        return self._probe_container(container, probe)

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
                    state=_state(str(container.attrs.get("State", "")), error=""),
                    source=labels.get(base.LABEL_SOURCE),
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
        self._remove(container)

    def events(self) -> DockerEventStream:
        """A stream of engine events about this controller's containers (no reconnects)."""
        self._require_enabled()
        return DockerEventStream(self._engine, self._settings.controller)

    # --- apply, step by step -----------------------------------------------------------

    def _apply(self, workload: base.Workload) -> base.RunnerStatus:
        client = self._engine.client()
        debug_base, holder = self._debug_claim(client, workload)
        plan = docker_plan.plan(workload, self._settings, debug_base=debug_base)
        found = self._containers(
            client, workload, revision=plan.spec_hash, check_name=False, reuse=True
        )
        serving, candidate = found.serving, found.candidate
        self._remove_all(found.leftovers)

        if candidate is not None and (
            serving is None or _holds_alias(candidate, self._network_name, plan.aliases[0])
        ):
            # Nothing else serves, or a takeover was under way: the new revision takes over.
            if _status_of(candidate) in _RUNNING:
                return self._take_over(
                    client, workload, plan, candidate=candidate, serving=serving, holder=holder
                )
            self._remove_all([candidate])
            candidate = None

        if serving is not None and _current(serving, plan, self._network_name):
            if candidate is not None:
                self._remove_all([candidate])  # a rollout the spec went back on
            state = serving.attrs["State"]
            if state["Status"] in (*_RUNNING, "restarting"):
                return self._status(serving, workload, action=base.Action.NONE, holder=holder)
            if state["Status"] == "created" and not state.get("Error"):
                return self._start(serving, workload, action=base.Action.CREATED, holder=holder)
            message = f"replaced the stopped container ({_ending(state)})"
            self._remove_all([serving])
            return self._create(
                client, workload, plan, holder=holder, action=base.Action.REPLACED, message=message
            )

        if serving is None:
            return self._create(
                client, workload, plan, holder=holder, action=base.Action.CREATED, message=""
            )

        if _status_of(serving) not in _RUNNING or plan.debug_ports or _publishes(serving):
            # Nothing to keep serving (it stopped), or host ports only one container can
            # bind: replace in place, with a short gap.
            message = (
                "replaced the container: its spec changed (debug ports can be bound by one "
                "container at a time, so the update had a short gap)"
                if _status_of(serving) in _RUNNING
                else f"replaced the stopped container ({_ending(serving.attrs['State'])})"
            )
            self._remove_all([c for c in (serving, candidate) if c is not None])
            return self._create(
                client, workload, plan, holder=holder, action=base.Action.REPLACED, message=message
            )

        return self._roll_out(
            client, workload, plan, serving=serving, candidate=candidate, holder=holder
        )

    def _roll_out(
        self,
        client: docker.DockerClient,
        workload: base.Workload,
        plan: docker_plan.ContainerPlan,
        *,
        serving: Container,
        candidate: Container | None,
        holder: str | None,
    ) -> base.RunnerStatus:
        """Move an update on by one step while ``serving`` keeps serving."""

        def behind(rollout: base.Rollout) -> base.RunnerStatus:
            return self._status(
                serving, workload, action=base.Action.NONE, holder=holder, rollout=rollout
            )

        if candidate is not None and _status_of(candidate) not in (*_RUNNING, *_STARTING):
            # Its failure was reported (and backed off by the core) before this apply.
            self._remove_all([candidate])
            candidate = None
        if candidate is None:
            try:
                candidate, _ = self._create_container(client, workload, plan, candidate=True)
                self._start_container(candidate)
            except (errors.ImageNotFound, errors.ImagePullFailed, errors.StartFailed) as error:
                if candidate is not None:
                    with contextlib.suppress(errors.RunnerError):
                        self._engine_reload(candidate)
                    if _status_of(candidate) not in _STARTING:
                        return behind(self._rollout(candidate))
                    self._remove_all([candidate])
                reason = _REASONS.get(type(error), Reason.START_FAILED)
                return behind(
                    base.Rollout(
                        revision=plan.spec_hash,
                        workload_name=plan.candidate_name,
                        problem=base.Problem(reason, error.message),
                        message=error.message,
                    )
                )
            self._engine_reload(candidate)
        if _status_of(candidate) not in _RUNNING:
            return behind(self._rollout(candidate))
        up = _up_for(candidate)
        if up < self.min_ready:
            return behind(
                self._rollout(
                    candidate,
                    message="the new revision started; waiting to see it stay up",
                    recheck_after=max(self.min_ready - up, 0.05),
                )
            )
        probe = workload.spec.container.readiness_probe
        if probe is not None:
            if up < probe.initial_delay_seconds:
                return behind(
                    self._rollout(
                        candidate,
                        message="the new revision waits for initialDelaySeconds",
                        recheck_after=probe.initial_delay_seconds - up,
                    )
                )
            result = self._probe_container(candidate, probe)
            if not result.ok:
                waiting = f"the new revision is not ready: readiness probe failed: {result.message}"
                return behind(
                    self._rollout(
                        candidate,
                        message=waiting,
                        waiting=base.Problem(Reason.PROBE_FAILED, waiting),
                        recheck_after=float(probe.period_seconds),
                    )
                )
        return self._take_over(
            client, workload, plan, candidate=candidate, serving=serving, holder=holder
        )

    def _take_over(
        self,
        client: docker.DockerClient,
        workload: base.Workload,
        plan: docker_plan.ContainerPlan,
        *,
        candidate: Container,
        serving: Container | None,
        holder: str | None,
    ) -> base.RunnerStatus:
        """The new revision answers on the stable endpoint, the old one leaves, then goes.

        Each step can be repeated: a takeover cut short (the process killed) is finished by
        the next apply, which finds the new container holding the alias.
        """
        network = self._network(client)
        self._check_endpoint(client, workload, plan.aliases[0])
        if not _holds_alias(candidate, self._network_name, plan.aliases[0]):
            # Joined under its temporary name only; join again under the stable names, then
            # give the lookups made before (which could only return the old address) the
            # time to connect before the old container leaves.
            with (
                self._engine.guard(Operation.DISCONNECT_NETWORK, str(candidate.name)),
                contextlib.suppress(docker.errors.APIError),
            ):
                network.disconnect(candidate, force=True)
            with self._engine.guard(Operation.CONNECT_NETWORK, str(candidate.name)):
                network.connect(candidate, aliases=list(plan.aliases))
            if serving is not None and _status_of(serving) in _RUNNING:
                time.sleep(self.switch_settle)
        if serving is not None:
            # Off the network first, so no new request reaches it, then stopped and removed.
            with (
                contextlib.suppress(errors.RunnerError),
                self._engine.guard(Operation.DISCONNECT_NETWORK, str(serving.name)),
            ):
                network.disconnect(serving, force=True)
            self._remove_all([serving])
        if candidate.name != plan.name:
            try:
                with self._engine.guard(Operation.RENAME, plan.name):
                    candidate.rename(plan.name)
            except errors.ContainerConflict as error:
                self._name_taken(client, workload, error)
        self._engine_reload(candidate)
        return self._status(
            candidate,
            workload,
            action=base.Action.REPLACED,
            holder=holder,
            message="replaced the container without a gap: the new revision took over",
        )

    def _create(
        self,
        client: docker.DockerClient,
        workload: base.Workload,
        plan: docker_plan.ContainerPlan,
        *,
        holder: str | None,
        action: base.Action,
        message: str,
    ) -> base.RunnerStatus:
        """Create and start the model's container under its contract name and the alias."""
        self._check_endpoint(client, workload, plan.aliases[0])
        container, pulled = self._create_container(client, workload, plan, candidate=False)
        return self._start(
            container, workload, action=action, holder=holder, pulled=pulled, message=message
        )

    def _create_container(
        self,
        client: docker.DockerClient,
        workload: base.Workload,
        plan: docker_plan.ContainerPlan,
        *,
        candidate: bool,
    ) -> tuple[Container, bool]:
        """Create (not start) a container for ``plan``; a candidate gets no alias.

        (The container, whether its image was pulled.)
        """
        self._ensure_network(client)
        for folder in plan.folders_to_create():
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise errors.StartFailed(f"cannot create the folder {folder}: {error}") from error
        name = plan.candidate_name if candidate else plan.name
        args = dict(plan.create_args, name=name)
        if not candidate:
            endpoint = client.api.create_endpoint_config(aliases=list(plan.aliases))
            args["networking_config"] = {self._network_name: endpoint}
        policy = workload.spec.container.image_pull_policy
        pulled = False
        if policy == "Always":
            pulled = self._pull(client, plan.image)
        for attempt in range(3):
            try:
                with self._engine.guard(Operation.CREATE, name, image=plan.image):
                    container = _create(client, plan.image, args)
                break
            except errors.ImageNotFound as error:
                # Created straight away (one request when the image is there, as usual);
                # only a missing image asks for the pull policy.
                if policy == "Never" or pulled:
                    raise errors.ImageNotFound(
                        f'image "{plan.image}" is not present on the Docker engine and '
                        "imagePullPolicy is Never"
                        if policy == "Never"
                        else error.message
                    ) from error
                pulled = self._pull(client, plan.image)
            except errors.ContainerConflict as error:
                self._name_taken(client, workload, error)
            except errors.RunnerError as error:
                if attempt or not _network_missing(error):
                    raise
                self._network_known = False
                self._ensure_network(client)
        return container, pulled

    def _start(
        self,
        container: Container,
        workload: base.Workload,
        *,
        action: base.Action,
        holder: str | None,
        pulled: bool = False,
        message: str = "",
    ) -> base.RunnerStatus:
        try:
            self._start_container(container)
        except errors.StartFailed as error:
            # A bad command fails here; the stopped container keeps the exit code as the record.
            message = error.message
        self._engine_reload(container)
        return self._status(
            container, workload, action=action, holder=holder, pulled=pulled, message=message
        )

    def _start_container(self, container: Container) -> None:
        try:
            with self._engine.guard(Operation.START, str(container.name)):
                container.start()
        except errors.PortInUse:
            self._remove(container)
            raise

    def _engine_reload(self, container: Container) -> None:
        with self._engine.guard(Operation.INSPECT, str(container.name)):
            container.reload()

    # --- the network and the stable endpoint ---------------------------------------------

    @property
    def _network_name(self) -> str:
        return self._settings.runners_docker_network

    def _network(self, client: docker.DockerClient) -> Network:
        self._ensure_network(client)
        (network,) = self._networks(client, self._network_name)[:1]
        return network

    def _ensure_network(self, client: docker.DockerClient) -> None:
        """The models' network exists afterwards, exactly once under its name.

        Checked once per process: a create that finds it gone (someone removed it) makes
        the runner check again (``_create_container``).
        """
        if self._network_known:
            return
        name = self._network_name
        with self._network_lock:
            if self._network_known:
                return
            if self._networks(client, name):
                self._network_known = True
                return
            labels = {base.LABEL_MANAGED_BY: base.MANAGED_BY}
            with self._engine.guard(Operation.CREATE_NETWORK, name):
                created = client.networks.create(
                    name, driver="bridge", labels=labels, check_duplicate=True
                )
            # The engine does not make names unique: if another process created one at the
            # same moment, every racer keeps the oldest and removes its own.
            same = self._networks(client, name)
            oldest = min(same, key=lambda n: (str(n.attrs.get("Created")), str(n.id)))
            if oldest.id != created.id:
                with (
                    contextlib.suppress(errors.RunnerError),
                    self._engine.guard(Operation.REMOVE_NETWORK, name),
                ):
                    created.remove()
            self._network_known = True

    def _networks(self, client: docker.DockerClient, name: str) -> list[Network]:
        with self._engine.guard(Operation.INSPECT_NETWORK, name):
            return [n for n in client.networks.list(names=[name]) if n.name == name]

    def _check_endpoint(
        self, client: docker.DockerClient, workload: base.Workload, alias: str
    ) -> None:
        """The stable alias is this model's alone: another model's container holding it
        (any controller's) is a conflict, reported like a taken container name."""
        label = [
            f"{base.LABEL_MANAGED_BY}={base.MANAGED_BY}",
            f"{docker_plan.LABEL_ENDPOINT}={alias}",
        ]
        # Aliases are names on one network: only holders on the models' network collide.
        where: dict[str, str | list[str] | bool] = {"label": label, "network": self._network_name}
        with self._engine.guard(Operation.LIST, f"holding the endpoint {alias}"):
            holders = client.containers.list(all=True, sparse=True, filters=where)
        for holder in holders:
            labels: dict[str, str] = holder.attrs.get("Labels") or {}
            if labels.get(base.LABEL_OWNER_UID) == workload.owner.uid and (
                labels.get(base.LABEL_CONTROLLER) == self._settings.controller
            ):
                continue
            owner = base.owner_from_labels(labels)
            raise errors.ContainerConflict(
                f'the endpoint name "{alias}" is held by the container '
                f"{str(holder.attrs['Names'][0]).lstrip('/')} of {owner.key} (controller "
                f'"{labels.get(base.LABEL_CONTROLLER)}"); two models cannot share it'
            )

    # --- images ----------------------------------------------------------------------------

    def _pull(self, client: docker.DockerClient, image: str) -> bool:
        """Pull ``image`` (the pull policy asked for it); a typed error names it. True."""
        repository, tag = docker.utils.parse_repository_tag(image)
        with self._engine.guard(Operation.PULL, image, image=image):
            for line in client.api.pull(repository, tag=tag or "latest", stream=True, decode=True):
                if isinstance(line, dict) and line.get("error"):
                    raise docker.errors.APIError(str(line["error"]), explanation=line["error"])
        return True

    def _debug_claim(
        self, client: docker.DockerClient, workload: base.Workload
    ) -> tuple[int | None, str | None]:
        """(First host port if this model holds the debug claim, the holder's model id)."""
        first = self._settings.runners_docker_host_port_debug
        if not workload.spec.debug or first is None:
            return None, None
        owned: dict[str, str | list[str] | bool] = {
            "label": docker_plan.owned_label_filter(self._settings.controller)
        }
        with self._engine.guard(Operation.LIST, "claiming the debug ports"):
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
                return None, model_id
            if (
                labels.get(docker_plan.LABEL_DEBUG_REQUESTED)
                and container.attrs.get("State") in _RUNNING
            ):
                waiting.append((int(container.attrs.get("Created") or 0), model_id))
        # The ports are free: the oldest running claimer takes them (first come, first
        # served); a model not yet created queues behind every running one.
        older = [w for w in waiting if mine is None or w < (mine, workload.spec.id)]
        if older:
            return None, min(older)[1]
        return first, workload.spec.id

    # --- reading and removing containers -----------------------------------------------

    def _containers(
        self,
        client: docker.DockerClient,
        workload: base.Workload,
        *,
        revision: str | None,
        check_name: bool = True,
        reuse: bool = False,
    ) -> _Containers:
        """The model's containers by role.

        ``revision`` (the desired spec hash) picks the candidate; without it (observe,
        delete) any temporary-named container is the candidate. ``check_name``: a container
        of a stranger holding the model's contract name is a ``ContainerConflict`` (apply
        leaves that to the create, which the engine refuses). ``reuse``: take the reading
        the ``observe`` just before made in this thread (the core calls ``observe`` then
        ``apply``; one reading serves both), if it is fresh.
        """
        mine = self._reading(workload) if reuse else None
        if mine is None:
            mine = self._read(client, workload, check_name=check_name)
        return self._sort(mine, workload, revision)

    def _read(
        self, client: docker.DockerClient, workload: base.Workload, *, check_name: bool
    ) -> list[Container]:
        """Every container of the model (listed by its owner label, then inspected)."""
        name = container_name(workload.spec.id)
        label = [
            *docker_plan.owned_label_filter(self._settings.controller),
            f"{base.LABEL_OWNER_UID}={workload.owner.uid}",
        ]
        with self._engine.guard(Operation.LIST, f"of {workload.owner.key}"):
            listed = client.containers.list(all=True, sparse=True, filters={"label": label})
        names = {str(c.attrs["Names"][0]).lstrip("/"): str(c.id) for c in listed}
        if check_name and name not in names:
            self._not_a_strangers(client, workload, name)
        listed_now = [self._get_listed(client, i) for i in names.values()]
        return [c for c in listed_now if c is not None and not self._being_removed(client, c)]

    def _being_removed(self, client: docker.DockerClient, container: Container) -> bool:
        """Whether ``container`` is being removed (``docker rm -f`` outside us), waited for.

        It is gone in a moment: waiting for that makes it read as missing (to recreate), not
        as a crash, and frees its name for the create. A timeout (requests' errors are
        OSErrors) leaves it to the create's conflict path.
        """
        if _status_of(container) != "removing":
            return False
        with contextlib.suppress(docker.errors.DockerException, OSError):
            client.api.wait(str(container.id), timeout=REMOVAL_WAIT_SECONDS, condition="removed")
        return True

    def _remember(self, workload: base.Workload, mine: list[Container]) -> None:
        key = (threading.get_ident(), workload.owner.uid)
        with self._readings_lock:
            self._readings[key] = (time.monotonic(), mine)

    def _reading(self, workload: base.Workload) -> list[Container] | None:
        key = (threading.get_ident(), workload.owner.uid)
        with self._readings_lock:
            taken = self._readings.pop(key, None)
            # Readings nobody took (an observe with no apply after it) do not pile up.
            stale = [k for k, (at, _) in self._readings.items() if time.monotonic() - at > 5]
            for old in stale:
                del self._readings[old]
        if taken is None or time.monotonic() - taken[0] > _READING_FRESH:
            return None
        return taken[1]

    def _sort(
        self, mine: list[Container], workload: base.Workload, revision: str | None
    ) -> _Containers:
        name = container_name(workload.spec.id)
        found = _Containers()
        finals = [c for c in mine if not docker_plan.is_candidate_name(str(c.name))]
        candidates = [c for c in mine if docker_plan.is_candidate_name(str(c.name))]
        # The serving container: the one under the contract name of the spec's id, else the
        # one answering on the stable alias, else the newest.
        alias = docker_plan.stable_alias(workload.owner)
        finals.sort(
            key=lambda c: (
                str(c.name) == name,
                _holds_alias(c, self._network_name, alias),
                _status_of(c) in _RUNNING,
                str(c.attrs.get("Created", "")),
            ),
            reverse=True,
        )
        if finals:
            found.serving = finals[0]
            found.leftovers += finals[1:]
        wanted = [
            c
            for c in candidates
            if revision is None or c.labels.get(base.LABEL_SPEC_HASH) == revision
        ]
        wanted.sort(key=lambda c: str(c.attrs.get("Created", "")), reverse=True)
        if wanted:
            found.candidate = wanted[0]
        found.leftovers += [c for c in candidates if c is not found.candidate]
        return found

    def _get_listed(self, client: docker.DockerClient, container_id: str) -> Container | None:
        try:
            return self._get(client, container_id)
        except errors.RunnerError as error:
            if isinstance(error.__cause__, docker.errors.NotFound):
                return None  # removed since the listing
            raise

    def _get(self, client: docker.DockerClient, name_or_id: str) -> Container:
        with self._engine.guard(Operation.INSPECT, name_or_id):
            container: Container = client.containers.get(name_or_id)
        return container

    def _not_a_strangers(
        self, client: docker.DockerClient, workload: base.Workload, name: str
    ) -> None:
        """``ContainerConflict`` if a container that is not this model's holds ``name``."""
        try:
            container = self._get(client, name)
        except errors.RunnerError as error:
            if isinstance(error.__cause__, docker.errors.NotFound):
                return
            raise
        if container.name != name:  # the engine also matches id prefixes
            return
        problem = self._not_ours(container.labels, workload)
        if problem:
            raise errors.ContainerConflict(
                f"a container named {name} exists and {problem}; it is left untouched"
            )

    def _name_taken(
        self, client: docker.DockerClient, workload: base.Workload, error: errors.ContainerConflict
    ) -> NoReturn:
        """Create met a container holding the name: a stranger's is a conflict, ours is not.

        The engine answers 409 both for a foreign container and for one of ours still being
        removed (``docker rm -f`` racing this apply); the latter is a passing state, retried.
        """
        self._not_a_strangers(client, workload, container_name(workload.spec.id))
        raise errors.StartFailed(
            f"{error.message}; the name was held by a container of this model being removed, "
            "will retry"
        ) from error

    def _not_ours(self, labels: dict[str, str], workload: base.Workload) -> str:
        if labels.get(base.LABEL_MANAGED_BY) != base.MANAGED_BY:
            return "is not managed by mlplatform"
        controller = labels.get(base.LABEL_CONTROLLER)
        if controller != self._settings.controller:
            return f'belongs to the controller "{controller}"'
        if labels.get(base.LABEL_MODEL_ID) != workload.spec.id:
            return f'runs the model "{labels.get(base.LABEL_MODEL_ID)}"'
        key = (labels.get(base.LABEL_OWNER_NAMESPACE), labels.get(base.LABEL_OWNER_NAME))
        if key != (workload.owner.namespace, workload.owner.name):
            return f"belongs to {key[0]}/{key[1]}"
        return ""

    def _remove_all(self, containers: Sequence[Container]) -> None:
        """Remove several containers at once: one grace period for all, not one each."""
        if len(containers) <= 1:
            for container in containers:
                self._remove(container)
            return
        with concurrent.futures.ThreadPoolExecutor(len(containers)) as pool:
            for done in [pool.submit(self._remove, c) for c in containers]:
                done.result()

    def _remove(self, container: Container) -> None:
        """Stop within the container's grace period, then remove (the storage stays)."""
        grace = container.attrs.get("Config", {}).get("StopTimeout")
        try:
            if _status_of(container) in (*_RUNNING, "restarting"):
                with self._engine.guard(Operation.STOP, str(container.name)):
                    container.stop(timeout=_grace(grace))
            with self._engine.guard(Operation.REMOVE, str(container.name)):
                container.remove(force=True)
        except errors.RunnerError as error:
            cause = error.__cause__
            # Already gone, or already being removed: the outcome asked for.
            if isinstance(cause, docker.errors.NotFound) or (
                isinstance(cause, docker.errors.APIError) and cause.status_code == 409
            ):
                return
            raise

    def _require_enabled(self) -> None:
        if not self._settings.runners_docker_enabled:
            raise errors.RunnerDisabled(
                "the Docker runner is disabled: set RUNNERS_DOCKER_ENABLED=true to enable it"
            )

    # --- probing -----------------------------------------------------------------------

    def _probe_container(self, container: Container, probe: ReadinessProbe) -> base.ProbeResult:
        """One HTTP GET of ``probe`` against ``container``'s IP on the models' network."""
        if container.attrs["State"]["Status"] != "running":
            return base.ProbeResult(ok=False, message="the container is not running")
        networks = container.attrs["NetworkSettings"]["Networks"] or {}
        address = (networks.get(self._network_name) or {}).get("IPAddress")
        if not address:
            return base.ProbeResult(ok=False, message="the container has no address yet")
        get = probe.http_get
        url = f"http://{address}:{get.port}{get.path}"
        connection = http.client.HTTPConnection(address, get.port, timeout=probe.timeout_seconds)
        try:
            connection.request("GET", get.path, headers={"User-Agent": "mlplatform-probe"})
            code = connection.getresponse().status
        except (OSError, http.client.HTTPException) as error:
            return base.ProbeResult(ok=False, message=f"GET {url} failed: {error or 'timeout'}")
        finally:
            connection.close()
        if 200 <= code < 400:
            return base.ProbeResult(ok=True, message=f"GET {url} answered {code}")
        return base.ProbeResult(ok=False, message=f"GET {url} answered {code}")

    # --- status ------------------------------------------------------------------------

    def _missing(self, workload: base.Workload, holder: str | None) -> base.RunnerStatus:
        name = container_name(workload.spec.id)
        return base.RunnerStatus(
            state=base.State.MISSING,
            workload_name=name,
            message="no container",
            debug=self._debug_ports(workload, holder, bound=False),
            details={"containerName": name},
        )

    def _debug_ports(
        self, workload: base.Workload, holder: str | None, *, bound: bool
    ) -> base.DebugPorts | None:
        """The debug-port claim as this model sees it; None when it asks for no debug ports."""
        if not workload.spec.debug:
            return None
        if self._settings.runners_docker_host_port_debug is None:
            return base.DebugPorts(
                bound=False, holder=None, message="RUNNERS_DOCKER_HOST_PORT_DEBUG is not set"
            )
        other = holder if holder and holder != workload.spec.id else None
        message = f"debug ports are held by {other}" if other else ""
        return base.DebugPorts(bound=bound and other is None, holder=other, message=message)

    def _rollout(
        self,
        candidate: Container,
        *,
        message: str = "",
        waiting: base.Problem | None = None,
        recheck_after: float | None = None,
    ) -> base.Rollout:
        """The new revision as the core sees it: starting, waiting, or how it ended."""
        state_attrs: dict[str, Any] = candidate.attrs["State"]
        state = _state(str(state_attrs["Status"]), error=str(state_attrs.get("Error") or ""))
        termination = _termination(state_attrs) if state is base.State.EXITED else None
        problem = None
        if termination is not None:
            reason = Reason.OOM_KILLED if termination.oom_killed else Reason.CONTAINER_EXITED
            message = f"the new container {candidate.name} {_ending(state_attrs)}"
            problem = base.Problem(reason, message)
        elif state is base.State.STARTING:
            recheck_after = recheck_after or _ROLLOUT_RECHECK
        started = state_attrs.get("StartedAt")
        return base.Rollout(
            revision=candidate.labels.get(base.LABEL_SPEC_HASH),
            workload_name=str(candidate.name),
            workload_id=str(candidate.id),
            started_at=started if started and started != _ZERO_TIME else None,
            problem=problem,
            waiting=waiting,
            termination=termination,
            message=message or (problem.message if problem else ""),
            recheck_after=recheck_after,
        )

    def _status(
        self,
        container: Container,
        workload: base.Workload,
        *,
        action: base.Action,
        holder: str | None,
        pulled: bool = False,
        message: str = "",
        rollout: base.Rollout | None = None,
    ) -> base.RunnerStatus:
        attrs: dict[str, Any] = container.attrs
        state_attrs: dict[str, Any] = attrs["State"]
        error = str(state_attrs.get("Error") or "")
        state = _state(str(state_attrs["Status"]), error=error)
        bindings: dict[str, Any] = attrs["HostConfig"].get("PortBindings") or {}
        host_ports: dict[str, int] = {}
        debug_endpoints: list[str] = []
        for key, binds in sorted(bindings.items(), key=lambda kv: int(kv[0].split("/")[0])):
            for bind in binds or []:
                host_ip, host_port = bind.get("HostIp") or "0.0.0.0", int(bind["HostPort"])
                host_ports[key.split("/")[0]] = host_port
                debug_endpoints.append(f"http://{host_ip}:{host_port}")
        name = str(container.name)
        termination = _termination(state_attrs) if state is base.State.EXITED else None
        notes = [message] if message else []
        if termination is not None:
            notes.append(_ending(state_attrs))
        debug = self._debug_ports(workload, holder, bound=bool(debug_endpoints))
        if debug is not None and debug.holder:
            notes.append(debug.message)
        started = state_attrs.get("StartedAt")
        ports = workload.spec.container.ports
        alias = docker_plan.stable_alias(workload.owner)
        return base.RunnerStatus(
            state=state,
            action=action,
            workload_id=container.id,
            workload_name=name,
            revision=container.labels.get(base.LABEL_SPEC_HASH),
            # The stable endpoint first, then the container's own name (per version).
            endpoints=[f"http://{alias}:{port}" for port in ports]
            + [f"http://{name}:{port}" for port in ports],
            debug_endpoints=debug_endpoints,
            started_at=started if started and started != _ZERO_TIME else None,
            termination=termination,
            debug=debug,
            image_pulled=pulled,
            message="; ".join(notes),
            details={
                "containerId": container.id,
                "containerName": name,
                "imageId": attrs.get("Image"),
                "hostPorts": host_ports,
            },
            rollout=rollout,
        )


_REASONS: dict[type[errors.RunnerError], Reason] = {
    errors.ImageNotFound: Reason.IMAGE_NOT_FOUND,
    errors.ImagePullFailed: Reason.IMAGE_PULL_FAILED,
    errors.StartFailed: Reason.START_FAILED,
}


def _create(client: docker.DockerClient, image: str, args: dict[str, Any]) -> Container:
    """``containers.create`` plus what its high-level form does not pass on: the stop timeout.

    The same translation of the arguments (docker-py's own), then the low-level create.
    """
    kwargs = {k: v for k, v in args.items() if k != "stop_timeout"}
    kwargs.update(image=image, command=kwargs.get("command"), version=client.api.api_version)
    create_kwargs = _create_container_args(kwargs)
    create_kwargs["stop_timeout"] = args.get("stop_timeout")
    created = client.api.create_container(**create_kwargs)
    # Not inspected yet: the start comes next, and the inspect after it reads everything.
    container: Container = client.containers.prepare_model(
        {"Id": created["Id"], "Name": f"/{args['name']}", "State": {"Status": "created"}}
    )
    return container


def _current(container: Container, plan: docker_plan.ContainerPlan, network: str) -> bool:
    """Whether ``container`` is what ``plan`` asks for: same spec hash, on the stable alias.

    (A container made before the alias existed is rolled over to one that has it.)
    """
    if container.labels.get(base.LABEL_SPEC_HASH) != plan.spec_hash:
        return False
    return _status_of(container) not in _RUNNING or _holds_alias(
        container, network, plan.aliases[0]
    )


def _moved_away(container: Container, workload: base.Workload) -> bool:
    """Whether ``container`` now belongs to another manifest of the model (the file moved)."""
    source = container.labels.get(base.LABEL_SOURCE)
    return workload.source is not None and source is not None and source != workload.source


def _status_of(container: Container) -> str:
    return str((container.attrs.get("State") or {}).get("Status", "created"))


def _holds_alias(container: Container, network: str, alias: str) -> bool:
    networks = container.attrs.get("NetworkSettings", {}).get("Networks") or {}
    return alias in ((networks.get(network) or {}).get("Aliases") or [])


def _publishes(container: Container) -> bool:
    """Whether the container binds host ports (the debug ports)."""
    bindings = container.attrs.get("HostConfig", {}).get("PortBindings") or {}
    return any(binds for binds in bindings.values())


def _up_for(container: Container) -> float:
    """Seconds the container has been running (0 if it has not started)."""
    started = container.attrs["State"].get("StartedAt")
    if not started or started == _ZERO_TIME:
        return 0.0
    return max(0.0, time.time() - timestamps.parse(started))


def _grace(stop_timeout: Any) -> int:
    """The grace period a container was created with (Docker's default without one)."""
    return int(stop_timeout) if isinstance(stop_timeout, int) else DEFAULT_GRACE_SECONDS


def _network_missing(error: errors.RunnerError) -> bool:
    cause = error.__cause__
    return isinstance(cause, docker.errors.NotFound) and "network" in str(cause).lower()


# Containers created before the grace period was a spec field carry no stop timeout.
DEFAULT_GRACE_SECONDS = 10


def _state(status: str, *, error: str) -> base.State:
    if status in _RUNNING:
        return base.State.RUNNING
    if status in _STARTING and not error:
        return base.State.STARTING
    return base.State.EXITED


def _ending(state: dict[str, Any]) -> str:
    text = f"exited with code {state.get('ExitCode')}"
    if state.get("OOMKilled"):
        text += " (OOM-killed)"
    if state.get("Error"):
        text += f": {state['Error']}"
    return text


def _termination(state: dict[str, Any]) -> base.Termination:
    """How a stopped container ended, in the words Kubernetes uses for a container."""
    code = int(state["ExitCode"])
    oom = bool(state.get("OOMKilled"))
    error = str(state.get("Error") or "")
    finished = state.get("FinishedAt")
    return base.Termination(
        exit_code=code,
        oom_killed=oom,
        reason="OOMKilled" if oom else "Error" if code or error else "Completed",
        message=error,
        finished_at=finished if finished and finished != _ZERO_TIME else None,
    )
