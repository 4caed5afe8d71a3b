"""The models' network and the stable endpoint names on it.

Every serving container joins one user-defined network (``RUNNERS_DOCKER_NETWORK``) under
its own name and the model's stable alias (``docker_plan.stable_alias``), which answers for
whichever container serves the model. The network is created when first needed, exactly
once under its name; an alias belongs to one model (``check_endpoint``).
"""

from __future__ import annotations

import contextlib
import threading

import docker
import docker.errors
from docker.models.containers import Container
from docker.models.networks import Network

from mlplatform import errors
from mlplatform.config import Settings
from mlplatform.runners import base, docker_plan
from mlplatform.runners.docker_engine import Engine, Operation


class ModelsNetwork:
    """The models' network of one runner; safe to use from several threads."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self._engine = engine
        self._settings = settings
        self._lock = threading.Lock()
        self._known = False

    @property
    def name(self) -> str:
        return self._settings.runners_docker_network

    def get(self, client: docker.DockerClient) -> Network:
        self.ensure(client)
        (network,) = self._networks(client, self.name)[:1]
        return network

    def ensure(self, client: docker.DockerClient) -> None:
        """The models' network exists afterwards, exactly once under its name.

        Checked once per process: a create that finds it gone (someone removed it) makes
        the runner check again (``forget``).
        """
        if self._known:
            return
        name = self.name
        with self._lock:
            if self._known:
                return
            if self._networks(client, name):
                self._known = True
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
            self._known = True

    def forget(self) -> None:
        """The network went missing under us: the next ``ensure`` looks (and creates) again."""
        self._known = False

    def check_endpoint(
        self, client: docker.DockerClient, workload: base.Workload, alias: str
    ) -> None:
        """The stable alias is this model's alone: another model's container holding it
        (any controller's) is a conflict, reported like a taken container name."""
        label = [
            f"{base.LABEL_MANAGED_BY}={base.MANAGED_BY}",
            f"{docker_plan.LABEL_ENDPOINT}={alias}",
        ]
        # Aliases are names on one network: only holders on the models' network collide.
        where: dict[str, str | list[str] | bool] = {"label": label, "network": self.name}
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

    def join_as(self, network: Network, container: Container, aliases: list[str]) -> None:
        """Join ``container`` again, under ``aliases`` (it was on under its own name only)."""
        with (
            self._engine.guard(Operation.DISCONNECT_NETWORK, str(container.name)),
            contextlib.suppress(docker.errors.APIError),
        ):
            network.disconnect(container, force=True)
        with self._engine.guard(Operation.CONNECT_NETWORK, str(container.name)):
            network.connect(container, aliases=aliases)

    def retire(self, network: Network, container: Container) -> bool:
        """Take ``container`` out of its aliases' answers while it stays reachable.

        The engine drops an alias only with the endpoint, so ``container`` leaves and joins
        again under its own name. Its connections in flight survive the moment between
        (TCP retransmits) when it gets its address back, which the engine's allocator does
        when no lower address is free; whether it did is returned (otherwise they were cut,
        as leaving the network would have cut them). Best effort: an engine error leaves it
        as it was or off the network, and the caller stops it next either way.
        """
        before = self.address(container)
        with contextlib.suppress(errors.RunnerError):
            with self._engine.guard(Operation.DISCONNECT_NETWORK, str(container.name)):
                network.disconnect(container, force=True)
            with self._engine.guard(Operation.CONNECT_NETWORK, str(container.name)):
                network.connect(container)
            with self._engine.guard(Operation.INSPECT, str(container.name)):
                container.reload()
        return before is not None and self.address(container) == before

    def address(self, container: Container) -> str | None:
        """The container's IPv4 address on the models' network, as last read."""
        networks = container.attrs.get("NetworkSettings", {}).get("Networks") or {}
        address = (networks.get(self.name) or {}).get("IPAddress")
        return str(address) if address else None

    def _networks(self, client: docker.DockerClient, name: str) -> list[Network]:
        with self._engine.guard(Operation.INSPECT_NETWORK, name):
            return [n for n in client.networks.list(names=[name]) if n.name == name]


def network_missing(error: errors.RunnerError) -> bool:
    """Whether an engine call failed because the network is gone."""
    cause = error.__cause__
    return isinstance(cause, docker.errors.NotFound) and "network" in str(cause).lower()
