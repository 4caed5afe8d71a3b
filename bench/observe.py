"""Watching model containers from the outside: when one starts and when it answers HTTP.

``Observer`` keeps one event stream from the engine (its own direct client, not counted by
the proxy) about the containers of one controller, and remembers every ``start``. Waiting
for a model means: a ``start`` of its container name (with an id not seen before, for drift
repair), then its IP on the run's network (one inspect), then ``GET /health`` on that IP
from the host until it answers 200 — the same HTTP wait the floor uses.
"""

from __future__ import annotations

import contextlib
import http.client
import threading
import time
from collections.abc import Collection
from typing import Any

import docker

from mlplatform.runners.base import LABEL_CONTROLLER

HTTP_PORT = 8080
HTTP_PATH = "/health"
POLL_INTERVAL = 0.01


def http_ok(address: str, port: int = HTTP_PORT, timeout: float = 1.0) -> bool:
    connection = http.client.HTTPConnection(address, port, timeout=timeout)
    try:
        connection.request("GET", HTTP_PATH)
        return connection.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()


def wait_http(address: str, *, deadline: float) -> float:
    """Poll until the server on ``address`` answers; the monotonic time it did."""
    while True:
        if http_ok(address):
            return time.monotonic()
        if time.monotonic() > deadline:
            raise TimeoutError(f"{address}:{HTTP_PORT} did not answer")
        time.sleep(POLL_INTERVAL)


def container_address(
    client: docker.DockerClient, container_id: str, network: str, *, deadline: float
) -> str:
    """The container's IP on ``network`` (inspect, again while it has none yet)."""
    while True:
        attrs: dict[str, Any] = client.api.inspect_container(container_id)
        networks = attrs.get("NetworkSettings", {}).get("Networks") or {}
        address = (networks.get(network) or {}).get("IPAddress")
        if address:
            return str(address)
        if time.monotonic() > deadline:
            raise TimeoutError(f"container {container_id[:12]} has no address on {network}")
        time.sleep(POLL_INTERVAL)


class Observer:
    """Start events of one controller's containers, for the life of a scenario."""

    def __init__(self, client: docker.DockerClient, *, controller: str, network: str) -> None:
        self._client = client
        self._network = network
        self._starts: dict[str, list[str]] = {}  # container name -> ids started, in order
        self._changed = threading.Condition()
        self._stream: Any = client.events(
            decode=True,
            filters={
                "type": "container",
                "event": ["start"],
                "label": [f"{LABEL_CONTROLLER}={controller}"],
            },
        )
        self._thread = threading.Thread(target=self._read, name="bench-observer", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        with contextlib.suppress(Exception):
            for event in self._stream:
                name = (event.get("Actor") or {}).get("Attributes", {}).get("name")
                container_id = event.get("id") or (event.get("Actor") or {}).get("ID")
                if name and container_id:
                    with self._changed:
                        self._starts.setdefault(name, []).append(container_id)
                        self._changed.notify_all()

    def started_ids(self, name: str) -> list[str]:
        with self._changed:
            return list(self._starts.get(name, []))

    def wait_started(self, name: str, *, exclude: set[str], deadline: float) -> str:
        """The id of the first start of ``name`` whose id is not in ``exclude``."""
        with self._changed:
            while True:
                for container_id in self._starts.get(name, []):
                    if container_id not in exclude:
                        return container_id
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"container {name} did not start")
                self._changed.wait(min(remaining, 1.0))

    def wait_answering(
        self, name: str, *, timeout: float, exclude: Collection[str] = ()
    ) -> tuple[str, float]:
        """(container id, monotonic time) when a new container ``name`` answers HTTP."""
        deadline = time.monotonic() + timeout
        container_id = self.wait_started(name, exclude=set(exclude), deadline=deadline)
        address = container_address(self._client, container_id, self._network, deadline=deadline)
        return container_id, wait_http(address, deadline=deadline)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._stream.close()
