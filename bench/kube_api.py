"""The KMock Kubernetes emulator as a process of its own, for the operator bench.

Starts the test suite's emulator (``tests.support.kube_cluster``) on a random local port, writes a
kubeconfig pointing at it to the path given, and serves until SIGTERM/SIGINT.

Its discovery also declares kopf's peering resources (``kopf.dev/v1`` ``clusterkopfpeerings``
and ``kopfpeerings``), as on a cluster where they are installed, so the operator runs in its
default (peering) mode, the costlier of the two.

KMock keeps every request it ever served (for test assertions) and matches each new request
against that history, so its cost per request grows with the number served: at a few
thousand requests (a burst of 100 models) the emulator saturates a core and the operator's
status writes time out. ``BenchEmulator`` keeps only the request being served, so the bench
measures the operator rather than the emulator's history.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path
from typing import Any

import kmock

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.kube_cluster import ClusterEmulator, KubeCluster, kube_cluster


class NoHistory(ClusterEmulator):
    """An emulator that keeps only the request being served (see the module docstring)."""

    async def _handle(self, request: Any) -> Any:
        history = self._requests
        if len(history) > 1 and history[-1] is request:
            del history[:-1]
        return await super()._handle(request)


class BenchEmulator(NoHistory):
    """The test emulator without KMock's ever-growing request history."""


def declare_peering(emulator: ClusterEmulator) -> None:
    """kopf's peering resources in discovery, as on a cluster where they are installed."""
    verbs = {"create", "delete", "get", "list", "patch", "update", "watch"}
    for plural, kind, namespaced in (
        ("clusterkopfpeerings", "ClusterKopfPeering", False),
        ("kopfpeerings", "KopfPeering", True),
    ):
        emulator.resources[kmock.resource("kopf.dev", "v1", plural)] = kmock.ResourceInfo(
            kind=kind, singular=kind.lower(), namespaced=namespaced, verbs=verbs
        )


async def serve_until_stopped(cluster: KubeCluster, kubeconfig: Path, name: str) -> None:
    """Write the kubeconfig (whole, by a rename) once ``cluster`` serves, then serve until
    SIGTERM or SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    temporary = kubeconfig.with_name(f".{kubeconfig.name}.tmp")
    cluster.write_kubeconfig(temporary)
    temporary.rename(kubeconfig)
    print(f"{name}: serving on {cluster.url}", flush=True)
    await stop.wait()


async def serve(kubeconfig: Path) -> None:
    async with kube_cluster(BenchEmulator) as cluster:
        declare_peering(cluster.emulator)
        await serve_until_stopped(cluster, kubeconfig, "kube_api")


if __name__ == "__main__":
    asyncio.run(serve(Path(sys.argv[1])))
