"""The operator end to end: kopf in the test, KMock as the API server, the real Docker engine."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import docker
import pytest

from tests.support.docker_env import DockerEnv
from tests.support.images import TestImages
from tests.support.kube_cluster import KubeCluster, kube_cluster, mlmodel
from tests.support.kube_extras import operator_running

pytestmark = pytest.mark.docker
NS = "models"


def spec_for(env: DockerEnv, images: TestImages, name: str, **extra: Any) -> dict[str, Any]:
    container = {"image": images.http, "ports": [8080], **extra.pop("container", {})}
    return {"id": env.model_id(name), "container": container, **extra}


def containers_of(env: DockerEnv, model_id: str) -> list[Any]:
    return env.client.containers.list(
        all=True, filters={"label": f"mlplatform.dev/model-id={model_id}"}
    )


async def until(predicate: Callable[[], bool], *, timeout: float = 20, what: str = "") -> None:
    """Wait for a condition outside the API (Docker state, events); fail naming it."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"not within {timeout}s: {what}")
        await asyncio.sleep(0.1)


def reasons(cluster: KubeCluster, name: str) -> list[str]:
    return [str(e.get("reason")) for e in cluster.events(namespace=NS, name=name)]


def status_of(obj: dict[str, Any] | None) -> dict[str, Any]:
    return dict((obj or {}).get("status") or {})


async def test_a_created_model_runs_and_reports_ready_with_endpoints(
    docker_env: DockerEnv, test_images: TestImages
) -> None:
    spec = spec_for(docker_env, test_images, "create")
    async with kube_cluster() as cluster, operator_running(cluster, docker_env.settings()):
        await cluster.create(mlmodel("create", namespace=NS, spec=spec))
        obj = await cluster.wait_for_condition(NS, "create", "Ready", timeout=30)
        status = status_of(obj)
        name = f"mlpt-create-{docker_env.token}-1"
        assert status["phase"] == "Running"
        assert status["observedGeneration"] == 1
        assert status["endpoints"] == [f"http://{name}:8080"]
        assert status["runner"]["containerName"] == name
        (container,) = containers_of(docker_env, spec["id"])
        assert container.status == "running"
        assert container.id == status["runner"]["containerId"]
        assert container.labels["mlplatform.dev/owner-uid"] == obj["metadata"]["uid"]
        await until(lambda: "Created" in reasons(cluster, "create"), what="a Created event")
