"""What a model's Docker container looks like: names, labels, mounts, ports, limits, security.

Pure translation from a ``Workload`` (plus settings and the debug-port decision) to the
arguments of ``containers.create`` and the spec hash that says when a running container no
longer matches. No engine calls happen here, so every rule reads in one place:

- volumes: ``/data`` → ``DATA_DIR`` read-only, ``/models`` → ``MLMODELS_DIR`` read-only,
  any other volume → ``STORAGE_DIR/services-ml/<name>/<version>/<basename>`` read-write.
- debug ports: container port ``ports[i]`` → host port ``P + i`` on the debug host IP,
  only when this model holds the claim (decided by the runner, passed in as ``debug_base``).
- names and labels: container ``<name>-<version>``; managed-by, model-id, owner, controller
  and spec-hash labels.
- the stable endpoint: every container of a model joins the models' network with the alias
  ``<metadata.name>.<namespace>`` (``stable_alias``), which no spec or version change moves;
  a new revision is created under a temporary name (``candidate_name``) and takes the
  contract name when it takes over (docs/design.md, "Updates without a gap").
- the grace period: ``spec.container.terminationGracePeriodSeconds`` is the container's own
  stop timeout, so every stop (ours, ``docker stop``, an engine shutdown) honours it.
- security defaults: never privileged, never the host network, ``no-new-privileges``, and
  these capabilities dropped from Docker's default set because a model server has no use for
  them: ``NET_RAW`` (raw sockets, packet spoofing), ``MKNOD`` (device nodes), ``SYS_CHROOT``,
  ``AUDIT_WRITE``, ``SETFCAP`` and ``SETPCAP`` (granting file/process capabilities). Kept:
  ``CHOWN``, ``DAC_OVERRIDE``, ``FOWNER``, ``FSETID``, ``SETUID``, ``SETGID``, ``KILL`` and
  ``NET_BIND_SERVICE``, which ordinary images need to start as root, drop to a service user
  and bind a port below 1024.
- Resources: cpu → ``nano_cpus``; memory → ``mem_limit`` with swap equal to it (no swap, as
  in Kubernetes), so exceeding the limit is an OOM kill rather than silent swapping. A spec
  without them gets the settings' defaults (``RUNNERS_DOCKER_DEFAULT_MEMORY``, ``_CPU``): no
  model runs unlimited. A spec above an administrator's cap (``RUNNERS_DOCKER_MAX_MEMORY``,
  ``_CPU``) is refused (``OverLimit``, naming the setting). Every container also has a pids
  limit (``RUNNERS_DOCKER_PIDS_LIMIT``: a fork bomb stays inside) and a rotated log
  (``RUNNERS_DOCKER_LOG_MAX_SIZE`` times ``_MAX_FILES``: a chatty model cannot fill the disk).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlplatform import errors
from mlplatform.config import Settings
from mlplatform.models import quantities
from mlplatform.models.spec import container_name, split_id, volume_basename
from mlplatform.runners import base

STORAGE_SUBDIR = "services-ml"
DATA_VOLUME = "/data"
MODELS_VOLUME = "/models"
# Docker-specific label: the debug ports this container publishes ("7000-7001"); its presence
# is the debug-port claim.
LABEL_DEBUG_PORTS = "mlplatform.dev/debug-ports"
# Docker-specific label: the stable network alias the container serves (or will serve) under;
# how a runner finds who holds an alias, whatever the controller.
LABEL_ENDPOINT = "mlplatform.dev/endpoint"
# Contract names (``<name>-<version>``) are lower-case DNS labels: a name with this character
# can never be one, so a temporary name never collides with any model's container name.
CANDIDATE_SEPARATOR = "_"
CANDIDATE_REVISION_CHARS = 12
# On every container whose model asks for debug ports: the claimers, oldest first, take the
# ports in turn when the holder lets them go.
LABEL_DEBUG_REQUESTED = "mlplatform.dev/debug-requested"
SECURITY_OPT = ("no-new-privileges",)
CAP_DROP = ("NET_RAW", "MKNOD", "SYS_CHROOT", "AUDIT_WRITE", "SETFCAP", "SETPCAP")
# Networks that would break endpoints or isolation (security defaults: no host network).
FORBIDDEN_NETWORKS = frozenset({"host", "none", "bridge", "default"})


@dataclass(frozen=True)
class Mount:
    """One bind mount: host folder → container path."""

    source: Path
    target: str
    read_only: bool

    def bind(self) -> str:
        return f"{self.source}:{self.target}:{'ro' if self.read_only else 'rw'}"


@dataclass(frozen=True)
class ContainerPlan:
    """Everything the runner needs to create one model container, and its hash."""

    name: str
    image: str
    labels: dict[str, str]
    mounts: list[Mount]
    debug_ports: dict[int, int]  # container port → host port; empty unless holding the claim
    spec_hash: str
    create_args: dict[str, Any] = field(repr=False)
    # The network aliases the serving container answers under: the stable alias first.
    aliases: tuple[str, ...] = ()

    @property
    def candidate_name(self) -> str:
        """The temporary name of this revision while an older one still serves."""
        return candidate_name(self.name, self.spec_hash)

    def folders_to_create(self) -> list[Path]:
        return [mount.source for mount in self.mounts]


def storage_folder(settings: Settings, model_id: str) -> Path:
    """``STORAGE_DIR/services-ml/<name>/<version>``: the model's only persistence."""
    name, version = split_id(model_id)
    return settings.storage_dir / STORAGE_SUBDIR / name / version


def mounts_for(workload: base.Workload, settings: Settings) -> list[Mount]:
    """Volumes: where each of the spec's volumes comes from on the host."""
    mounts = []
    for path in workload.spec.container.volumes:
        if path == DATA_VOLUME:
            mounts.append(Mount(settings.data_dir, path, read_only=True))
        elif path == MODELS_VOLUME:
            mounts.append(Mount(settings.mlmodels_dir, path, read_only=True))
        else:
            folder = storage_folder(settings, workload.spec.id) / volume_basename(path)
            mounts.append(Mount(folder, path, read_only=False))
    return mounts


def debug_port_map(workload: base.Workload, debug_base: int | None) -> dict[int, int]:
    """Debug ports: container ports take consecutive host ports from ``debug_base``."""
    if debug_base is None:
        return {}
    return {port: debug_base + i for i, port in enumerate(workload.spec.container.ports)}


def labels_for(workload: base.Workload, settings: Settings) -> dict[str, str]:
    """The ownership labels and the desired state's source, without the spec hash."""
    labels = {
        **base.owned_labels(settings.controller),
        base.LABEL_MODEL_ID: workload.spec.id,
        base.LABEL_OWNER_NAMESPACE: workload.owner.namespace,
        base.LABEL_OWNER_NAME: workload.owner.name,
        base.LABEL_OWNER_UID: workload.owner.uid,
    }
    if workload.source is not None:
        labels[base.LABEL_SOURCE] = workload.source
    return labels


def stable_alias(owner: base.Owner) -> str:
    """The model's stable name on the models' network: ``<metadata.name>.<namespace>``.

    Like a Kubernetes Service name, it follows the object, not the spec: an id or a spec
    change never moves it. A namespace is a DNS label (no dots), so the last label always
    names it and two objects never share an alias under one API server.
    """
    return f"{owner.name}.{owner.namespace}"


def candidate_name(name: str, revision: str) -> str:
    """``iris-1.0`` + revision → ``iris-1.0_3f9a2c1b5d6e``: a new revision's temporary name."""
    return f"{name}{CANDIDATE_SEPARATOR}{revision[:CANDIDATE_REVISION_CHARS]}"


def is_candidate_name(name: str) -> bool:
    """Whether ``name`` is a temporary name (never a contract name)."""
    return CANDIDATE_SEPARATOR in name


def owned_label_filter(controller: str) -> list[str]:
    """The engine's label filter for every container of ``controller`` (lists, events)."""
    return [f"{key}={value}" for key, value in base.owned_labels(controller).items()]


def resource_limits(workload: base.Workload, settings: Settings) -> dict[str, Any]:
    """The container's limits: the spec's, else the defaults; ``OverLimit`` above a cap."""
    resources = workload.spec.container.resources
    cpu_text = resources.cpu if resources is not None and resources.cpu is not None else None
    memory_text = (
        resources.memory if resources is not None and resources.memory is not None else None
    )
    cpu = quantities.parse_cpu(cpu_text or settings.runners_docker_default_cpu)
    memory = quantities.parse_memory(memory_text or settings.runners_docker_default_memory)
    assert cpu is not None and memory is not None  # both validated (spec rules, settings)
    caps = (
        ("cpu", cpu_text, cpu, settings.runners_docker_max_cpu, quantities.parse_cpu,
         "RUNNERS_DOCKER_MAX_CPU"),
        ("memory", memory_text, memory, settings.runners_docker_max_memory,
         quantities.parse_memory, "RUNNERS_DOCKER_MAX_MEMORY"),
    )  # fmt: skip
    for field_name, asked, amount, cap, parse, variable in caps:
        most = parse(cap) if cap is not None else None
        if asked is not None and most is not None and amount > most:
            raise errors.OverLimit(
                f"spec.container.resources.{field_name} {asked} is more than this runner "
                f"allows ({variable}={cap})"
            )
    return {
        "nano_cpus": cpu,
        "mem_limit": memory,
        "memswap_limit": memory,
        "pids_limit": settings.runners_docker_pids_limit,
        "log_config": {
            "type": "json-file",
            "config": {
                "max-size": settings.runners_docker_log_max_size,
                "max-file": str(settings.runners_docker_log_max_files),
            },
        },
    }


def plan(workload: base.Workload, settings: Settings, *, debug_base: int | None) -> ContainerPlan:
    """The container for ``workload``; ``debug_base`` is set only for the debug-port holder."""
    spec = workload.spec
    container = spec.container
    mounts = mounts_for(workload, settings)
    debug_ports = debug_port_map(workload, debug_base)
    name = container_name(spec.id)
    limits = resource_limits(workload, settings)
    # The hash covers what shapes the container (not suspend, not the owner): a change
    # replaces the container, anything else leaves it alone.
    shape: dict[str, object] = {
        "limits": limits,
        "id": spec.id,
        "container": container.model_dump(mode="json", by_alias=True, exclude_none=True),
        "mounts": [mount.bind() for mount in mounts],
        "network": settings.runners_docker_network,
        "debugPorts": {str(c): h for c, h in debug_ports.items()},
        "debugHostIp": settings.runners_docker_debug_host_ip if debug_ports else None,
    }
    if spec.debug:
        # Asking for debug ports is recorded on the container (it queues for the ports).
        shape["debugRequested"] = True
    if workload.source is not None:
        # A manifest moved to another file re-labels its container: the source label is
        # what decides which local run may remove it, so it must never be stale.
        shape["source"] = workload.source
    spec_hash = hashlib.sha256(json.dumps(shape, sort_keys=True).encode()).hexdigest()[:32]
    alias = stable_alias(workload.owner)
    labels = {
        **labels_for(workload, settings),
        base.LABEL_SPEC_HASH: spec_hash,
        LABEL_ENDPOINT: alias,
    }
    if debug_ports:
        first, last = min(debug_ports.values()), max(debug_ports.values())
        labels[LABEL_DEBUG_PORTS] = f"{first}-{last}"
    if spec.debug:
        labels[LABEL_DEBUG_REQUESTED] = "true"
    args: dict[str, Any] = {
        "name": name,
        "hostname": name,
        "labels": labels,
        "environment": {var.name: var.value for var in container.env},
        "volumes": [mount.bind() for mount in mounts],
        "network": settings.runners_docker_network,
        "ports": {
            f"{c}/tcp": (settings.runners_docker_debug_host_ip, h) for c, h in debug_ports.items()
        },
        "privileged": False,
        "security_opt": list(SECURITY_OPT),
        "cap_drop": list(CAP_DROP),
        "stop_timeout": container.termination_grace_period_seconds,
    }
    if container.command is not None:
        args["entrypoint"] = list(container.command)
    if container.args is not None:
        args["command"] = list(container.args)
    args.update(limits)
    return ContainerPlan(
        name=name,
        image=container.image,
        labels=labels,
        mounts=mounts,
        debug_ports=debug_ports,
        spec_hash=spec_hash,
        create_args=args,
        aliases=(alias, name),
    )
