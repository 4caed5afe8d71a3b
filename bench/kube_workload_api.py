"""The KMock emulator with the workload kinds, as a process of its own, for the Kubernetes bench.

``python bench/kube_workload_api.py KUBECONFIG REQUEST_LOG`` serves the test suite's
``WorkloadEmulator`` (MLModels, Deployments, Services, claims, pods, label selectors) on a
random local port, writes a kubeconfig pointing at it, and serves until SIGTERM/SIGINT.

Four bench-side adjustments, each for a reason:

- no request history (as ``kube_api.BenchEmulator``: KMock's history makes every request
  slower than the last, and the bench creates thousands of objects);
- one object is found by its key, not by a scan of every stored object (KMock scans, so a
  read, create or patch costs more the more objects exist — of any kind: the operator's
  side, which also stores N MLModels and N Events, would pay for the emulator, not for its
  own work; an API server's cost of a request by name does not grow with the store);
- every request is logged as ``<unix time> <METHOD> <path>`` to REQUEST_LOG (a watch once,
  when it starts), so the bench counts the API requests of a window without touching the
  operator;
- there is no kube-controller-manager behind it, so a Deployment's rollout completes the
  moment it is written (``status`` says every replica is updated, ready and available): an
  idle operator then has nothing to wait for, which is what the idle measurement needs.
  The burst is measured up to the objects' existence, which this does not change.

kopf's peering resources are declared as on a cluster where they are installed (the
operator's default peering mode).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO, Any

import kmock
from kmock._internal import enums as kmock_enums

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.kube_cluster import kube_cluster
from tests.support.kube_workloads import DEPLOYMENTS, WorkloadCluster, WorkloadEmulator

from bench.kube_api import NoHistory, declare_peering, serve_until_stopped


def _completed(deployment: dict[str, Any]) -> dict[str, Any]:
    """The status the Deployment controller writes once every replica serves the template."""
    spec = deployment.get("spec") or {}
    meta = deployment.get("metadata") or {}
    replicas = int(spec.get("replicas", 1))
    return {
        "observedGeneration": int(meta.get("generation") or 1),
        "replicas": replicas,
        "updatedReplicas": replicas,
        "readyReplicas": replicas,
        "availableReplicas": replicas,
        "conditions": [
            {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
            {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"},
        ],
    }


class BenchWorkloadEmulator(NoHistory, WorkloadEmulator):
    """No request history, a request log, and rollouts that complete when written."""

    log: IO[str] | None = None

    async def _handle(self, request: Any) -> Any:
        if self.log is not None:
            self.log.write(f"{time.time():.3f} {request.method.value} {request.url.path}\n")
        if (
            request.resource == DEPLOYMENTS
            and isinstance(request.data, dict)
            and request.action == kmock_enums.action.CREATE
        ):
            request.data.setdefault("metadata", {})["generation"] = 1
            request.data["status"] = _completed(request.data)
        answer = await super()._handle(request)
        if (
            request.resource == DEPLOYMENTS
            and request.action == kmock_enums.action.UPDATE
            and request.subresource is None
            and request.name is not None
        ):
            await self._complete_rollout(request)
        return answer

    # --- requests by name, found by key -----------------------------------------------------

    def _by_key(self, request: Any, *, from_body: bool = False) -> Any:
        """The stored object a request names (None: never stored), as KMock's strict match."""
        namespace, name = request.namespace, request.name
        if from_body and isinstance(request.data, dict):  # a create names it in its body
            meta = request.data.get("metadata") or {}
            namespace, name = namespace or meta.get("namespace"), name or meta.get("name")
        key = (request.resource, namespace, name)
        objects = self.objects  # KMock's ObjectsArray: keyed, with no ``get``
        return objects[key] if key in objects else None  # noqa: SIM401

    async def _serve_fetch(self, request: Any) -> Any:
        async with self._lock:
            obj = self._by_key(request)
        if obj is None or obj.deleted:
            raise kmock.KubernetesObjectNotFoundError()
        return obj.raw

    async def _serve_create(self, request: Any) -> Any:
        async with self._lock:
            return self._by_key(request, from_body=True).raw

    async def _serve_update(self, request: Any) -> Any:
        async with self._lock:
            return self._by_key(request).last.raw

    async def _serve_delete(self, request: Any) -> Any:
        async with self._lock:
            return self._by_key(request).last.raw

    async def _complete_rollout(self, request: Any) -> None:
        async with self._lock:
            stored = self._stored(request)
            if stored is None:
                return
            self.objects[self._key(request)].patch({"status": _completed(stored)})


@contextlib.asynccontextmanager
async def bench_workload_cluster(log: IO[str] | None) -> AsyncIterator[WorkloadCluster]:
    async with kube_cluster(BenchWorkloadEmulator) as cluster:
        assert isinstance(cluster.emulator, BenchWorkloadEmulator)
        cluster.emulator.log = log
        declare_peering(cluster.emulator)
        yield WorkloadCluster(
            emulator=cluster.emulator, server=cluster.server, session=cluster.session
        )


async def serve(kubeconfig: Path, request_log: Path) -> None:
    with request_log.open("a", buffering=1) as log:
        async with bench_workload_cluster(log) as cluster:
            await serve_until_stopped(cluster, kubeconfig, "kube_workload_api")


if __name__ == "__main__":
    asyncio.run(serve(Path(sys.argv[1]), Path(sys.argv[2])))
