"""The Docker runner: one container per MLModel, on one engine, found again by its labels.

It fills the runner contract (``base.RunnerStatus``) from one container: the workload is
the container (id, name, spec-hash label as revision), an exited container's code and OOM
flag are its ``Termination``, the debug-port claim is ``DebugPorts``, and ``details``
carries what only Docker knows (``containerId``, ``containerName``, ``imageId``,
``hostPorts``). Readiness and the restart count are left to the core.

The rules (docs/design.md names them), one place each:

- image pull policy ...... ``_ensure_image``: present → used; absent → pulled per
  ``imagePullPolicy`` (``Always`` pulls whenever a container is created, ``Never`` fails);
  a missing or unpullable image raises ``ImageNotFound`` / ``ImagePullFailed`` naming it.
- removal on stop ........ ``apply`` / ``delete`` (see "Stopped containers" below).
- volumes ................ ``docker_plan.mounts_for``.
- debug ports ............ ``_debug_claim`` (who holds them) and ``docker_plan.debug_port_map``.
- enabled switch ......... ``_require_enabled``: ``RunnerDisabled`` from every call.
- names and labels ....... ``docker_plan.plan``; ownership is read from labels only
  (``_not_ours``): a same-named container that is not ours raises ``ContainerConflict`` and
  is never touched.
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

Idempotence. ``apply`` reads the container and compares its spec-hash label with the hash of
what the workload asks for (``docker_plan``); when they match and it runs, nothing is written.
A different hash replaces the container (remove, create); the storage folder is kept.

Debug ports. With ``RUNNERS_DOCKER_HOST_PORT_DEBUG=P``, the claim belongs to the
container labelled ``mlplatform.dev/debug-ports`` (this controller's); if none is, the first
model with ``debug: true`` to be applied takes it. The holder keeps it until its container is
removed. The others run unpublished and their status names the holder; because the decision
is part of the spec hash, the next ``apply`` after the holder goes publishes their ports.

Thread safety: one runner may be used from several threads; the debug claim is decided and
taken under a lock. The probe talks to the container's IP on the models' network, so the
operator must run where that network is routable (the engine's host, or a container on it).
"""

from __future__ import annotations

import contextlib
import http.client
import threading
from typing import Any, NoReturn

import docker
import docker.errors
import docker.utils
from docker.models.containers import Container
from docker.models.networks import Network

from mlplatform import errors
from mlplatform.config import Settings
from mlplatform.models.spec import PullPolicy, container_name
from mlplatform.runners import base, docker_plan
from mlplatform.runners.docker_engine import Engine, Operation
from mlplatform.runners.docker_events import DockerEventStream

# Seconds a model server gets to stop on SIGTERM before it is killed (Docker's default).
STOP_GRACE_SECONDS = 10
_ZERO_TIME = "0001-01-01T00:00:00Z"
_RUNNING = ("running", "paused")
_STARTING = ("created", "restarting")


class DockerRunner:
    """Runs workloads as Docker containers; one per settings object, for the process's life."""

    type = "docker"

    def __init__(self, settings: Settings) -> None:
        if settings.runners_docker_network in docker_plan.FORBIDDEN_NETWORKS:
            raise errors.ConfigurationError(
                f'RUNNERS_DOCKER_NETWORK must name a user-defined network, not "'
                f'{settings.runners_docker_network}" (endpoints resolve by container name)'
            )
        self._settings = settings
        self._engine = Engine(settings)
        self._debug_lock = threading.Lock()
        self._network_lock = threading.Lock()

    def close(self) -> None:
        """Drop the engine connection (a later call connects again)."""
        self._engine.close()

    # --- the Runner interface ----------------------------------------------------------

    def apply(self, workload: base.Workload) -> base.RunnerStatus:
        """Converge: create, replace (changed spec, stopped container) or leave alone."""
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
        container = self._find(client, workload)
        _, holder = self._debug_claim(client, workload)
        if container is None:
            return self._missing(workload, holder)
        return self._status(container, workload, action=base.Action.NONE, holder=holder)

    def delete(self, workload: base.Workload) -> base.RunnerStatus:
        """Remove the workload's container (storage kept); missing is fine."""
        self._require_enabled()
        client = self._engine.client()
        container = self._find(client, workload)
        name = container_name(workload.spec.id)
        details = {"containerName": name}
        if container is None:
            return base.RunnerStatus(state=base.State.REMOVED, workload_name=name, details=details)
        self._remove(container)
        return base.RunnerStatus(
            state=base.State.REMOVED,
            action=base.Action.REMOVED,
            workload_id=container.id,
            workload_name=name,
            message="container removed; storage kept",
            details=details,
        )

    def probe(self, workload: base.Workload, status: base.RunnerStatus) -> base.ProbeResult:
        """One HTTP GET of the readiness probe against the container's IP on the network."""
        self._require_enabled()
        probe = workload.spec.container.readiness_probe
        if probe is None:
            return base.ProbeResult(ok=True, message="no readiness probe")
        container = self._find(self._engine.client(), workload)
        if container is None or container.attrs["State"]["Status"] != "running":
            return base.ProbeResult(ok=False, message="the container is not running")
        networks = container.attrs["NetworkSettings"]["Networks"] or {}
        address = (networks.get(self._settings.runners_docker_network) or {}).get("IPAddress")
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
        existing = self._find(client, workload)
        debug_base, holder = self._debug_claim(client, workload)
        plan = docker_plan.plan(workload, self._settings, debug_base=debug_base)
        action = base.Action.CREATED
        message = ""
        if existing is not None:
            state = existing.attrs["State"]
            if existing.labels.get(base.LABEL_SPEC_HASH) == plan.spec_hash and _same_owner(
                existing.labels, workload.owner
            ):
                if state["Status"] in (*_RUNNING, "restarting"):
                    return self._status(existing, workload, action=base.Action.NONE, holder=holder)
                if state["Status"] == "created" and not state.get("Error"):
                    self._ensure_network(client)
                    return self._start(
                        existing, workload, action=base.Action.CREATED, holder=holder
                    )
                message = f"replaced the stopped container ({_ending(state)})"
            else:
                message = "replaced the container: its spec changed"
            self._remove(existing)
            action = base.Action.REPLACED
        # Only a container about to be created needs the network: a steady apply reads one
        # container and nothing else.
        self._ensure_network(client)
        pulled = self._ensure_image(client, plan.image, workload.spec.container.image_pull_policy)
        for folder in plan.folders_to_create():
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise errors.StartFailed(f"cannot create the folder {folder}: {error}") from error
        try:
            with self._engine.guard(Operation.CREATE, plan.name, image=plan.image):
                container = client.containers.create(plan.image, **plan.create_args)
        except errors.ContainerConflict as error:
            self._name_taken(client, workload, error)
        return self._start(
            container, workload, action=action, holder=holder, pulled=pulled, message=message
        )

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
            with self._engine.guard(Operation.START, str(container.name)):
                container.start()
        except errors.PortInUse:
            self._remove(container)
            raise
        except errors.StartFailed as error:
            # A bad command fails here; the stopped container keeps the exit code as the record.
            message = error.message
        with self._engine.guard(Operation.INSPECT, str(container.name)):
            container.reload()
        return self._status(
            container, workload, action=action, holder=holder, pulled=pulled, message=message
        )

    def _ensure_network(self, client: docker.DockerClient) -> None:
        """The models' network exists afterwards, exactly once under its name."""
        name = self._settings.runners_docker_network
        with self._network_lock:
            if self._networks(client, name):
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

    def _networks(self, client: docker.DockerClient, name: str) -> list[Network]:
        with self._engine.guard(Operation.INSPECT_NETWORK, name):
            return [n for n in client.networks.list(names=[name]) if n.name == name]

    def _ensure_image(self, client: docker.DockerClient, image: str, policy: PullPolicy) -> bool:
        """The image pull policy: the image is present afterwards, or a typed error names it.

        True if it was pulled.
        """
        if policy != "Always":
            try:
                with self._engine.guard(Operation.INSPECT_IMAGE, image, image=image):
                    client.images.get(image)
                return False
            except errors.ImageNotFound as error:
                if policy == "Never":
                    raise errors.ImageNotFound(
                        f'image "{image}" is not present on the Docker engine and '
                        "imagePullPolicy is Never"
                    ) from error
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
        label_filter = [
            *docker_plan.owned_label_filter(self._settings.controller),
            docker_plan.LABEL_DEBUG_PORTS,
        ]
        with self._engine.guard(Operation.LIST, "holding the debug ports"):
            holders = client.containers.list(all=True, sparse=True, filters={"label": label_filter})
        for holder in holders:
            model_id = (holder.attrs.get("Labels") or {}).get(base.LABEL_MODEL_ID)
            if model_id and model_id != workload.spec.id:
                return None, model_id
        return first, workload.spec.id

    # --- reading and removing containers -----------------------------------------------

    def _find(self, client: docker.DockerClient, workload: base.Workload) -> Container | None:
        """The workload's container, or None; raises ``ContainerConflict`` if it is not ours."""
        name = container_name(workload.spec.id)
        try:
            with self._engine.guard(Operation.INSPECT, name):
                container = client.containers.get(name)
        except errors.RunnerError as error:
            if isinstance(error.__cause__, docker.errors.NotFound):
                return None
            raise
        if container.name != name:  # the engine also matches id prefixes
            return None
        labels = container.labels
        problem = self._not_ours(labels, workload)
        if problem:
            raise errors.ContainerConflict(
                f"a container named {name} exists and {problem}; it is left untouched"
            )
        return container

    def _name_taken(
        self, client: docker.DockerClient, workload: base.Workload, error: errors.ContainerConflict
    ) -> NoReturn:
        """Create met a container holding the name: a stranger's is a conflict, ours is not.

        The engine answers 409 both for a foreign container and for one of ours still being
        removed (``docker rm -f`` racing this apply); the latter is a passing state, retried.
        """
        self._find(client, workload)  # raises ContainerConflict for a stranger's container
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

    def _remove(self, container: Container) -> None:
        """Stop gracefully, then remove (volumes are bind mounts: the storage stays)."""
        try:
            if container.attrs["State"]["Status"] in (*_RUNNING, "restarting"):
                with self._engine.guard(Operation.STOP, str(container.name)):
                    container.stop(timeout=STOP_GRACE_SECONDS)
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

    def _status(
        self,
        container: Container,
        workload: base.Workload,
        *,
        action: base.Action,
        holder: str | None,
        pulled: bool = False,
        message: str = "",
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
        name = container_name(workload.spec.id)
        termination = _termination(state_attrs) if state is base.State.EXITED else None
        notes = [message] if message else []
        if termination is not None:
            notes.append(_ending(state_attrs))
        debug = self._debug_ports(workload, holder, bound=bool(debug_endpoints))
        if debug is not None and debug.holder:
            notes.append(debug.message)
        started = state_attrs.get("StartedAt")
        return base.RunnerStatus(
            state=state,
            action=action,
            workload_id=container.id,
            workload_name=name,
            revision=container.labels.get(base.LABEL_SPEC_HASH),
            endpoints=[f"http://{name}:{port}" for port in workload.spec.container.ports],
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
        )


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


def _same_owner(labels: dict[str, str], owner: base.Owner) -> bool:
    return labels.get(base.LABEL_OWNER_UID) == owner.uid
