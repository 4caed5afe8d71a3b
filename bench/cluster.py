"""The real control plane for the bench: ``scripts/kube-up.sh``'s, its audit log, its CPU.

``Cluster.up`` starts the control plane (``tests.support.control_plane``: etcd,
kube-apiserver, kube-controller-manager, kube-scheduler and kwok's simulated nodes, built from
source) unless it answers already, and installs the operator's CRD, namespace and RBAC from
``manifests/``. ``close`` stops it only if this run started it. The state folder and port are
``scripts/kube-up.sh``'s (``MLPLATFORM_KUBE_STATE``, ``MLPLATFORM_KUBE_PORT``): on a machine
other sessions share, give the bench a control plane of its own (bench/README.md).

Who makes which request:

- the bench as the user (the MLModel POSTs, listings, deletes): the admin kubeconfig;
- the operator: a kubeconfig with a token of the operator's ServiceAccount
  (``kubectl create token``), so the real RBAC authorizer enforces the shipped ClusterRole;
- the plain client the operator is compared with, when it makes the operator's writes: a
  token of that same ServiceAccount (the same authentication and authorization path).

Each token has its own id (``JTI=...`` in the audit log's ``credential-id``), so the audit
log tells the operator's requests from the plain client's and from any other session's.

The audit log (``<state>/logs/audit.log``, one JSON line per request of any client outside
the control plane, at Metadata level) is the bench's request log: ``AuditTail`` reads it from
a moment on, following its rotation.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import json
import secrets
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import kubernetes
import kubernetes.client.exceptions
import yaml
from tests.support.control_plane import (
    OPERATOR_ACCOUNT,
    OPERATOR_NAMESPACE,
    ControlPlane,
    default_state_folder,
)

from bench import procstat
from bench.env import wait_until
from mlplatform.models import spec
from mlplatform.runners.kubernetes.rest import Resource, Rest, Rule

OPERATOR_USER: Final = f"system:serviceaccount:{OPERATOR_NAMESPACE}:{OPERATOR_ACCOUNT}"
# The control plane's processes (their pids in <state>/run/<name>.pid).
COMPONENTS: Final = (
    "kube-apiserver",
    "etcd",
    "kube-controller-manager",
    "kube-scheduler",
    "kwok",
)

MLMODELS: Final = Resource(spec.API_GROUP, spec.API_VERSION, spec.PLURAL)
MLMODEL_STATUS: Final = Resource(spec.API_GROUP, spec.API_VERSION, spec.PLURAL, "status")
DEPLOYMENTS: Final = Resource("apps", "v1", "deployments")
SERVICES: Final = Resource("", "v1", "services")
EVENTS: Final = Resource("", "v1", "events")
NAMESPACES: Final = Resource("", "v1", "namespaces")
# Everything the bench's clients call (the user's and the plain client's requests).
RULES: Final[frozenset[Rule]] = frozenset(
    {MLMODELS.rule(verb) for verb in ("create", "list", "get", "patch", "delete")}
    | {MLMODEL_STATUS.rule("patch")}
    | {DEPLOYMENTS.rule(verb) for verb in ("create", "list")}
    | {SERVICES.rule(verb) for verb in ("create", "list")}
    | {EVENTS.rule("create")}
    | {NAMESPACES.rule("get")}
)
# Requests about one model: the objects a model has, by name (what would grow with N).
MODEL_RESOURCES: Final = frozenset(
    {
        "mlmodels",
        "deployments",
        "replicasets",
        "services",
        "endpoints",
        "endpointslices",
        "pods",
        "persistentvolumeclaims",
        "events",
    }
)


def read(response: Any) -> dict[str, Any]:
    """The JSON of a ``Rest`` answer (read to the end: the connection goes back to the pool)."""
    data = response.data
    parsed: dict[str, Any] = json.loads(data) if data else {}
    return parsed


@dataclass(frozen=True)
class Request:
    """One line of the audit log (its first stage: a watch is logged when it starts and when
    it ends)."""

    received: float  # unix time the server received it
    completed: float  # unix time of the logged stage (a create: the object exists)
    user: str
    credential: str  # "JTI=..." for a token, "X509SHA256=..." for a client certificate
    verb: str
    resource: str  # "deployments", "mlmodels/status"; "" for a non-resource URL
    namespace: str
    name: str
    code: int
    uri: str

    @property
    def kind(self) -> str:
        """``verb resource`` (``create deployments``, ``patch mlmodels/status``)."""
        return f"{self.verb} {self.resource or self.uri.partition('?')[0]}"

    @property
    def about_one_model(self) -> bool:
        """A request about one object of a model (its MLModel, Deployment, ...): the kind
        that grows with N. Lists, watches and the peering object do not."""
        return bool(self.name) and self.resource.partition("/")[0] in MODEL_RESOURCES


def _stamp(text: str) -> float:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _parse(line: bytes) -> tuple[str, Request] | None:
    try:
        event = json.loads(line)
    except ValueError:
        return None
    ref = event.get("objectRef") or {}
    user = event.get("user") or {}
    resource = str(ref.get("resource") or "")
    if ref.get("subresource"):
        resource += f"/{ref['subresource']}"
    credentials = (user.get("extra") or {}).get("authentication.kubernetes.io/credential-id")
    return str(event.get("auditID")), Request(
        received=_stamp(event["requestReceivedTimestamp"]),
        completed=_stamp(event["stageTimestamp"]),
        user=str(user.get("username") or ""),
        credential=str(credentials[0]) if credentials else "",
        verb=str(event.get("verb") or ""),
        resource=resource,
        namespace=str(ref.get("namespace") or ""),
        name=str(ref.get("name") or ""),
        code=int((event.get("responseStatus") or {}).get("code") or 0),
        uri=str(event.get("requestURI") or ""),
    )


class AuditTail:
    """The audit log from the moment this is made: ``poll`` reads what was appended since
    (whole lines only), following a rotation (kube-apiserver renames the full file
    ``audit-<time>.log`` in the same folder and starts a new one)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        info = path.stat()
        self._inode = info.st_ino
        self._offset = info.st_size
        self._seen: set[str] = set()
        self.requests: list[Request] = []

    def poll(self) -> list[Request]:
        """Every request logged since this was made (the list grows with each poll)."""
        try:
            info = self.path.stat()
        except FileNotFoundError:  # between the rename and the new file
            return self.requests
        if info.st_ino != self._inode:
            for older in self.path.parent.glob("audit-*.log"):
                if older.stat().st_ino == self._inode:
                    self._read(older, self._offset)
                    break
            self._inode, self._offset = info.st_ino, 0
        self._offset = self._read(self.path, self._offset)
        return self.requests

    def _read(self, path: Path, offset: int) -> int:
        with path.open("rb") as log:
            log.seek(offset)
            data = log.read()
        whole = data.rfind(b"\n") + 1
        for line in data[:whole].splitlines():
            parsed = _parse(line)
            if parsed is not None and parsed[0] not in self._seen:
                self._seen.add(parsed[0])
                self.requests.append(parsed[1])
        return offset + whole

    def of(self, credential: str, since: float, until: float = float("inf")) -> list[Request]:
        """The requests made with ``credential``, received in ``[since, until)``."""
        return [
            r for r in self.poll() if r.credential == credential and since <= r.received < until
        ]


@dataclass
class Cluster:
    """The running control plane, and the kubeconfigs this bench run made for it."""

    plane: ControlPlane
    state: Path
    folder: Path  # the bench run's folder (kubeconfigs with tokens go there)
    _clients: list[Any] = field(default_factory=list)
    _admin: Rest | None = None
    _tokens: list[Path] = field(default_factory=list)

    @classmethod
    def up(cls, folder: Path) -> Cluster:
        """Start the control plane unless it answers, and install the operator's manifests."""
        plane = ControlPlane.up()
        plane.install()
        return cls(plane=plane, state=default_state_folder(), folder=folder)

    def close(self) -> None:
        """Close the clients; stop the control plane if this run started it."""
        for client in self._clients:
            with contextlib.suppress(Exception):
                client.close()
        self._clients.clear()
        self._admin = None
        for path in self._tokens:
            path.unlink(missing_ok=True)
        self._tokens.clear()
        self.plane.down()

    # --- identities and clients ---------------------------------------------------------

    @property
    def admin_kubeconfig(self) -> Path:
        return self.plane.kubeconfig

    def token_kubeconfig(self, tag: str) -> Path:
        """A new kubeconfig with a new token of the operator's ServiceAccount (removed by
        ``close``: the run's folder, with its logs, is kept)."""
        path = self.plane.operator_kubeconfig(self.folder / f"{tag}.kubeconfig")
        self._tokens.append(path)
        return path

    @staticmethod
    def credential(kubeconfig: Path) -> str:
        """How the audit log names the token of ``kubeconfig`` (``JTI=<its id>``)."""
        config = yaml.safe_load(kubeconfig.read_text())
        token = str(config["users"][0]["user"]["token"])
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return f"JTI={claims['jti']}"

    def client(self, kubeconfig: Path | None = None, *, pool: int = 8) -> Any:
        """An official client (``ApiClient``) with a pool of ``pool`` connections."""
        configuration = kubernetes.client.Configuration()
        kubernetes.config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=str(kubeconfig or self.admin_kubeconfig),
            client_configuration=configuration,
        )
        configuration.connection_pool_maxsize = max(pool, 4)
        made = kubernetes.client.ApiClient(configuration)
        self._clients.append(made)
        return made

    def rest(self, kubeconfig: Path | None = None, *, pool: int = 8) -> Rest:
        """Plain JSON requests (as the operator's runner makes them) on such a client."""
        return Rest(self.client(kubeconfig, pool=pool), RULES)

    @property
    def admin(self) -> Rest:
        """The bench as the user (admin), 8 connections."""
        if self._admin is None:
            self._admin = self.rest()
        return self._admin

    # --- namespaces ---------------------------------------------------------------------

    def create_namespace(self, name: str) -> None:
        self.plane.kubectl("create", "namespace", name)

    def delete_namespace(self, name: str, *, timeout: float = 900.0) -> float:
        """Delete it and wait until it is gone (everything in it deleted); seconds taken."""
        started = time.monotonic()
        self.plane.kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found")
        rest = self.admin

        def gone() -> bool:
            try:
                read(rest.request("get", NAMESPACES, name=name, timeout=60))
            except kubernetes.client.exceptions.ApiException as error:
                if error.status == 404:
                    return True
                raise
            return False

        wait_until(
            gone,
            timeout=timeout,
            interval=1.0,
            what=f"namespace {name} deleted",
        )
        return time.monotonic() - started

    @contextlib.contextmanager
    def namespace(self, name: str, deletions: dict[str, float]) -> Iterator[str]:
        """A fresh namespace for one measurement; deleted after it, and waited for (the
        next measurement must not share the machine with this one's deletion). The
        seconds the deletion took go to ``deletions[name]``."""
        self.create_namespace(name)
        try:
            yield name
        finally:
            deletions[name] = round(self.delete_namespace(name), 1)

    def count(self, rest: Rest, resource: Resource, namespace: str) -> int:
        listing = read(rest.request("list", resource, namespace=namespace, timeout=120))
        return len(listing.get("items") or [])

    # --- the audit log and the processes ------------------------------------------------

    @property
    def audit_log(self) -> Path:
        return self.state / "logs" / "audit.log"

    def audit(self) -> AuditTail:
        """The audit log from now on."""
        return AuditTail(self.audit_log)

    def barrier(self, tail: AuditTail, timeout: float = 60.0) -> None:
        """Return once the audit log has every request received before this call: a request
        of ours, made now, has been logged (the log is written asynchronously)."""
        mark = secrets.token_hex(6)
        known = len(tail.poll())
        self.plane.kubectl("get", "--raw", f"/version?bench-mark={mark}")
        wait_until(
            lambda: any(mark in r.uri for r in tail.poll()[known:]),
            timeout=timeout,
            interval=0.1,
            what="the audit log written up to now",
        )

    def pids(self) -> dict[str, int]:
        """The control plane's processes, by component."""
        found = {}
        for name in COMPONENTS:
            path = self.state / "run" / f"{name}.pid"
            if path.exists():
                found[name] = int(path.read_text().split()[0])
        return found


class Cpu:
    """CPU seconds (user + system) of the control plane's processes, of the others named
    (the operator: its process tree) and of the bench's own process alone (``client``: the
    plain client's threads; the operator it started is its child, and not counted there),
    from now on."""

    def __init__(self, cluster: Cluster, **others: int) -> None:
        self.pids = {**cluster.pids(), **others}
        self.start = {name: self._seconds(name, pid) for name, pid in self.pids.items()}

    @staticmethod
    def _seconds(name: str, pid: int) -> float:
        if name == "client":
            return procstat.own_cpu_seconds(pid)
        return procstat.cpu_seconds(pid)

    def taken(self) -> dict[str, float]:
        return {
            name: round(self._seconds(name, pid) - self.start[name], 2)
            for name, pid in self.pids.items()
        }


def server_cpu(taken: dict[str, float]) -> float:
    """The control plane's share of a ``Cpu.taken()``."""
    return round(sum(v for k, v in taken.items() if k in COMPONENTS), 2)


def stamped(requests: Sequence[Request]) -> list[float]:
    return sorted(r.completed for r in requests)
