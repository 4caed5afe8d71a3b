"""The operator end to end: kopf in the test, KMock as the API server, the real Docker engine."""

from __future__ import annotations

import time
from typing import Any

import pytest

from mlplatform.core.backoff import BackoffPolicy
from tests.support.docker_env import DockerEnv
from tests.support.images import TestImages
from tests.support.kube_cluster import KubeCluster, free_port, kube_cluster, mlmodel, until
from tests.support.kube_extras import operator_running

pytestmark = pytest.mark.docker
NS = "models"


def spec_for(env: DockerEnv, images: TestImages, name: str, **extra: Any) -> dict[str, Any]:
    container = {"image": images.http, "ports": [8080], **extra.pop("container", {})}
    return {"id": env.model_id(name), "container": container, **extra}


def containers_of(env: DockerEnv, model_id: str) -> list[Any]:
    return env.client.containers.list(
        all=True,
        ignore_removed=True,  # the operator may remove one between list and inspect
        filters={"label": f"mlplatform.dev/model-id={model_id}"},
    )


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
        # The stable endpoint (<metadata.name>.<namespace>) first, then the per-version name.
        assert status["endpoints"] == ["http://create.models:8080", f"http://{name}:8080"]
        assert status["runner"]["containerName"] == name
        (container,) = containers_of(docker_env, spec["id"])
        assert container.status == "running"
        assert container.id == status["runner"]["containerId"]
        assert container.labels["mlplatform.dev/owner-uid"] == obj["metadata"]["uid"]
        await until(lambda: "Created" in reasons(cluster, "create"), what="a Created event")


async def test_a_spec_change_replaces_the_container_and_observed_generation_follows(
    docker_env: DockerEnv, test_images: TestImages
) -> None:
    spec = spec_for(docker_env, test_images, "update")
    async with kube_cluster() as cluster, operator_running(cluster, docker_env.settings()):
        await cluster.create(mlmodel("update", namespace=NS, spec=spec))
        first = status_of(await cluster.wait_for_condition(NS, "update", "Ready", timeout=30))
        await cluster.patch(
            NS,
            "update",
            {
                "spec": {
                    "container": {
                        **spec["container"],
                        "env": [{"name": "LOG_LEVEL", "value": "debug"}],
                    }
                }
            },
        )

        def replaced(obj: dict[str, Any] | None) -> bool:
            # The new container takes over once it is ready; until then the old one serves.
            status = status_of(obj)
            return (
                status.get("observedGeneration") == 2
                and status.get("phase") == "Running"
                and status.get("runner", {}).get("containerId") != first["runner"]["containerId"]
            )

        second = status_of(await cluster.wait_for(NS, "update", replaced, timeout=30))
        updating = next(c for c in second["conditions"] if c["type"] == "Updating")
        assert (updating["status"], updating["reason"]) == ("False", "UpToDate")
        (container,) = containers_of(docker_env, spec["id"])
        assert container.id == second["runner"]["containerId"]
        assert "LOG_LEVEL=debug" in container.attrs["Config"]["Env"]
        ready = next(c for c in second["conditions"] if c["type"] == "Ready")
        assert ready["observedGeneration"] == 2
        await until(lambda: "Replaced" in reasons(cluster, "update"), what="a Replaced event")


async def test_suspending_removes_the_container_and_resuming_brings_it_back(
    docker_env: DockerEnv, test_images: TestImages
) -> None:
    spec = spec_for(docker_env, test_images, "suspend")
    async with kube_cluster() as cluster, operator_running(cluster, docker_env.settings()):
        await cluster.create(mlmodel("suspend", namespace=NS, spec=spec))
        await cluster.wait_for_condition(NS, "suspend", "Ready", timeout=30)
        await cluster.patch(NS, "suspend", {"spec": {"suspend": True}})
        stopped = status_of(await cluster.wait_for_phase(NS, "suspend", "Stopped", timeout=30))
        assert not stopped.get("endpoints")
        assert containers_of(docker_env, spec["id"]) == []
        await until(lambda: "Removed" in reasons(cluster, "suspend"), what="a Removed event")
        await cluster.patch(NS, "suspend", {"spec": {"suspend": False}})
        resumed = await cluster.wait_for_condition(NS, "suspend", "Ready", timeout=30)
        assert status_of(resumed)["observedGeneration"] == 3
        (container,) = containers_of(docker_env, spec["id"])
        assert container.status == "running"


async def test_a_container_removed_outside_the_operator_is_recreated_from_the_event_stream(
    docker_env: DockerEnv, test_images: TestImages
) -> None:
    spec = spec_for(docker_env, test_images, "drift")
    # A resync far away: only the Docker event stream can notice the removal in time.
    async with (
        kube_cluster() as cluster,
        operator_running(cluster, docker_env.settings(), resync_interval=600),
    ):
        await cluster.create(mlmodel("drift", namespace=NS, spec=spec))
        before = status_of(await cluster.wait_for_condition(NS, "drift", "Ready", timeout=30))
        docker_env.client.containers.get(before["runner"]["containerId"]).remove(force=True)

        def recreated(obj: dict[str, Any] | None) -> bool:
            status = status_of(obj)
            runner = status.get("runner") or {}
            return status.get("phase") == "Running" and runner.get("containerId") not in (
                None,
                before["runner"]["containerId"],
            )

        after = status_of(await cluster.wait_for(NS, "drift", recreated, timeout=30))
        assert after["restartCount"] == 1
        (container,) = containers_of(docker_env, spec["id"])
        assert container.status == "running"
        await until(lambda: "Recreating" in reasons(cluster, "drift"), what="a Recreating event")


async def test_a_crash_looping_model_backs_off_and_reports_its_exit_code(
    docker_env: DockerEnv, test_images: TestImages
) -> None:
    spec = spec_for(
        docker_env,
        test_images,
        "crash",
        container={"image": test_images.exit, "env": [{"name": "EXIT_CODE", "value": "3"}]},
    )
    backoff = BackoffPolicy(base=0.5, cap=2.0, stable_after=30)
    async with (
        kube_cluster() as cluster,
        operator_running(cluster, docker_env.settings(), backoff=backoff),
    ):
        started = time.monotonic()
        await cluster.create(mlmodel("crash", namespace=NS, spec=spec))

        def failed_often(obj: dict[str, Any] | None) -> bool:
            return int(status_of(obj).get("consecutiveFailures") or 0) >= 4

        status = status_of(await cluster.wait_for(NS, "crash", failed_often, timeout=60))
        elapsed = time.monotonic() - started
        assert status["phase"] == "Failed"
        assert status["lastFailure"]["exitCode"] == 3
        assert "exited with code 3" in status["lastFailure"]["message"]
        ready = next(c for c in status["conditions"] if c["type"] == "Ready")
        assert (ready["status"], ready["reason"]) == ("False", "CrashLoopBackOff")
        # The first restart is immediate, then 0.5 s, 1 s: a loop without back-off is faster.
        assert elapsed >= 0.5 + 1.0
        await until(lambda: "BackOff" in reasons(cluster, "crash"), what="a BackOff event")
        assert len(containers_of(docker_env, spec["id"])) == 1


async def test_a_restarted_operator_adopts_its_containers_without_duplicates(
    docker_env: DockerEnv, test_images: TestImages
) -> None:
    names = [f"adopt{i}" for i in range(3)]
    specs = {name: spec_for(docker_env, test_images, name) for name in names}
    async with kube_cluster() as cluster:
        async with operator_running(cluster, docker_env.settings()):
            for name in names:
                await cluster.create(mlmodel(name, namespace=NS, spec=specs[name]))
            # Stopped at once: some models are being created while the operator goes away.
        async with operator_running(cluster, docker_env.settings()):
            ready = {
                name: status_of(await cluster.wait_for_condition(NS, name, "Ready", timeout=30))
                for name in names
            }
        ids = {name: ready[name]["runner"]["containerId"] for name in names}
        async with operator_running(cluster, docker_env.settings()) as third:
            # Wait until the new operator has looked at every model once.
            await until(
                lambda: third.metrics.reconciles.labels(result="ok")._value.get() >= len(names),
                what="a reconcile of every model",
            )
            for name in names:
                (container,) = containers_of(docker_env, specs[name]["id"])
                assert container.id == ids[name]
                assert container.status == "running"
            assert all("Replaced" not in reasons(cluster, name) for name in names)


async def test_a_deleted_model_has_its_container_removed(
    docker_env: DockerEnv, test_images: TestImages
) -> None:
    spec = spec_for(docker_env, test_images, "delete")
    async with kube_cluster() as cluster, operator_running(cluster, docker_env.settings()):
        await cluster.create(mlmodel("delete", namespace=NS, spec=spec))
        await cluster.wait_for_condition(NS, "delete", "Ready", timeout=30)
        assert len(containers_of(docker_env, spec["id"])) == 1
        await cluster.delete(NS, "delete")
        await cluster.wait_gone(NS, "delete", timeout=30)
        assert containers_of(docker_env, spec["id"]) == []
        await until(lambda: "Removed" in reasons(cluster, "delete"), what="a Removed event")


async def test_deleting_while_the_engine_is_down_is_bounded_and_the_orphan_is_collected_later(
    docker_env: DockerEnv, test_images: TestImages
) -> None:
    spec = spec_for(docker_env, test_images, "down")
    dead = docker_env.settings(
        docker_host=f"tcp://127.0.0.1:{free_port()}", runners_docker_timeout=1.0
    )
    async with kube_cluster() as cluster:
        async with operator_running(cluster, docker_env.settings()):
            await cluster.create(mlmodel("down", namespace=NS, spec=spec))
            await cluster.wait_for_condition(NS, "down", "Ready", timeout=30)
        async with operator_running(cluster, dead, delete_timeout=2.0):
            # The engine does not answer: the model says so, and is not declared dead.
            unknown = await cluster.wait_for_condition(NS, "down", "Ready", "Unknown", timeout=30)
            ready = next(c for c in status_of(unknown)["conditions"] if c["type"] == "Ready")
            assert ready["reason"] == "RunnerUnavailable"
            started = time.monotonic()
            await cluster.delete(NS, "down")
            await cluster.wait_gone(NS, "down", timeout=20)
            assert time.monotonic() - started < 15
            await until(
                lambda: "ContainerNotRemoved" in reasons(cluster, "down"),
                what="a ContainerNotRemoved event",
            )
        assert len(containers_of(docker_env, spec["id"])) == 1  # left behind, for now
        async with operator_running(cluster, docker_env.settings()):
            await until(
                lambda: containers_of(docker_env, spec["id"]) == [],
                what="garbage collection of the orphaned container",
            )


async def test_a_changed_spec_id_removes_the_old_ids_container_once_the_new_one_runs(
    docker_env: DockerEnv, test_images: TestImages
) -> None:
    spec = spec_for(docker_env, test_images, "rename")
    renamed = docker_env.model_id("rename", "2")
    async with kube_cluster() as cluster, operator_running(cluster, docker_env.settings()):
        await cluster.create(mlmodel("rename", namespace=NS, spec=spec))
        await cluster.wait_for_condition(NS, "rename", "Ready", timeout=30)
        (old,) = containers_of(docker_env, spec["id"])
        await cluster.patch(NS, "rename", {"spec": {"id": renamed}})

        def running_renamed(obj: dict[str, Any] | None) -> bool:
            status = status_of(obj)
            return status.get("observedGeneration") == 2 and status.get("phase") == "Running"

        await cluster.wait_for(NS, "rename", running_renamed, timeout=30)
        await until(
            lambda: containers_of(docker_env, spec["id"]) == [],
            what="the old id's container removed",
        )
        (new,) = containers_of(docker_env, renamed)
        assert new.id != old.id
        assert new.labels["mlplatform.dev/owner-uid"] == old.labels["mlplatform.dev/owner-uid"]
