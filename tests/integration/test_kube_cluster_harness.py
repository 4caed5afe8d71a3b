"""The KMock + kopf harness itself: what the operator's end-to-end tests rely on."""

from __future__ import annotations

import asyncio
from typing import Any

import kopf

from tests.support.kube_cluster import kube_cluster, mlmodel, running_operator, until

SPEC = {"id": "harness:1.0", "container": {"image": "busybox:latest", "ports": [8080]}}


async def test_an_object_created_through_the_harness_reaches_a_kopf_handler() -> None:
    registry = kopf.OperatorRegistry()
    seen: asyncio.Queue[tuple[str | None, str, Any]] = asyncio.Queue()

    deleted: asyncio.Queue[str] = asyncio.Queue()

    @kopf.on.create("mlplatform.dev", "v1alpha1", "mlmodels", id="created", registry=registry)
    async def created(
        namespace: str | None, name: str, spec: kopf.Spec, **_: Any
    ) -> dict[str, str]:
        await seen.put((namespace, name, spec["id"]))
        return {"message": "seen"}

    @kopf.on.delete("mlplatform.dev", "v1alpha1", "mlmodels", id="deleted", registry=registry)
    async def gone(name: str, **_: Any) -> None:
        await deleted.put(name)

    async with kube_cluster() as cluster, running_operator(cluster, registry=registry):
        await cluster.create(mlmodel("harness", namespace="models", spec=SPEC))
        assert await asyncio.wait_for(seen.get(), timeout=10) == (
            "models",
            "harness",
            "harness:1.0",
        )
        # kopf stored the handler's result and its finalizer: its JSON patch worked.
        obj = await cluster.wait_for(
            "models", "harness", lambda o: bool(o and (o.get("status") or {}).get("created"))
        )
        assert obj is not None
        assert obj["metadata"]["finalizers"]
        # Deletion runs the delete handler, then kopf releases the finalizer.
        await cluster.delete("models", "harness")
        assert await asyncio.wait_for(deleted.get(), timeout=10) == "harness"
        await cluster.wait_gone("models", "harness", timeout=10)


async def test_objects_carry_the_metadata_kopf_relies_on() -> None:
    async with kube_cluster() as cluster:
        created = await cluster.create(mlmodel("meta", spec=SPEC))
        meta = created["metadata"]
        assert meta["generation"] == 1
        assert meta["uid"] and meta["creationTimestamp"] and meta["resourceVersion"]
        labelled = await cluster.patch("default", "meta", {"metadata": {"labels": {"a": "b"}}})
        assert labelled["metadata"]["generation"] == 1
        assert int(labelled["metadata"]["resourceVersion"]) > int(meta["resourceVersion"])
        changed = await cluster.patch("default", "meta", {"spec": {"suspend": True}})
        assert changed["metadata"]["generation"] == 2
        with_status = await cluster.patch(
            "default", "meta", {"status": {"phase": "Running"}}, status=True
        )
        assert with_status["status"] == {"phase": "Running"}
        assert with_status["metadata"]["generation"] == 2


async def test_a_deleted_object_with_a_finalizer_waits_for_its_release() -> None:
    async with kube_cluster() as cluster:
        await cluster.create(mlmodel("fin", spec=SPEC, finalizers=["test/x"]))
        await cluster.delete("default", "fin")
        marked = await cluster.get("default", "fin")
        assert marked is not None and marked["metadata"]["deletionTimestamp"]
        await cluster.patch("default", "fin", {"metadata": {"finalizers": None}})
        await cluster.wait_gone("default", "fin", timeout=5)


async def test_the_operator_posts_events_that_the_harness_can_read() -> None:
    registry = kopf.OperatorRegistry()

    @kopf.on.create("mlplatform.dev", "v1alpha1", "mlmodels", registry=registry)
    async def created(body: Any, **_: Any) -> None:
        kopf.info(body, reason="Seen", message="The harness saw it.")

    async with kube_cluster() as cluster, running_operator(cluster, registry=registry) as op:
        await cluster.create(mlmodel("ev", spec=SPEC))
        await until(
            lambda: any(e.get("reason") == "Seen" for e in cluster.events(name="ev")),
            timeout=10,
            what="a Seen event",
        )
        assert op.started_in < 10
