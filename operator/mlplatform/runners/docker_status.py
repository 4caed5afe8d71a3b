"""A container as the runner contract tells it: pure, from what the engine reports.

The workload is the serving container (id, name, spec-hash label as revision); an exited
container's code and OOM flag are its ``Termination``; the debug-port claim is
``DebugPorts``; a new revision being brought up behind it is a ``Rollout``; and ``details``
carries what only Docker knows (``containerId``, ``containerName``, ``imageId``,
``hostPorts``). The serving container's readiness and the restart count are left to the core.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from docker.models.containers import Container

from mlplatform.models import timestamps
from mlplatform.models.spec import container_name
from mlplatform.models.status import Reason
from mlplatform.runners import base, docker_plan

if TYPE_CHECKING:  # the claim is read here, decided in docker_debug (which reads RUNNING)
    from mlplatform.runners.docker_debug import DebugClaim

# The engine's container states, as the contract's.
RUNNING = ("running", "paused")
STARTING = ("created", "restarting")
# The engine's "never": a container not started (StartedAt) or not ended (FinishedAt).
_ZERO_TIME = "0001-01-01T00:00:00Z"
# How soon to look at a new revision again while it is starting (it has no probe period yet).
ROLLOUT_RECHECK = 0.25
# How much of a stopped container's output its termination message keeps (the end): enough
# for a traceback's last lines, bounded so that a status stays small (the kubelet keeps 80
# lines or 2 KiB of a container's log under FallbackToLogsOnError).
OUTPUT_LINES = 10
OUTPUT_CHARS = 1024


def status_of(container: Container) -> str:
    """The engine's word for the container's state (``running``, ``exited`` ...)."""
    return str((container.attrs.get("State") or {}).get("Status", "created"))


def holds_alias(container: Container, network: str, alias: str) -> bool:
    networks = container.attrs.get("NetworkSettings", {}).get("Networks") or {}
    return alias in ((networks.get(network) or {}).get("Aliases") or [])


def up_for(container: Container) -> float:
    """Seconds the container has been running (0 if it has not started)."""
    started = _moment(container.attrs["State"], "StartedAt")
    return 0.0 if started is None else max(0.0, time.time() - timestamps.parse(started))


def state(status: str, *, error: str) -> base.State:
    if status in RUNNING:
        return base.State.RUNNING
    if status in STARTING and not error:
        return base.State.STARTING
    return base.State.EXITED


def ending(state: dict[str, Any]) -> str:
    """How a stopped container ended, in a few words (``exited with code 3 (OOM-killed)``)."""
    text = f"exited with code {state.get('ExitCode')}"
    if state.get("OOMKilled"):
        text += " (OOM-killed)"
    if state.get("Error"):
        text += f": {state['Error']}"
    return text


def termination(state: dict[str, Any], *, output: str = "") -> base.Termination:
    """How a stopped container ended, in the words Kubernetes uses for a container: the
    engine's error, else its last output (``output``, as the kubelet's
    ``FallbackToLogsOnError``)."""
    code = int(state["ExitCode"])
    oom = bool(state.get("OOMKilled"))
    error = str(state.get("Error") or "")
    return base.Termination(
        exit_code=code,
        oom_killed=oom,
        reason="OOMKilled" if oom else "Error" if code or error else "Completed",
        message=error or output,
        finished_at=_moment(state, "FinishedAt"),
    )


def last_output(raw: bytes) -> str:
    """A container's last output lines as one bounded line for a status message:
    ``OUTPUT_LINES`` lines at most, ``OUTPUT_CHARS`` characters (the end kept), control
    characters dropped, lines joined with `` | ``."""
    text = raw.decode(errors="replace")
    lines = ["".join(c for c in line if c.isprintable()).strip() for line in text.splitlines()]
    kept = [line for line in lines if line][-OUTPUT_LINES:]
    joined = " | ".join(kept)
    return joined if len(joined) <= OUTPUT_CHARS else "..." + joined[-(OUTPUT_CHARS - 3) :]


def runner_status(
    container: Container,
    workload: base.Workload,
    claim: DebugClaim,
    *,
    action: base.Action,
    pulled: bool = False,
    message: str = "",
    rollout: base.Rollout | None = None,
    output: str = "",
) -> base.RunnerStatus:
    """``container`` as the contract's ``RunnerStatus`` of ``workload``; ``output``: its last
    output (``last_output``), for the termination message of a stopped container."""
    attrs: dict[str, Any] = container.attrs
    state_attrs: dict[str, Any] = attrs["State"]
    current = state(str(state_attrs["Status"]), error=str(state_attrs.get("Error") or ""))
    bindings: dict[str, Any] = attrs["HostConfig"].get("PortBindings") or {}
    host_ports: dict[str, int] = {}
    debug_endpoints: list[str] = []
    for key, binds in sorted(bindings.items(), key=lambda kv: int(kv[0].split("/")[0])):
        for bind in binds or []:
            host_ip, host_port = bind.get("HostIp") or "0.0.0.0", int(bind["HostPort"])
            host_ports[key.split("/")[0]] = host_port
            debug_endpoints.append(f"http://{host_ip}:{host_port}")
    name = str(container.name)
    ended = termination(state_attrs, output=output) if current is base.State.EXITED else None
    notes = [message] if message else []
    if ended is not None and ending(state_attrs) not in message:
        notes.append(ending(state_attrs))
    debug = claim.ports(workload, bound=bool(debug_endpoints))
    if debug is not None and debug.holder:
        notes.append(debug.message)
    ports = workload.spec.container.ports
    alias = docker_plan.stable_alias(workload.owner)
    return base.RunnerStatus(
        state=current,
        action=action,
        workload_id=container.id,
        workload_name=name,
        revision=container.labels.get(base.LABEL_SPEC_HASH),
        # The stable endpoint first, then the container's own name (per version).
        endpoints=[f"http://{alias}:{port}" for port in ports]
        + [f"http://{name}:{port}" for port in ports],
        debug_endpoints=debug_endpoints,
        started_at=_moment(state_attrs, "StartedAt"),
        termination=ended,
        debug=debug,
        image_pulled=pulled,
        message="; ".join(notes),
        details={
            "containerId": container.id,
            "containerName": name,
            "imageId": attrs.get("Image"),
            "hostPorts": host_ports,
        },
        rollout=rollout,
    )


def missing(workload: base.Workload, claim: DebugClaim) -> base.RunnerStatus:
    """No container serves ``workload``."""
    name = container_name(workload.spec.id)
    return base.RunnerStatus(
        state=base.State.MISSING,
        workload_name=name,
        message="no container",
        debug=claim.ports(workload, bound=False),
        details={"containerName": name},
    )


def rollout(
    candidate: Container,
    *,
    message: str = "",
    waiting: base.Problem | None = None,
    recheck_after: float | None = None,
    output: str = "",
) -> base.Rollout:
    """The new revision as the core sees it: starting, waiting, or how it ended (with its
    last ``output``)."""
    state_attrs: dict[str, Any] = candidate.attrs["State"]
    current = state(str(state_attrs["Status"]), error=str(state_attrs.get("Error") or ""))
    ended = termination(state_attrs, output=output) if current is base.State.EXITED else None
    problem = None
    if ended is not None:
        reason = Reason.OOM_KILLED if ended.oom_killed else Reason.CONTAINER_EXITED
        message = f"the new container {candidate.name} {ending(state_attrs)}"
        if output and not state_attrs.get("Error"):
            message += f"; last output: {output}"
        problem = base.Problem(reason, message)
    elif current is base.State.STARTING:
        recheck_after = recheck_after or ROLLOUT_RECHECK
    return base.Rollout(
        revision=candidate.labels.get(base.LABEL_SPEC_HASH),
        workload_name=str(candidate.name),
        workload_id=str(candidate.id),
        started_at=_moment(state_attrs, "StartedAt"),
        problem=problem,
        waiting=waiting,
        termination=ended,
        message=message or (problem.message if problem else ""),
        recheck_after=recheck_after,
    )


def _moment(state: dict[str, Any], key: str) -> str | None:
    """``StartedAt`` / ``FinishedAt`` as the engine wrote it, or None for its "never"."""
    stamp = state.get(key)
    return str(stamp) if stamp and stamp != _ZERO_TIME else None
