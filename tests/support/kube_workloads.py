"""The workload kinds in the KMock emulator, and a small simulator that plays the cluster's part.

``WorkloadEmulator`` is ``ClusterEmulator`` serving, besides MLModels, ``apps/v1``
Deployments and core/v1 Services, PersistentVolumeClaims and Pods (with their ``status``
subresources), and honouring ``labelSelector`` of equality form on lists and watches as the
API server does. There is no kube-controller-manager, scheduler or kubelet behind it:
``ClusterSimulator`` writes what they would, on demand, so a test says what the cluster does
next:

    async with workload_cluster() as cluster:
        sim = ClusterSimulator(cluster)
        await sim.rollout_done("models", "iris")                 # pod Running + Ready, status
        await sim.image_pull_backoff("models", "iris", "... not found")
        await sim.crash_loop("models", "iris", exit_code=3)
        await sim.oom_killed("models", "iris")
        await sim.unschedulable("models", "iris", "0/3 nodes are available: ...")
        await sim.progress_deadline_exceeded("models", "iris")
        await sim.observe_generation("models", "iris")           # controller saw the spec
        await sim.scale_down("models", "iris")                   # replicas 0 → pods gone

Objects are read and written through the HTTP API (``cluster.objects(kind)``,
``cluster.get_object``, ``cluster.delete_object``, ``cluster.patch_object``), so watchers see
every change.

``kubernetes_operator_running(cluster, settings)`` runs the real operator (kopf handlers,
store, controller, sink) against the cluster with the runners ``mlplatform operator`` builds:
``selection.Runners`` with the operator's own API client, each enabled runner watched and
resynced.
"""

from __future__ import annotations

import contextlib
import datetime
import secrets
from collections.abc import AsyncIterator
from typing import Any

import kmock
import kopf
from kmock._internal import rendering as kmock_rendering

from mlplatform.config import Settings
from mlplatform.core.metrics import Metrics
from mlplatform.core.reconcile import Reconciler
from mlplatform.kube import handlers
from mlplatform.kube.api import KubeApi
from mlplatform.kube.operator import Operator
from mlplatform.runners import selection
from tests.support.kube_cluster import (
    ClusterEmulator,
    KubeCluster,
    kube_cluster,
    running_operator,
)

DEPLOYMENTS = kmock.resource("apps", "v1", "deployments")
SERVICES = kmock.resource("", "v1", "services")
CLAIMS = kmock.resource("", "v1", "persistentvolumeclaims")
PODS = kmock.resource("", "v1", "pods")
_VERBS = {"create", "delete", "get", "list", "patch", "update", "watch"}
_PATHS = {
    "Deployment": "/apis/apps/v1/namespaces/{ns}/deployments",
    "Service": "/api/v1/namespaces/{ns}/services",
    "PersistentVolumeClaim": "/api/v1/namespaces/{ns}/persistentvolumeclaims",
    "Pod": "/api/v1/namespaces/{ns}/pods",
}
_ALL = {
    "Deployment": "/apis/apps/v1/deployments",
    "Service": "/api/v1/services",
    "PersistentVolumeClaim": "/api/v1/persistentvolumeclaims",
    "Pod": "/api/v1/pods",
}


class WorkloadEmulator(ClusterEmulator):
    """The emulator with Deployments, Services, claims and pods, and label selectors."""

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        for resource, kind, sub in (
            (DEPLOYMENTS, "Deployment", {"status"}),
            (SERVICES, "Service", {"status"}),
            (CLAIMS, "PersistentVolumeClaim", {"status"}),
            (PODS, "Pod", {"status"}),
        ):
            self.resources[resource] = kmock.ResourceInfo(
                kind=kind, singular=kind.lower(), namespaced=True, verbs=_VERBS, subresources=sub
            )

    async def _serve_list(self, request: kmock_rendering.Request) -> Any:
        listing: Any = await super()._serve_list(request)
        selector = _parse_selector(request.params.get("labelSelector", ""))
        listing["items"] = [item for item in listing["items"] if _selected(item, selector)]
        return listing

    async def _serve_watch(self, request: kmock_rendering.Request) -> AsyncIterator[Any]:
        selector = _parse_selector(request.params.get("labelSelector", ""))
        async for event in super()._serve_watch(request):
            if isinstance(event, dict) and not _selected(event.get("object") or {}, selector):
                continue
            yield event


def _parse_selector(text: str) -> dict[str, str]:
    pairs = [part.split("=", 1) for part in text.split(",") if "=" in part]
    return {key.strip(): value.strip() for key, value in pairs}


def _selected(obj: dict[str, Any], selector: dict[str, str]) -> bool:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return all(labels.get(key) == value for key, value in selector.items())


class WorkloadCluster(KubeCluster):
    """``KubeCluster`` with calls on the workload kinds."""

    async def objects(self, kind: str, namespace: str | None = None) -> list[dict[str, Any]]:
        path = _PATHS[kind].format(ns=namespace) if namespace else _ALL[kind]
        result = await self._call("GET", path)
        assert result is not None
        items: list[dict[str, Any]] = result.get("items", [])
        return items

    async def get_object(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        path = _PATHS[kind].format(ns=namespace) + f"/{name}"
        return await self._call("GET", path, missing_ok=True)

    async def create_object(self, kind: str, obj: dict[str, Any]) -> dict[str, Any]:
        namespace = obj["metadata"]["namespace"]
        result = await self._call("POST", _PATHS[kind].format(ns=namespace), body=obj)
        assert result is not None
        return result

    async def patch_object(
        self, kind: str, namespace: str, name: str, patch: Any, *, status: bool = False
    ) -> dict[str, Any]:
        path = _PATHS[kind].format(ns=namespace) + f"/{name}" + ("/status" if status else "")
        content = (
            "application/json-patch+json"
            if isinstance(patch, list)
            else "application/merge-patch+json"
        )
        result = await self._call("PATCH", path, body=patch, content_type=content)
        assert result is not None
        return result

    async def delete_object(self, kind: str, namespace: str, name: str) -> None:
        await self._call("DELETE", _PATHS[kind].format(ns=namespace) + f"/{name}")


@contextlib.asynccontextmanager
async def kubernetes_operator_running(
    cluster: KubeCluster,
    settings: Settings,
    *,
    resync_interval: float = 60.0,
    delete_timeout: float = 30.0,
    namespaces: tuple[str, ...] = (),
) -> AsyncIterator[Operator]:
    """The operator as ``mlplatform operator`` wires it, running in kopf until the block exits
    (``namespaces``: as ``--namespace``, for the store and the runner alike)."""
    api = KubeApi.for_server(cluster.url, insecure=True)
    runners = selection.Runners(settings, api_client=api.client, namespaces=namespaces)
    enabled = runners.enabled()
    assert enabled, "no runner enabled in these settings"
    operator = Operator(
        reconciler=Reconciler(runners, metrics=Metrics()),
        api=api,
        runner=enabled[0],
        more_runners=enabled[1:],
        namespaces=namespaces,
        resync_interval=resync_interval,
        delete_timeout=delete_timeout,
    )
    registry = kopf.OperatorRegistry()
    handlers.register(registry, operator)
    kopf_settings = handlers.configure(kopf.OperatorSettings())
    async with running_operator(cluster, registry=registry, settings=kopf_settings):
        try:
            yield operator
        finally:
            # Stop the controller (kopf's clean-up does it again, harmlessly) and close the
            # client's kept-alive connections: kopf waits at exit for the emulator's tasks
            # serving them.
            await operator.stop()
            api.client.close()


@contextlib.asynccontextmanager
async def workload_cluster() -> AsyncIterator[WorkloadCluster]:
    """A started emulator serving the workload kinds (see the module docstring)."""
    async with kube_cluster(WorkloadEmulator) as cluster:
        yield WorkloadCluster(
            emulator=cluster.emulator, server=cluster.server, session=cluster.session
        )


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class ClusterSimulator:
    """Writes Deployment and Pod status as the controllers, scheduler and kubelet would."""

    def __init__(self, cluster: WorkloadCluster) -> None:
        self.cluster = cluster

    async def deployment(self, namespace: str, name: str) -> dict[str, Any]:
        found = await self.cluster.get_object("Deployment", namespace, name)
        assert found is not None, f"no Deployment {namespace}/{name}"
        return found

    async def pods(self, namespace: str, name: str) -> list[dict[str, Any]]:
        deployment = await self.deployment(namespace, name)
        selector = deployment["spec"]["selector"]["matchLabels"]
        return [
            pod for pod in await self.cluster.objects("Pod", namespace) if _selected(pod, selector)
        ]

    async def _pod(self, namespace: str, name: str, status: dict[str, Any]) -> dict[str, Any]:
        """The pod of the Deployment's current template (created as the ReplicaSet would)."""
        deployment = await self.deployment(namespace, name)
        template = deployment["spec"]["template"]
        revision = template["metadata"]["annotations"]["mlplatform.dev/spec-hash"]
        for pod in await self.pods(namespace, name):
            if pod["metadata"]["annotations"].get("mlplatform.dev/spec-hash") == revision:
                return await self.cluster.patch_object(
                    "Pod", namespace, pod["metadata"]["name"], {"status": status}, status=True
                )
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": f"{name}-{revision[:10]}-{secrets.token_hex(3)[:5]}",
                "namespace": namespace,
                "labels": dict(template["metadata"]["labels"]),
                "annotations": dict(template["metadata"]["annotations"]),
            },
            "spec": template["spec"],
        }
        await self.cluster.create_object("Pod", pod)
        return await self.cluster.patch_object(
            "Pod", namespace, pod["metadata"]["name"], {"status": status}, status=True
        )

    async def _deployment_status(
        self,
        namespace: str,
        name: str,
        *,
        updated: int,
        ready: int,
        available: int,
        current: int | None = None,
        conditions: list[dict[str, Any]] | None = None,
    ) -> None:
        deployment = await self.deployment(namespace, name)
        status: dict[str, Any] = {
            "observedGeneration": deployment["metadata"]["generation"],
            "replicas": updated if current is None else current,
            "updatedReplicas": updated,
            "readyReplicas": ready,
            "availableReplicas": available,
            "conditions": conditions or [],
        }
        await self.cluster.patch_object(
            "Deployment", namespace, name, {"status": status}, status=True
        )

    async def observe_generation(self, namespace: str, name: str) -> None:
        """The Deployment controller saw the latest spec: a new pod (surge) is on its way."""
        deployment = await self.deployment(namespace, name)
        old = deployment.get("status") or {}
        await self._deployment_status(
            namespace,
            name,
            updated=0,
            ready=int(old.get("readyReplicas") or 0),
            available=int(old.get("availableReplicas") or 0),
            current=int(old.get("replicas") or 0) + 1,
        )

    async def rollout_done(self, namespace: str, name: str, *, restarts: int = 0) -> None:
        """The current template's pod runs and is Ready; old pods are gone."""
        deployment = await self.deployment(namespace, name)
        revision = deployment["spec"]["template"]["metadata"]["annotations"][
            "mlplatform.dev/spec-hash"
        ]
        await self._pod(
            namespace,
            name,
            {
                "phase": "Running",
                "conditions": [
                    {"type": "PodScheduled", "status": "True"},
                    {"type": "Ready", "status": "True"},
                ],
                "containerStatuses": [
                    {
                        "name": "model",
                        "ready": True,
                        "restartCount": restarts,
                        "state": {"running": {"startedAt": _now()}},
                    }
                ],
            },
        )
        for pod in await self.pods(namespace, name):
            if pod["metadata"]["annotations"].get("mlplatform.dev/spec-hash") != revision:
                await self.cluster.delete_object("Pod", namespace, pod["metadata"]["name"])
        await self._deployment_status(
            namespace,
            name,
            updated=1,
            ready=1,
            available=1,
            conditions=[
                {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
                {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"},
            ],
        )

    async def _failing(
        self, namespace: str, name: str, container: dict[str, Any], *, conditions: Any = None
    ) -> None:
        deployment = await self.deployment(namespace, name)
        old = deployment.get("status") or {}
        serving = int(old.get("availableReplicas") or 0)
        await self._pod(
            namespace,
            name,
            {
                "phase": "Pending" if conditions else "Running",
                "conditions": conditions or [{"type": "PodScheduled", "status": "True"}],
                "containerStatuses": [container] if container else [],
            },
        )
        await self._deployment_status(
            namespace, name, updated=1, ready=serving, available=serving, current=1 + serving
        )

    async def image_pull_backoff(self, namespace: str, name: str, message: str) -> None:
        await self._failing(
            namespace,
            name,
            {
                "name": "model",
                "ready": False,
                "restartCount": 0,
                "state": {"waiting": {"reason": "ImagePullBackOff", "message": message}},
            },
        )

    async def crash_loop(
        self, namespace: str, name: str, *, exit_code: int, restarts: int = 3
    ) -> None:
        await self._failing(
            namespace,
            name,
            {
                "name": "model",
                "ready": False,
                "restartCount": restarts,
                "state": {
                    "waiting": {
                        "reason": "CrashLoopBackOff",
                        "message": "back-off 40s restarting failed container=model",
                    }
                },
                "lastState": {
                    "terminated": {"exitCode": exit_code, "reason": "Error", "finishedAt": _now()}
                },
            },
        )

    async def oom_killed(self, namespace: str, name: str, *, restarts: int = 1) -> None:
        await self._failing(
            namespace,
            name,
            {
                "name": "model",
                "ready": False,
                "restartCount": restarts,
                "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 10s"}},
                "lastState": {
                    "terminated": {"exitCode": 137, "reason": "OOMKilled", "finishedAt": _now()}
                },
            },
        )

    async def unschedulable(self, namespace: str, name: str, message: str) -> None:
        await self._failing(
            namespace,
            name,
            {},
            conditions=[
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": message,
                }
            ],
        )

    async def progress_deadline_exceeded(self, namespace: str, name: str) -> None:
        await self._deployment_status(
            namespace,
            name,
            updated=1,
            ready=0,
            available=0,
            conditions=[
                {
                    "type": "Progressing",
                    "status": "False",
                    "reason": "ProgressDeadlineExceeded",
                    "message": f'ReplicaSet "{name}-abc" has timed out progressing.',
                }
            ],
        )

    async def scale_down(self, namespace: str, name: str) -> None:
        """Replicas 0 observed: the pods are gone."""
        for pod in await self.pods(namespace, name):
            await self.cluster.delete_object("Pod", namespace, pod["metadata"]["name"])
        await self._deployment_status(namespace, name, updated=0, ready=0, available=0, current=0)
