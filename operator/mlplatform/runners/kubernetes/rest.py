"""Requests to the Kubernetes API as plain JSON, on the official client's connection pool.

The official client's typed methods validate a body into its model classes and serialize it
back (pydantic) on every call: under a burst that costs the operator more CPU than the
request itself. A ``Rest`` sends the dict as JSON and hands back the raw answer, through the
same ``ApiClient``: its connection pool, TLS settings and credentials (a kubeconfig's token
refresh included), and the same ``ApiException`` for an answer that is not 2xx.

Every request names its RBAC rule, a verb on a ``Resource``: a ``Rest`` is made with the rules
its caller declares (``rules``) and refuses any other, so what the operator may call is read
off those declarations (the RBAC test compares them with ``manifests/``).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import quote, urlencode

import kubernetes

from mlplatform import errors

Rule = tuple[str, str, str]  # (API group, resource, verb), as a Role's rule names them

JSON: Final = "application/json"
JSON_PATCH: Final = "application/json-patch+json"
MERGE_PATCH: Final = "application/merge-patch+json"

_METHODS: Final = {
    "get": "GET",
    "list": "GET",
    "watch": "GET",
    "create": "POST",
    "patch": "PATCH",
    "delete": "DELETE",
}


@dataclass(frozen=True)
class Resource:
    """A namespaced resource (``subresource``: e.g. ``status``)."""

    group: str
    version: str
    plural: str
    subresource: str = ""

    @property
    def name(self) -> str:
        """The resource as an RBAC rule names it (``mlmodels/status``)."""
        return f"{self.plural}/{self.subresource}" if self.subresource else self.plural

    def rule(self, verb: str) -> Rule:
        return (self.group, self.name, verb)

    def path(self, namespace: str | None, name: str | None = None) -> str:
        """``/apis/<group>/<version>[/namespaces/<ns>]/<plural>[/<name>[/<subresource>]]``."""
        path = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if namespace is not None:
            path += f"/namespaces/{quote(namespace, safe='')}"
        path += f"/{self.plural}"
        if name is not None:
            path += f"/{quote(name, safe='')}"
            if self.subresource:
                path += f"/{self.subresource}"
        return path


class NotDeclared(Exception):
    """A request whose rule its caller did not declare (a programming error)."""


class Rest:
    """JSON requests with the credentials of ``api_client``; safe to share between threads."""

    def __init__(self, api_client: Any, rules: frozenset[Rule]) -> None:
        self._client = api_client
        self.rules = rules
        self._writes_stopped = threading.Event()

    def stop_writes(self) -> None:
        """Refuse every request that changes an object from now on (``Stopping``)."""
        self._writes_stopped.set()

    def request(
        self,
        verb: str,
        resource: Resource,
        *,
        namespace: str | None = None,
        name: str | None = None,
        body: Any = None,
        content_type: str = JSON,
        query: Mapping[str, str] | None = None,
        timeout: float | tuple[float, float],
    ) -> Any:
        """Send one request; the unread ``urllib3`` response (2xx), else ``ApiException``.

        ``namespace`` None: across every namespace (a list or a watch)."""
        if resource.rule(verb) not in self.rules:
            raise NotDeclared(f"{verb} {resource.name} ({resource.group or 'core'})")
        if _METHODS[verb] != "GET" and self._writes_stopped.is_set():
            raise errors.Stopping(f"{verb} {resource.name} {name or ''}: not done, stopping")
        client = self._client
        path = resource.path(namespace, name)
        headers = {"Accept": JSON, **client.default_headers}
        if body is not None:
            headers["Content-Type"] = content_type
        client.update_params_for_auth(headers, None, ["BearerToken"], path, _METHODS[verb], body)
        url = client.configuration.host + path
        if query:
            url += "?" + urlencode(query)
        answer = client.call_api(
            _METHODS[verb], url, header_params=headers, body=body, _request_timeout=timeout
        )
        if not 200 <= answer.status <= 299:
            answer.read()
            raise kubernetes.client.exceptions.ApiException.from_response(
                http_resp=answer, body=None, data=None
            )
        return answer.response
