"""A private corner of the shared Docker engine for one test session.

Several test sessions run on one engine at the same time, so everything a session makes is
uniquely named (prefix ``mlpt-``), labelled with the session token, and removed at the end;
nothing else is ever touched. ``DockerEnv`` hands out:

- ``settings(**overrides)``: runner settings with this session's network
  (``mlpt-net-<token>``), controller (``test-<token>``) and data/models/storage folders
  under ``root``; the Docker runner is enabled;
- ``model_id("name")``: a unique ``spec.id`` (``mlpt-name-<token>:1``) → container
  ``mlpt-name-<token>-1``;
- ``workload("name", image, ports=[8080], volumes=[...], ...)``: a validated ``Workload``
  (container fields in wire form, camelCase);
- ``run_helper(image, ...)``: a container that is not a model (a client, a foreign
  container), labelled for cleanup;
- ``CreationCounter(env, model_id)``: counts a model's container creations live;
- ``cleanup()``: removes this session's containers (by controller or session label) and
  network; the folders are under a pytest ``tmp_path``.

Usage::

    env = DockerEnv.create(tmp_path_factory.mktemp("docker"))
    try: ... finally: env.cleanup()
"""

from __future__ import annotations

import contextlib
import secrets
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import docker
import docker.errors
from docker.models.containers import Container

from mlplatform.config import Settings
from mlplatform.models.spec import MLModelSpec
from mlplatform.runners.base import (
    LABEL_CONTROLLER,
    LABEL_MODEL_ID,
    Action,
    Owner,
    Runner,
    RunnerStatus,
    Workload,
)
from tests.support.confinement import Confined

SESSION_LABEL = "dev.mlplatform.test.session"
T = TypeVar("T")


def docker_client() -> docker.DockerClient:
    """A docker-py client for test set-up and assertions (the runner has its own)."""
    return docker.DockerClient.from_env(timeout=30)


@dataclass
class DockerEnv(Confined):
    """One test session's names, folders and cleanup on the shared engine."""

    token: str
    root: Path
    client: docker.DockerClient = field(repr=False)

    @classmethod
    def create(cls, root: Path) -> DockerEnv:
        env = cls(token=secrets.token_hex(4), root=root, client=docker_client())
        env.make_folders()
        return env

    @property
    def network(self) -> str:
        return f"mlpt-net-{self.token}"

    @property
    def controller(self) -> str:
        return f"test-{self.token}"

    def settings(self, **overrides: object) -> Settings:
        """Settings for a runner confined to this session (overrides by field name)."""
        values: dict[str, object] = {
            "runners_docker_enabled": True,
            "runners_docker_network": self.network,
            "controller": self.controller,
            "data_dir": self.data_dir,
            "mlmodels_dir": self.mlmodels_dir,
            "storage_dir": self.storage_dir,
            "runners_docker_timeout": 30.0,
        }
        values.update(overrides)
        return Settings.load(environ={}, **values)

    def model_id(self, name: str, version: str = "1") -> str:
        """A ``spec.id`` unique to this session: ``mlpt-<name>-<token>:<version>``."""
        return f"mlpt-{name}-{self.token}:{version}"

    def workload(
        self,
        name: str,
        image: str,
        *,
        ports: list[int] | None = None,
        debug: bool = False,
        suspend: bool = False,
        uid: str | None = None,
        **container: Any,
    ) -> Workload:
        """A validated workload for ``model_id(name)``, owned by ``test/<name>``."""
        spec = MLModelSpec.model_validate(
            {
                "id": self.model_id(name),
                "debug": debug,
                "suspend": suspend,
                "container": {"image": image, "ports": ports or [8080], **container},
            }
        )
        owner = Owner(namespace="test", name=name, uid=uid or f"uid-{name}-{self.token}")
        return Workload(owner=owner, spec=spec)

    def helper_name(self, name: str) -> str:
        return f"mlpt-{name}-{self.token}-{secrets.token_hex(2)}"

    def run_helper(self, image: str, *, name: str | None = None, **kwargs: Any) -> Container:
        """Start (detached) a container that is not a model, labelled for cleanup.

        It joins this session's network unless ``network`` says otherwise (so tests do not
        depend on Docker's default bridge).
        """
        labels = {SESSION_LABEL: self.token, **kwargs.pop("labels", {})}
        if "network" not in kwargs and "network_mode" not in kwargs:
            self.ensure_network()
            kwargs["network"] = self.network
        container: Container = self.client.containers.run(
            image, name=name or self.helper_name("helper"), labels=labels, detach=True, **kwargs
        )
        return container

    def client_run(self, image: str, command: list[str], *, timeout: float = 30) -> tuple[int, str]:
        """Run ``command`` as the entrypoint once on the session network; (exit code, output)."""
        container = self.run_helper(image, entrypoint=command)
        try:
            result = container.wait(timeout=timeout)
            output = container.logs().decode(errors="replace")
            return int(result["StatusCode"]), output
        finally:
            container.remove(force=True)

    def ensure_network(self) -> None:
        """Create this session's network if the runner has not yet (labelled for cleanup)."""
        if not self.client.networks.list(names=[self.network]):
            with contextlib.suppress(docker.errors.APIError):
                self.client.networks.create(
                    self.network, driver="bridge", labels={SESSION_LABEL: self.token}
                )

    def session_containers(self) -> list[Container]:
        """Every container this session made, models and helpers."""
        found: dict[str, Container] = {}
        for label in (f"{LABEL_CONTROLLER}={self.controller}", f"{SESSION_LABEL}={self.token}"):
            for container in self.client.containers.list(
                all=True, ignore_removed=True, filters={"label": label}
            ):
                found[str(container.id)] = container
        return list(found.values())

    def cleanup(self) -> None:
        """Remove this session's containers and network; touch nothing else."""
        for container in self.session_containers():
            with contextlib.suppress(docker.errors.NotFound):
                container.remove(force=True)
        for network in self.client.networks.list(names=[self.network]):
            if network.name == self.network:
                with contextlib.suppress(docker.errors.NotFound):
                    network.remove()
        self.client.close()


def wait_until(
    condition: Callable[[], T | None], *, timeout: float = 15.0, interval: float = 0.1
) -> T:
    """Poll ``condition`` until it returns something truthy; that value, or TimeoutError."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout}s (last: {value!r})")
        time.sleep(interval)


class CreationCounter:
    """Counts container creations of one model live (the engine keeps only ~256 past events,
    and other test sessions churn through them, so they cannot be read back afterwards)."""

    def __init__(self, env: DockerEnv, model_id: str) -> None:
        self.count = 0
        self._stream = env.client.events(
            decode=True,
            filters={
                "type": "container",
                "event": "create",
                "label": f"{LABEL_MODEL_ID}={model_id}",
            },
        )
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        with contextlib.suppress(Exception):  # the stream ends with an error when closed
            for _ in self._stream:
                self.count += 1

    def close(self) -> int:
        self._stream.close()
        self._thread.join(5)
        return self.count


def applied_until_replaced(
    runner: Runner, workload: Workload, *, timeout: float = 20.0
) -> RunnerStatus:
    """Apply ``workload`` (a changed spec) until the new revision has taken over.

    An update brings the new container up behind the serving one; each apply moves it on
    (as the reconcile loop's requeues do) until the status says ``REPLACED``.
    """

    def replaced() -> RunnerStatus | None:
        status = runner.apply(workload)
        return status if status.action is Action.REPLACED else None

    return wait_until(replaced, timeout=timeout, interval=0.1)


def http_get(url: str, timeout: float = 2) -> str | None:
    """The body at ``url``, or None when nothing answers (for waits on model endpoints)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return str(response.read().decode())
    except OSError:
        return None
