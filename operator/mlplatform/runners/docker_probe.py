"""The readiness probe: one HTTP GET against a container's address on the models' network.

The probe talks to the container's IP, so the process that runs the runner must be where
that network is routable (the engine's host, or a container on it).
"""

from __future__ import annotations

import http.client

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
    connection = http.client.HTTPConnection(address, get.port, timeout=readiness.timeout_seconds)
    try:
        connection.request("GET", get.path, headers={"User-Agent": "mlplatform-probe"})
        code = connection.getresponse().status
    except (OSError, http.client.HTTPException) as error:
        return base.ProbeResult(ok=False, message=f"GET {url} failed: {error or 'timeout'}")
    finally:
        connection.close()
    if 200 <= code < 400:
        return base.ProbeResult(ok=True, message=f"GET {url} answered {code}")
    return base.ProbeResult(ok=False, message=f"GET {url} answered {code}")
