"""A model's containers on the engine: found by their labels, created, started, removed.

Ownership is read from labels only: a container is the model's when it carries our
managed-by label, this controller and the model's owner uid; a same-named container that is
not ours (``not_a_strangers``) is a ``ContainerConflict`` and is never touched.

Roles. Of a model's containers, the one under the contract name of the spec's id (else the
one answering on the stable alias, else the newest) serves; a temporary-named one
(``<name>-<version>_<revision>``) of the desired revision is the candidate brought up behind
it (``docker_rollout``); anything else is a leftover, to be removed.

Images (the pull policy): a container is created straight from a present image; a missing
one is pulled per ``imagePullPolicy`` (``Always`` pulls whenever a container is created,
``Never`` fails); a missing or unpullable image raises ``ImageNotFound`` /
``ImagePullFailed`` naming it.

The grace period: every stop waits the container's own stop timeout
(``spec.container.terminationGracePeriodSeconds``, set at create); several containers are
stopped at once, so they share one grace period.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
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

from mlplatform import errors
from mlplatform.config import Settings
from mlplatform.models.spec import container_name
from mlplatform.runners import base, docker_plan, docker_status
from mlplatform.runners.docker_engine import Engine, Operation
from mlplatform.runners.docker_network import ModelsNetwork, network_missing
from mlplatform.runners.docker_status import RUNNING, holds_alias, status_of

# How long a read waits for a container being removed (``docker rm -f``) to be gone.
REMOVAL_WAIT_SECONDS = 5
# How old an observe's reading may be for the apply after it to act on it (seconds).
_READING_FRESH = 1.0
# Containers created before the grace period was a spec field carry no stop timeout.
DEFAULT_GRACE_SECONDS = 10


@dataclass
class Roles:
    """What the engine holds for one model, sorted by role."""

    serving: Container | None = None  # holds (or is to hold) the stable endpoint
    candidate: Container | None = None  # the desired revision, brought up behind it
    leftovers: list[Container] = field(default_factory=list)  # anything else of the model

    def every(self) -> list[Container]:
        return [c for c in (self.serving, self.candidate, *self.leftovers) if c is not None]


class Containers:
    """The engine's containers as one runner sees them; safe to use from several threads."""

    def __init__(self, engine: Engine, settings: Settings, network: ModelsNetwork) -> None:
        self._engine = engine
        self._settings = settings
        self._network = network
        # What the last observe read, per (thread, owner), for the apply that follows it.
        self._readings: dict[tuple[int, str], tuple[float, list[Container]]] = {}
        self._readings_lock = threading.Lock()

    # --- finding -----------------------------------------------------------------------

    def find(
        self,
        client: docker.DockerClient,
        workload: base.Workload,
        *,
        revision: str | None,
        check_name: bool = True,
        reuse: bool = False,
    ) -> Roles:
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
            mine = self.read(client, workload, check_name=check_name)
        return self.sort(mine, workload, revision)

    def read(
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
            self.not_a_strangers(client, workload, name)
        listed_now = [self._get_listed(client, i) for i in names.values()]
        return [c for c in listed_now if c is not None and not self._being_removed(client, c)]

    def remember(self, workload: base.Workload, mine: list[Container]) -> None:
        """Keep what an observe read, for the apply this thread makes next (``reuse``)."""
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

    def sort(self, mine: list[Container], workload: base.Workload, revision: str | None) -> Roles:
        name = container_name(workload.spec.id)
        found = Roles()
        finals = [c for c in mine if not docker_plan.is_candidate_name(str(c.name))]
        candidates = [c for c in mine if docker_plan.is_candidate_name(str(c.name))]
        # The serving container: the one under the contract name of the spec's id, else the
        # one answering on the stable alias, else the newest.
        alias = docker_plan.stable_alias(workload.owner)
        finals.sort(
            key=lambda c: (
                str(c.name) == name,
                holds_alias(c, self._network.name, alias),
                status_of(c) in RUNNING,
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

    def _being_removed(self, client: docker.DockerClient, container: Container) -> bool:
        """Whether ``container`` is being removed (``docker rm -f`` outside us), waited for.

        It is gone in a moment: waiting for that makes it read as missing (to recreate), not
        as a crash, and frees its name for the create. A timeout (requests' errors are
        OSErrors) leaves it to the create's conflict path.
        """
        if status_of(container) != "removing":
            return False
        with contextlib.suppress(docker.errors.DockerException, OSError):
            client.api.wait(str(container.id), timeout=REMOVAL_WAIT_SECONDS, condition="removed")
        return True

    def _get_listed(self, client: docker.DockerClient, container_id: str) -> Container | None:
        try:
            return self.get(client, container_id)
        except errors.RunnerError as error:
            if isinstance(error.__cause__, docker.errors.NotFound):
                return None  # removed since the listing
            raise

    def get(self, client: docker.DockerClient, name_or_id: str) -> Container:
        with self._engine.guard(Operation.INSPECT, name_or_id):
            container: Container = client.containers.get(name_or_id)
        return container

    def last_output(self, container: Container) -> str:
        """The last output lines of a stopped container (``docker_status.last_output``);
        "" for one still running or when the engine cannot say (it is only a detail)."""
        if status_of(container) not in ("exited", "dead"):
            return ""
        try:
            with self._engine.guard(Operation.LOGS, str(container.name)):
                raw = container.logs(stdout=True, stderr=True, tail=docker_status.OUTPUT_LINES)
        except errors.RunnerError:
            return ""
        return docker_status.last_output(raw if isinstance(raw, bytes) else b"")

    def reload(self, container: Container) -> None:
        with self._engine.guard(Operation.INSPECT, str(container.name)):
            container.reload()

    # --- whose a name is ---------------------------------------------------------------

    def not_a_strangers(
        self, client: docker.DockerClient, workload: base.Workload, name: str
    ) -> None:
        """``ContainerConflict`` if a container that is not this model's holds ``name``."""
        try:
            container = self.get(client, name)
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

    def name_taken(
        self, client: docker.DockerClient, workload: base.Workload, error: errors.ContainerConflict
    ) -> NoReturn:
        """Create met a container holding the name: a stranger's is a conflict, ours is not.

        The engine answers 409 both for a foreign container and for one of ours still being
        removed (``docker rm -f`` racing this apply); the latter is a passing state, retried.
        """
        self.not_a_strangers(client, workload, container_name(workload.spec.id))
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

    # --- creating, starting, renaming ----------------------------------------------------

    def create(
        self,
        client: docker.DockerClient,
        workload: base.Workload,
        plan: docker_plan.ContainerPlan,
        *,
        candidate: bool,
        serve: bool | None = None,
    ) -> tuple[Container, bool]:
        """Create (not start) a container for ``plan``: a candidate under its temporary
        name, else under the contract name. ``serve`` (default: not a candidate): it joins
        the stable alias when it starts; a candidate that will replace the serving one in
        place is created under its temporary name but serving.

        (The container, whether its image was pulled.)
        """
        serve = not candidate if serve is None else serve
        self._network.ensure(client)
        for folder in plan.folders_to_create():
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise errors.StartFailed(f"cannot create the folder {folder}: {error}") from error
        name = plan.candidate_name if candidate else plan.name
        args = dict(plan.create_args, name=name)
        if serve:
            endpoint = client.api.create_endpoint_config(aliases=list(plan.aliases))
            args["networking_config"] = {self._network.name: endpoint}
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
                self.name_taken(client, workload, error)
            except errors.RunnerError as error:
                if attempt or not network_missing(error):
                    raise
                self._network.forget()
                self._network.ensure(client)
        return container, pulled

    def _pull(self, client: docker.DockerClient, image: str) -> bool:
        """Pull ``image`` (the pull policy asked for it); a typed error names it. True."""
        repository, tag = docker.utils.parse_repository_tag(image)
        with self._engine.guard(Operation.PULL, image, image=image):
            for line in client.api.pull(repository, tag=tag or "latest", stream=True, decode=True):
                if isinstance(line, dict) and line.get("error"):
                    raise docker.errors.APIError(str(line["error"]), explanation=line["error"])
        return True

    def start(self, container: Container) -> None:
        """Start ``container``; one that cannot bind its host ports is removed again."""
        try:
            with self._engine.guard(Operation.START, str(container.name)):
                container.start()
        except errors.PortInUse:
            self.remove(container)
            raise

    def rename(
        self, client: docker.DockerClient, workload: base.Workload, container: Container, name: str
    ) -> None:
        """Give ``container`` the name ``name`` (a stranger holding it is a conflict)."""
        try:
            with self._engine.guard(Operation.RENAME, name):
                container.rename(name)
        except errors.ContainerConflict as error:
            self.name_taken(client, workload, error)

    # --- removing ----------------------------------------------------------------------

    def remove_all(self, containers: Sequence[Container]) -> None:
        """Remove several containers at once: one grace period for all, not one each."""
        if len(containers) <= 1:
            for container in containers:
                self.remove(container)
            return
        with concurrent.futures.ThreadPoolExecutor(len(containers)) as pool:
            for done in [pool.submit(self.remove, c) for c in containers]:
                done.result()

    def remove(self, container: Container) -> None:
        """Stop within the container's grace period, then remove (the storage stays)."""
        grace = container.attrs.get("Config", {}).get("StopTimeout")
        try:
            if status_of(container) in (*RUNNING, "restarting"):
                with self._engine.guard(Operation.STOP, str(container.name)):
                    container.stop(timeout=_grace(grace))
            with self._engine.guard(Operation.REMOVE, str(container.name)):
                container.remove(force=True)
        except errors.RunnerError as error:
            cause = error.__cause__
            if isinstance(cause, docker.errors.NotFound):
                return  # already gone
            if isinstance(cause, docker.errors.APIError) and cause.status_code == 409:
                # Already being removed (a resync's garbage collection, ``docker rm -f``):
                # waited for, so that the name is free when this returns (a create of the
                # same name right after met the one still being removed).
                with contextlib.suppress(docker.errors.DockerException, OSError):
                    if container.client is not None:
                        container.client.api.wait(
                            str(container.id), timeout=REMOVAL_WAIT_SECONDS, condition="removed"
                        )
                return
            raise


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


def _grace(stop_timeout: Any) -> int:
    """The grace period a container was created with (Docker's default without one)."""
    return int(stop_timeout) if isinstance(stop_timeout, int) else DEFAULT_GRACE_SECONDS
