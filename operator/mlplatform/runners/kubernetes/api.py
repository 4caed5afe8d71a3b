"""The Kubernetes API calls of the runner, on plain dicts, with errors as mlplatform's.

Requests go through ``rest.Rest`` (JSON in, the raw answer parsed as JSON, never the official
client's model classes), limited to ``RULES``: the verbs on the four kinds the runner uses,
which are what ``manifests/`` grants it. Unreachable API servers and 5xx answers become
``RunnerUnavailable``; a 403 (RBAC) says which permission is missing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, Final

import kubernetes
import urllib3

from mlplatform import errors
from mlplatform.runners.kubernetes.rest import JSON_PATCH, Resource, Rest, Rule

DEPLOYMENT: Final = "Deployment"
SERVICE: Final = "Service"
CLAIM: Final = "PersistentVolumeClaim"
POD: Final = "Pod"
KINDS: Final = (DEPLOYMENT, SERVICE, CLAIM, POD)

RESOURCES: Final = {
    DEPLOYMENT: Resource("apps", "v1", "deployments"),
    SERVICE: Resource("", "v1", "services"),
    CLAIM: Resource("", "v1", "persistentvolumeclaims"),
    POD: Resource("", "v1", "pods"),
}
_VERBS: Final = ("get", "list", "watch", "create", "patch", "delete")
# What the runner may call: its workload kinds in full; pods only read, by label (Kubernetes
# restarts them, the runner never writes one).
RULES: Final[frozenset[Rule]] = frozenset(
    {RESOURCES[kind].rule(verb) for kind in (DEPLOYMENT, SERVICE, CLAIM) for verb in _VERBS}
    | {RESOURCES[POD].rule(verb) for verb in ("list", "watch")}
)


class NotFound(Exception):
    """The object does not exist (HTTP 404)."""


class Conflict(Exception):
    """The object exists already, or a precondition failed (HTTP 409)."""


class KubeObjects:
    """Get, create, patch, delete, list and watch the four kinds the runner uses."""

    def __init__(self, api_client: Any, *, timeout: float) -> None:
        self._rest = Rest(api_client, RULES)
        self.timeout = timeout

    # --- calls ------------------------------------------------------------------------

    def stop_writes(self) -> None:
        """Refuse every create, patch and delete from now on (``Stopping``)."""
        self._rest.stop_writes()

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """The object, or None when it does not exist."""
        try:
            return _json(self._call("get", kind, namespace=namespace, name=name))
        except NotFound:
            return None

    def create(self, kind: str, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        return _json(self._call("create", kind, namespace=namespace, body=body))

    def patch(
        self, kind: str, namespace: str, name: str, ops: list[dict[str, Any]]
    ) -> dict[str, Any]:
        """Apply a JSON patch (RFC 6902)."""
        answer = self._call(
            "patch", kind, namespace=namespace, name=name, body=ops, content_type=JSON_PATCH
        )
        return _json(answer)

    def delete(self, kind: str, namespace: str, name: str, *, uid: str | None = None) -> bool:
        """Delete (in the background: the garbage collector takes the ReplicaSets and pods).

        ``uid``: only that object (a precondition), never a newer one of the same name.
        Returns whether something was deleted.
        """
        body: dict[str, Any] = {"propagationPolicy": "Background"}
        if uid is not None:
            body["preconditions"] = {"uid": uid}
        try:
            answer = self._call("delete", kind, namespace=namespace, name=name, body=body)
            answer.data  # noqa: B018 - read to the end: the connection goes back to the pool
        except (NotFound, Conflict):
            return False
        return True

    def list(
        self, kind: str, *, namespace: str | None, selector: str
    ) -> tuple[list[dict[str, Any]], str]:
        """The objects matching ``selector`` (in ``namespace``, None: every namespace) and
        the listing's resourceVersion."""
        listing = _json(
            self._call("list", kind, namespace=namespace, query={"labelSelector": selector})
        )
        version = str((listing.get("metadata") or {}).get("resourceVersion") or "")
        return list(listing.get("items") or []), version

    def watch(
        self,
        kind: str,
        *,
        namespace: str | None = None,
        selector: str,
        resource_version: str,
        timeout: int,
    ) -> Any:
        """An open watch response (read it with ``watch_events``; ``shutdown()`` ends it)."""
        query = {
            "labelSelector": selector,
            "watch": "true",
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(timeout),
        }
        if resource_version:
            query["resourceVersion"] = resource_version
        return self._call(
            "watch",
            kind,
            namespace=namespace,
            query=query,
            # The server ends the watch after ``timeout``; reading may wait that long, and a
            # silently dropped connection is noticed a little later.
            timeout=(self.timeout, float(timeout + 30)),
        )

    # --- plumbing ---------------------------------------------------------------------

    def _call(self, verb: str, kind: str, *, timeout: Any = None, **how: Any) -> Any:
        try:
            return self._rest.request(verb, RESOURCES[kind], timeout=timeout or self.timeout, **how)
        except kubernetes.client.exceptions.ApiException as error:
            raise _translate(error, verb, RESOURCES[kind], how.get("namespace")) from error
        except (urllib3.exceptions.HTTPError, OSError) as error:
            raise errors.RunnerUnavailable(
                f"the Kubernetes API does not answer: {error}"
            ) from error


def watch_events(response: Any) -> Iterator[dict[str, Any]]:
    """The events of an open watch response, one JSON object per line."""
    buffer = b""
    for chunk in response.stream(amt=None, decode_content=False):
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            if line.strip():
                yield json.loads(line)
    if buffer.strip():
        yield json.loads(buffer)


def _json(response: Any) -> dict[str, Any]:
    data = response.data if hasattr(response, "data") else response
    parsed: dict[str, Any] = json.loads(data) if data else {}
    return parsed


# The ClusterRole that grants the operator's requests (manifests/base/rbac.yaml).
CLUSTER_ROLE: Final = "mlplatform-operator"


def _translate(error: Any, verb: str, resource: Resource, namespace: str | None) -> Exception:
    """The API server's answer as the runner's error, by status (and 403's words)."""
    status = int(error.status or 0)
    try:
        body = json.loads(error.body or "{}")
        message = str(body.get("message") or error.reason)
    except (TypeError, ValueError):
        message = str(error.reason)
    if status == 404:
        return NotFound(message)
    if status == 409:
        return Conflict(message)
    if status == 403:
        where = f" in namespace {namespace}" if namespace else " in every namespace"
        group = f" ({resource.group})" if resource.group else ""
        return errors.NotPermitted(
            f"the operator may not {verb} {resource.name}{group}{where}: grant it in the "
            f"ClusterRole {CLUSTER_ROLE} (or the Role of a namespaced install); the API server "
            f"said: {message}"
        )
    if status == 0 or status >= 500 or status == 429:
        return errors.RunnerUnavailable(f"the Kubernetes API answered {status}: {message}")
    return errors.StartFailed(f"the Kubernetes API refused the request ({status}): {message}")
