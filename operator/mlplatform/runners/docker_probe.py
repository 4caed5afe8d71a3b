"""The readiness probe: one HTTP GET against a container's address on the models' network.

The probe talks to the container's IP, so the process that runs the runner must be where
that network is routable (the engine's host, or a container on it). Its whole time is bounded
by ``timeoutSeconds``, as the kubelet's is: a socket timeout alone bounds each read, and a
server that trickles a byte a second would hold the probe (and the worker running it)
forever; at the deadline the connection is shut, which ends any read in progress.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import threading

from docker.models.containers import Container

from mlplatform.models.spec import ReadinessProbe
from mlplatform.runners import base


def probe(container: Container, readiness: ReadinessProbe, network: str) -> base.ProbeResult:
    """One HTTP GET of ``readiness`` against ``container``'s IP on ``network``."""
    if container.attrs["State"]["Status"] != "running":
        return base.ProbeResult(ok=False, message="the container is not running")
    networks = container.attrs["NetworkSettings"]["Networks"] or {}
    address = (networks.get(network) or {}).get("IPAddress")
    if not address:
        return base.ProbeResult(ok=False, message="the container has no address yet")
    get = readiness.http_get
    url = f"http://{address}:{get.port}{get.path}"
    timeout = readiness.timeout_seconds
    connection = http.client.HTTPConnection(address, get.port, timeout=timeout)
    expired = threading.Event()
    deadline = threading.Timer(timeout, _cut, args=(connection, expired))
    deadline.daemon = True
    deadline.start()
    try:
        connection.request("GET", get.path, headers={"User-Agent": "mlplatform-probe"})
        code = connection.getresponse().status
    except (OSError, http.client.HTTPException) as error:
        if expired.is_set():
            return base.ProbeResult(ok=False, message=f"GET {url} timed out after {timeout}s")
        return base.ProbeResult(ok=False, message=f"GET {url} failed: {error or 'timeout'}")
    finally:
        deadline.cancel()
        connection.close()
    if expired.is_set():  # answered just as the deadline passed: late is a failure
        return base.ProbeResult(ok=False, message=f"GET {url} timed out after {timeout}s")
    if 200 <= code < 400:
        return base.ProbeResult(ok=True, message=f"GET {url} answered {code}")
    return base.ProbeResult(ok=False, message=f"GET {url} answered {code}")


def _cut(connection: http.client.HTTPConnection, expired: threading.Event) -> None:
    """The probe's deadline: shut the connection, so that a read in progress ends now."""
    expired.set()
    sock = connection.sock
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
