"""The KMock Kubernetes emulator as a process of its own, for the operator bench.

Starts ``tests.support.kube_cluster.kube_cluster()`` on a random local port, writes a
kubeconfig pointing at it to the path given, and serves until SIGTERM/SIGINT.

Its discovery also declares kopf's peering resources (``kopf.dev/v1`` ``clusterkopfpeerings``
and ``kopfpeerings``), as on a cluster where they are installed, so the operator runs in its
default (peering) mode. (``--standalone`` cannot be used: ``mlplatform operator`` passes a
peering name to kopf even then, which makes the peering mandatory while standalone mode
watches no peering resource, so kopf pauses every watch for good.)
"""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import kmock

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.kube_cluster import kube_cluster


async def serve(kubeconfig: Path) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with kube_cluster() as cluster:
        verbs = {"create", "delete", "get", "list", "patch", "update", "watch"}
        for plural, kind, namespaced in (
            ("clusterkopfpeerings", "ClusterKopfPeering", False),
            ("kopfpeerings", "KopfPeering", True),
        ):
            cluster.emulator.resources[kmock.resource("kopf.dev", "v1", plural)] = (
                kmock.ResourceInfo(
                    kind=kind, singular=kind.lower(), namespaced=namespaced, verbs=verbs
                )
            )
        temporary = kubeconfig.with_name(f".{kubeconfig.name}.tmp")
        cluster.write_kubeconfig(temporary)
        temporary.rename(kubeconfig)
        print(f"kube_api: serving on {cluster.url}", flush=True)
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(serve(Path(sys.argv[1])))
