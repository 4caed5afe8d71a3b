"""Where the time of a start went, read from the counting proxy's log."""

from __future__ import annotations

import collections
import re
import statistics
from typing import Any

from bench.env import BenchEnv


def shape(path: str) -> str:
    """A request path with ids and query values blanked, to group requests by kind."""
    path = re.sub(r"/v1\.\d+", "", path.partition("?")[0])
    return re.sub(r"/[0-9a-f]{64}|/mlpt-[^/]+", "/{id}", path)


def docker_phases(env: BenchEnv, start: float, end: float, name: str) -> dict[str, Any]:
    """Where one start's time went, from the proxy's log: seconds from ``start`` to the first
    Docker request, to the container's create and start requests, and the requests made."""
    requests = env.requests_between(start, end + 0.001)
    phases: dict[str, Any] = {"requests": len(requests), "answered": round(end - start, 4)}
    if requests:
        phases["first_request"] = round(requests[0][0] - start, 4)
    for stamp, method, path in requests:
        if method == "POST" and "/containers/create" in path and name in path:
            phases.setdefault("create", round(stamp - start, 4))
        elif method == "POST" and path.partition("?")[0].endswith("/start"):
            phases.setdefault("start", round(stamp - start, 4))
    phases["kinds"] = dict(collections.Counter(f"{m} {shape(p)}" for _, m, p in requests))
    return phases


def phases_summary(phases: list[dict[str, Any]]) -> dict[str, Any]:
    """Median of each phase over the repetitions, and the request kinds of the first one."""
    keys = ("first_request", "create", "start", "answered", "requests")
    medians = {}
    for key in keys:
        values = [p[key] for p in phases if key in p]
        if values:
            medians[key] = round(statistics.median(values), 4)
    return {"median": medians, "example_requests": phases[0]["kinds"] if phases else {}}
