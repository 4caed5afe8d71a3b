"""kopf peering with the priorities ``--priority auto`` gives: one replica works, the next waits.

Two kopf operators run against the KMock emulator with a ClusterKopfPeering, each with a
create handler that records its name. kopf pauses an operator while a peer has a higher
priority, and every operator that shares the top one, so replicas need distinct priorities.
With the ones ``kube.options.priority`` computes for two starts, the first replica handles
the model and the second, paused, does not (docs/operator.md, "Single active replica").
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import kmock
import kopf
import pytest

from mlplatform.kube import options
from mlplatform.models.spec import API_GROUP, API_VERSION, PLURAL
from tests.support.kube_cluster import KubeCluster, fast_settings, kube_cluster, mlmodel, until

PEERINGS = kmock.resource("kopf.dev", "v1", "clusterkopfpeerings")
PEERING = "mlplatform"


def _priority(started_at: float, pid: int) -> int:
    return options.priority("auto", now=started_at, pid=pid)


@contextlib.asynccontextmanager
async def _replica(
    cluster: KubeCluster, name: str, priority: int, handled: list[str]
) -> AsyncIterator[None]:
    registry = kopf.OperatorRegistry()

    @kopf.on.create(API_GROUP, API_VERSION, PLURAL, registry=registry)
    async def created(**_: Any) -> None:
        handled.append(name)

    settings = fast_settings()
    settings.peering.name = PEERING
    settings.peering.priority = priority
    settings.peering.stealth = False
    settings.peering.lifetime = 60
    stop = asyncio.Event()
    ready = asyncio.Event()
    ignored = set(asyncio.all_tasks())
    tasks = await kopf.spawn_tasks(
        registry=registry,
        settings=settings,
        standalone=False,
        priority=priority,
        peering_name=PEERING,
        clusterwide=True,
        stop_flag=stop,
        ready_flag=ready,
        vault=cluster.vault(),
    )
    task = asyncio.create_task(kopf.run_tasks(tasks, ignored=ignored))
    try:
        await asyncio.wait_for(ready.wait(), 10)
        yield
    finally:
        current = asyncio.current_task()
        if current is not None:
            ignored.add(current)
        stop.set()
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            await asyncio.wait_for(task, 10)


async def _peering_cluster(cluster: KubeCluster) -> None:
    cluster.emulator.resources[PEERINGS] = kmock.ResourceInfo(
        kind="ClusterKopfPeering",
        singular="clusterkopfpeering",
        namespaced=False,
        verbs={"create", "delete", "get", "list", "patch", "update", "watch"},
    )
    await cluster._call(
        "POST",
        "/apis/kopf.dev/v1/clusterkopfpeerings",
        body={
            "apiVersion": "kopf.dev/v1",
            "kind": "ClusterKopfPeering",
            "metadata": {"name": PEERING},
        },
    )


async def _priorities(cluster: KubeCluster) -> set[int]:
    obj = await cluster._call("GET", f"/apis/kopf.dev/v1/clusterkopfpeerings/{PEERING}")
    assert obj is not None
    return {int(peer["priority"]) for peer in (obj.get("status") or {}).values()}


async def test_the_first_replica_works_and_the_second_waits() -> None:
    first, second = _priority(1_800_000_000.0, 41), _priority(1_800_000_030.0, 42)
    assert first > second
    handled: list[str] = []
    async with kube_cluster() as cluster:
        await _peering_cluster(cluster)
        async with (
            _replica(cluster, "first", first, handled),
            _replica(cluster, "second", second, handled),
        ):
            # Both replicas have announced themselves in the peering object.
            deadline = asyncio.get_running_loop().time() + 10
            while await _priorities(cluster) != {first, second}:
                assert asyncio.get_running_loop().time() < deadline, "peers not announced"
                await asyncio.sleep(0.05)
            await cluster.create(mlmodel("iris", namespace="models", spec={}))
            await until(lambda: bool(handled), timeout=10, what="a replica handled it")
            # The paused replica does not handle it too. (With the priorities swapped the
            # second replica handles it and the first does not: the test depends on them.)
            with pytest.raises(TimeoutError):
                await until(lambda: len(handled) > 1, timeout=2)
            assert handled == ["first"]
