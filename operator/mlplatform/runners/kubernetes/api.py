"""The Kubernetes API calls of the runner, on plain dicts, with errors as mlplatform's.

One thin wrapper over the official client's typed methods (so the RBAC test can read the
verbs off the method names): responses are read raw (``_preload_content=False``) and parsed
as JSON, never turned into the client's model classes. Unreachable API servers and 5xx
answers become ``RunnerUnavailable``; a 403 (RBAC) says which permission is missing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, Final

import kubernetes
import urllib3

from mlplatform import errors

DEPLOYMENT: Final = "Deployment"
SERVICE: Final = "Service"
CLAIM: Final = "PersistentVolumeClaim"
POD: Final = "Pod"
KINDS: Final = (DEPLOYMENT, SERVICE, CLAIM, POD)
JSON_PATCH: Final = "application/json-patch+json"


class NotFound(Exception):
    """The object does not exist (HTTP 404)."""


class Conflict(Exception):
    """The object exists already, or a precondition failed (HTTP 409)."""


class KubeObjects:
    """Get, create, patch, delete, list and watch the four kinds the runner uses."""

    def __init__(self, api_client: Any, *, timeout: float) -> None:
        self._apps = kubernetes.client.AppsV1Api(api_client)
        self._core = kubernetes.client.CoreV1Api(api_client)
        self.timeout = timeout

    # --- calls ------------------------------------------------------------------------

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """The object, or None when it does not exist."""
        raw: Any
        try:
            if kind == DEPLOYMENT:
                raw = self._call(self._apps.read_namespaced_deployment, name, namespace)
            elif kind == SERVICE:
                raw = self._call(self._core.read_namespaced_service, name, namespace)
            elif kind == CLAIM:
                raw = self._call(
                    self._core.read_namespaced_persistent_volume_claim, name, namespace
                )
            else:
                raise ValueError(kind)
            return _json(raw)
        except NotFound:
            return None

    def create(self, kind: str, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        if kind == DEPLOYMENT:
            raw = self._call(self._apps.create_namespaced_deployment, namespace, body)
        elif kind == SERVICE:
            raw = self._call(self._core.create_namespaced_service, namespace, body)
        elif kind == CLAIM:
            raw = self._call(self._core.create_namespaced_persistent_volume_claim, namespace, body)
        else:
            raise ValueError(kind)
        return _json(raw)

    def patch(
        self, kind: str, namespace: str, name: str, ops: list[dict[str, Any]]
    ) -> dict[str, Any]:
        """Apply a JSON patch (RFC 6902)."""
        extra = {"_content_type": JSON_PATCH}
        if kind == DEPLOYMENT:
            raw = self._call(self._apps.patch_namespaced_deployment, name, namespace, ops, **extra)
        elif kind == SERVICE:
            raw = self._call(self._core.patch_namespaced_service, name, namespace, ops, **extra)
        elif kind == CLAIM:
            raw = self._call(
                self._core.patch_namespaced_persistent_volume_claim, name, namespace, ops, **extra
            )
        else:
            raise ValueError(kind)
        return _json(raw)

    def delete(self, kind: str, namespace: str, name: str, *, uid: str | None = None) -> bool:
        """Delete (in the background: the garbage collector takes the ReplicaSets and pods).

        ``uid``: only that object (a precondition), never a newer one of the same name.
        Returns whether something was deleted.
        """
        body: dict[str, Any] = {"propagationPolicy": "Background"}
        if uid is not None:
            body["preconditions"] = {"uid": uid}
        try:
            if kind == DEPLOYMENT:
                self._call(self._apps.delete_namespaced_deployment, name, namespace, body=body)
            elif kind == SERVICE:
                self._call(self._core.delete_namespaced_service, name, namespace, body=body)
            elif kind == CLAIM:
                self._call(
                    self._core.delete_namespaced_persistent_volume_claim,
                    name,
                    namespace,
                    body=body,
                )
            else:
                raise ValueError(kind)
        except (NotFound, Conflict):
            return False
        return True

    def list(
        self, kind: str, *, namespace: str | None, selector: str
    ) -> tuple[list[dict[str, Any]], str]:
        """The objects matching ``selector`` (in ``namespace``, None: every namespace) and
        the listing's resourceVersion."""
        raw = self._call(self._lister(kind, namespace), *_scope(namespace), label_selector=selector)
        listing = _json(raw)
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
        return self._call(
            self._lister(kind, namespace),
            *_scope(namespace),
            label_selector=selector,
            watch=True,
            resource_version=resource_version or None,
            allow_watch_bookmarks=True,
            timeout_seconds=timeout,
            # The server ends the watch after ``timeout``; reading may wait that long, and a
            # silently dropped connection is noticed a little later.
            _request_timeout=(self.timeout, float(timeout + 30)),
        )

    def _lister(self, kind: str, namespace: str | None) -> Any:
        """The client's list method of ``kind``, namespaced or for all namespaces."""
        if namespace is None:
            return {
                DEPLOYMENT: self._apps.list_deployment_for_all_namespaces,
                SERVICE: self._core.list_service_for_all_namespaces,
                CLAIM: self._core.list_persistent_volume_claim_for_all_namespaces,
                POD: self._core.list_pod_for_all_namespaces,
            }[kind]
        return {
            DEPLOYMENT: self._apps.list_namespaced_deployment,
            SERVICE: self._core.list_namespaced_service,
            CLAIM: self._core.list_namespaced_persistent_volume_claim,
            POD: self._core.list_namespaced_pod,
        }[kind]

    # --- plumbing ---------------------------------------------------------------------

    def _raw(self) -> dict[str, Any]:
        return {"_preload_content": False, "_request_timeout": self.timeout}

    def _call(self, method: Any, *args: Any, **kwargs: Any) -> Any:
        options = {**self._raw(), **kwargs}
        try:
            return method(*args, **options)
        except kubernetes.client.exceptions.ApiException as error:
            raise _translate(error) from error
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


def _scope(namespace: str | None) -> tuple[str, ...]:
    return () if namespace is None else (namespace,)


def _json(response: Any) -> dict[str, Any]:
    data = response.data if hasattr(response, "data") else response
    parsed: dict[str, Any] = json.loads(data) if data else {}
    return parsed


def _translate(error: Any) -> Exception:
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
        return errors.RunnerUnavailable(f"the operator is not allowed to do this: {message}")
    if status == 0 or status >= 500 or status == 429:
        return errors.RunnerUnavailable(f"the Kubernetes API answered {status}: {message}")
    return errors.StartFailed(f"the Kubernetes API refused the request ({status}): {message}")
