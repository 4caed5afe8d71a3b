"""What a model looks like in a cluster: its Deployment, Service and storage claim, as plain dicts.

Pure translation from a ``Workload`` and the settings to the three objects the Kubernetes
runner owns in the MLModel's namespace, and the spec hash that says which spec they carry.
No API calls happen here, so every rule reads in one place:

- Names: the Deployment and the Service are named after the MLModel (a DNS-1035 label, the
  spec rules see to it); the claim is ``<name>-storage``. Endpoints are the Service's DNS
  names, ``http://<name>.<namespace>.svc:<port>``.
- One pod at a time: replicas 1 (0 while suspended); a RollingUpdate with maxUnavailable 0
  and maxSurge 1, so a spec change never drops the serving pod before the new one is Ready;
  ``minReadySeconds: 1`` as the Docker runner's "stayed up for a second".
- The container: image, pull policy, one named port per spec port (``http-<port>``), env,
  command, args, resources with requests = limits (Guaranteed QoS when both are given), the
  readiness probe with ``failureThreshold: 1`` (one failed probe makes the pod not Ready,
  as the spec promises).
- Security: no privilege escalation, not privileged, every capability dropped and only the
  Docker runner's kept set added back (an ordinary image may start as root, chown its
  folders, drop to a service user and bind a low port), ``RuntimeDefault`` seccomp, no host
  namespaces, the service account token not mounted, no service links in the environment.
- Storage, as the Docker runner has it, the Kubernetes way: every volume except ``/data``
  and ``/models`` is a ``subPath`` (its base name, unique by the spec rules) of the one
  claim ``<name>-storage`` (size and class from settings); ``/data`` and ``/models`` are
  mounted read-only from the claims the settings name. A spec asking for one of those with
  no claim configured gets ``StorageNotConfigured`` and no object at all. A pod with a
  claim must share the node of the pod it replaces (the claim is ReadWriteOnce), so it has
  a required pod affinity to its own labels: the first pod goes anywhere, a surge pod joins
  the serving one.
- Ownership: the managed labels on every object (the id's label-safe form in
  ``mlplatform.dev/model-id``, the exact id in the annotation of the same name), the
  spec-hash annotation, and an ``ownerReferences`` entry to the MLModel (controller,
  blockOwnerDeletion) so that Kubernetes' garbage collector removes them with it. The claim
  gets that entry only when ``RUNNERS_KUBERNETES_DELETE_CLAIM`` is true: by default it
  outlives the MLModel, like the Docker runner's storage folder.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any, Final

from mlplatform import errors
from mlplatform.config import Settings
from mlplatform.models import quantities
from mlplatform.models.spec import API_GROUP, API_VERSION, KIND, split_id, volume_basename
from mlplatform.runners import base

CONTAINER_NAME: Final = "model"
STORAGE_VOLUME: Final = "storage"
DATA_PATH: Final = "/data"
MODELS_PATH: Final = "/models"
STORAGE_SUFFIX: Final = "-storage"
# Annotations: the exact model id (the label holds a label-safe form) and the spec hash.
ANNOTATION_MODEL_ID: Final = base.LABEL_MODEL_ID
ANNOTATION_SPEC_HASH: Final = base.LABEL_SPEC_HASH
# The capabilities an ordinary image needs to start as root, chown its folders, drop to a
# service user and bind a port below 1024 (the Docker runner keeps the same set).
CAPABILITIES_KEPT: Final = (
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "SETUID",
    "SETGID",
    "KILL",
    "NET_BIND_SERVICE",
)
REVISION_HISTORY_LIMIT: Final = 3
PROGRESS_DEADLINE_SECONDS: Final = 600
MIN_READY_SECONDS: Final = 1
HOSTNAME_TOPOLOGY: Final = "kubernetes.io/hostname"
_LABEL_VALUE_MAX: Final = 63


@dataclass(frozen=True)
class KubernetesPlan:
    """The objects for one model, their names and the spec hash they carry."""

    namespace: str
    name: str  # the Deployment's and the Service's
    claim_name: str | None  # None: the spec has no storage volume
    spec_hash: str
    deployment: dict[str, Any]
    service: dict[str, Any]
    claim: dict[str, Any] | None
    endpoints: list[str]
    selector: dict[str, str]

    def objects(self) -> list[dict[str, Any]]:
        """Every object of the plan, claim first (the pod mounts it)."""
        return [o for o in (self.claim, self.deployment, self.service) if o is not None]


def label_safe_id(model_id: str) -> str:
    """``spec.id`` as a label value: ``iris:1.0`` → ``iris_1.0``.

    ``_`` never occurs in an id, so the form is one-to-one; an id of 64 characters (one
    over a label value's limit) keeps its first 54 and a digest of the whole.
    """
    safe = model_id.replace(":", "_")
    if len(safe) <= _LABEL_VALUE_MAX:
        return safe
    digest = hashlib.sha256(model_id.encode()).hexdigest()[:8]
    return f"{safe[:54].rstrip('._-')}-{digest}"


def claim_name(name: str) -> str:
    """The storage claim of the MLModel ``name``."""
    return f"{name}{STORAGE_SUFFIX}"


def endpoints(name: str, namespace: str, ports: list[int]) -> list[str]:
    """The Service's in-cluster addresses, one per port."""
    return [f"http://{name}.{namespace}.svc:{port}" for port in ports]


def port_name(port: int) -> str:
    """A container/Service port name (an IANA service name: at most 15 characters)."""
    return f"http-{port}"


def selector_labels(owner: base.Owner) -> dict[str, str]:
    """The Deployment's selector and the Service's: immutable for the MLModel's life."""
    return {base.LABEL_MANAGED_BY: base.MANAGED_BY, base.LABEL_OWNER_NAME: owner.name}


def managed_labels(workload: base.Workload, settings: Settings) -> dict[str, str]:
    """The ownership labels on every object (and the pods)."""
    name, version = split_id(workload.spec.id)
    owner = workload.owner
    return {
        **selector_labels(owner),
        base.LABEL_CONTROLLER: settings.controller,
        base.LABEL_MODEL_ID: label_safe_id(workload.spec.id),
        base.LABEL_OWNER_NAMESPACE: owner.namespace,
        base.LABEL_OWNER_UID: owner.uid,
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/instance": owner.name,
        "app.kubernetes.io/version": _label_value(version),
        "app.kubernetes.io/component": "model-server",
        "app.kubernetes.io/managed-by": base.MANAGED_BY,
    }


def owner_reference(owner: base.Owner) -> dict[str, Any]:
    """The MLModel as the controller of an object (Kubernetes' garbage collector follows it)."""
    return {
        "apiVersion": f"{API_GROUP}/{API_VERSION}",
        "kind": KIND,
        "name": owner.name,
        "uid": owner.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def cpu_quantity(value: str | int) -> str:
    """A CPU quantity in the API server's canonical form (``0.5`` → ``500m``)."""
    nano = quantities.parse_cpu(value)
    assert nano is not None, value  # the spec rules admitted it
    milli = nano // 10**6
    return str(milli // 1000) if milli % 1000 == 0 else f"{milli}m"


def memory_quantity(value: str | int) -> str:
    """A memory quantity in a canonical binary form (``0.5Gi`` → ``512Mi``)."""
    size = quantities.parse_memory(value)
    assert size is not None, value
    for suffix, factor in (("Ti", 2**40), ("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10)):
        if size % factor == 0:
            return f"{size // factor}{suffix}"
    return str(size)


def plan(workload: base.Workload, settings: Settings) -> KubernetesPlan:
    """The Deployment, Service and claim for ``workload`` (see the module docstring).

    Raises ``StorageNotConfigured`` when the spec mounts ``/data`` or ``/models`` and the
    setting naming its claim is unset.
    """
    spec = workload.spec
    owner = workload.owner
    container = spec.container
    name, namespace = owner.name, owner.namespace
    storage_paths = [p for p in container.volumes if p not in (DATA_PATH, MODELS_PATH)]
    claim = claim_name(name) if storage_paths else None
    mounts, volumes = _storage(workload, settings, claim, storage_paths)
    labels = managed_labels(workload, settings)
    selector = selector_labels(owner)

    main: dict[str, Any] = {
        "name": CONTAINER_NAME,
        "image": container.image,
        "imagePullPolicy": container.image_pull_policy,
        "ports": [
            {"name": port_name(port), "containerPort": port, "protocol": "TCP"}
            for port in container.ports
        ],
        "env": [{"name": var.name, "value": var.value} for var in container.env],
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "privileged": False,
            "capabilities": {"drop": ["ALL"], "add": list(CAPABILITIES_KEPT)},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumeMounts": mounts,
    }
    if container.command is not None:
        main["command"] = list(container.command)
    if container.args is not None:
        main["args"] = list(container.args)
    resources = container.resources
    if resources is not None and (resources.cpu is not None or resources.memory is not None):
        amounts: dict[str, str] = {}
        if resources.cpu is not None:
            amounts["cpu"] = cpu_quantity(resources.cpu)
        if resources.memory is not None:
            amounts["memory"] = memory_quantity(resources.memory)
        main["resources"] = {"requests": dict(amounts), "limits": dict(amounts)}
    probe = container.readiness_probe
    if probe is not None:
        main["readinessProbe"] = {
            "httpGet": {
                "path": probe.http_get.path,
                "port": port_name(probe.http_get.port),
                "scheme": "HTTP",
            },
            "initialDelaySeconds": probe.initial_delay_seconds,
            "periodSeconds": probe.period_seconds,
            "timeoutSeconds": probe.timeout_seconds,
            "successThreshold": 1,
            "failureThreshold": 1,
        }

    pod_spec: dict[str, Any] = {
        "containers": [main],
        "volumes": volumes,
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "hostNetwork": False,
        "hostPID": False,
        "hostIPC": False,
        "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
    }
    if claim is not None:
        pod_spec["affinity"] = {
            "podAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [
                    {
                        "labelSelector": {"matchLabels": dict(selector)},
                        "topologyKey": HOSTNAME_TOPOLOGY,
                    }
                ]
            }
        }

    # The hash covers what shapes the objects, not suspend (the replica count) nor itself.
    shape = {
        "template": pod_spec,
        "labels": labels,
        "ports": container.ports,
        "claim": claim,
        "storage": [
            settings.runners_kubernetes_storage_size,
            settings.runners_kubernetes_storage_class,
        ],
    }
    spec_hash = hashlib.sha256(json.dumps(shape, sort_keys=True).encode()).hexdigest()[:32]
    annotations = {ANNOTATION_MODEL_ID: spec.id, ANNOTATION_SPEC_HASH: spec_hash}

    def metadata(object_name: str, *, owned: bool = True) -> dict[str, Any]:
        meta: dict[str, Any] = {
            "name": object_name,
            "namespace": namespace,
            "labels": dict(labels),
            "annotations": dict(annotations),
        }
        if owned:
            meta["ownerReferences"] = [owner_reference(owner)]
        return meta

    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(name),
        "spec": {
            "replicas": 0 if spec.suspend else 1,
            "selector": {"matchLabels": dict(selector)},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
            },
            "minReadySeconds": MIN_READY_SECONDS,
            "revisionHistoryLimit": REVISION_HISTORY_LIMIT,
            "progressDeadlineSeconds": PROGRESS_DEADLINE_SECONDS,
            "template": {
                "metadata": {"labels": dict(labels), "annotations": dict(annotations)},
                "spec": pod_spec,
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(name),
        "spec": {
            "type": "ClusterIP",
            "selector": dict(selector),
            "ports": [
                {
                    "name": port_name(port),
                    "port": port,
                    "targetPort": port_name(port),
                    "protocol": "TCP",
                }
                for port in container.ports
            ],
        },
    }
    claim_object: dict[str, Any] | None = None
    if claim is not None:
        claim_spec: dict[str, Any] = {
            "accessModes": ["ReadWriteOnce"],
            "resources": {
                "requests": {"storage": memory_quantity(settings.runners_kubernetes_storage_size)}
            },
        }
        if settings.runners_kubernetes_storage_class is not None:
            claim_spec["storageClassName"] = settings.runners_kubernetes_storage_class
        claim_object = {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": metadata(claim, owned=settings.runners_kubernetes_delete_claim),
            "spec": claim_spec,
        }
    return KubernetesPlan(
        namespace=namespace,
        name=name,
        claim_name=claim,
        spec_hash=spec_hash,
        deployment=deployment,
        service=service,
        claim=claim_object,
        endpoints=endpoints(name, namespace, container.ports),
        selector=selector,
    )


def _storage(
    workload: base.Workload,
    settings: Settings,
    claim: str | None,
    storage_paths: list[str],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The container's volume mounts and the pod's volumes."""
    mounts: list[dict[str, Any]] = []
    volumes: list[dict[str, Any]] = []
    if claim is not None:
        volumes.append({"name": STORAGE_VOLUME, "persistentVolumeClaim": {"claimName": claim}})
        mounts.extend(
            {"name": STORAGE_VOLUME, "mountPath": path, "subPath": volume_basename(path)}
            for path in storage_paths
        )
    read_only = {
        DATA_PATH: (
            "data",
            settings.runners_kubernetes_data_claim,
            "RUNNERS_KUBERNETES_DATA_CLAIM",
        ),
        MODELS_PATH: (
            "models",
            settings.runners_kubernetes_models_claim,
            "RUNNERS_KUBERNETES_MODELS_CLAIM",
        ),
    }
    for path in workload.spec.container.volumes:
        if path not in read_only:
            continue
        volume, source, setting = read_only[path]
        if source is None:
            raise errors.StorageNotConfigured(
                f"spec.container.volumes asks for {path}, which the kubernetes runner mounts "
                f"read-only from the claim named by {setting}, and the operator has none "
                "configured; set it or remove the volume (no pod was created)"
            )
        volumes.append(
            {"name": volume, "persistentVolumeClaim": {"claimName": source, "readOnly": True}}
        )
        mounts.append({"name": volume, "mountPath": path, "readOnly": True})
    return mounts, volumes


_LABEL_UNSAFE = re.compile(r"[^-A-Za-z0-9_.]")


def _label_value(text: str) -> str:
    cut = _LABEL_UNSAFE.sub("-", text)[:_LABEL_VALUE_MAX]
    return cut.strip("-_.")
