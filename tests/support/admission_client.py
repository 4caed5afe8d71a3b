"""Talk to kopf's admission webhook server the way the API server does.

``webhook_operator(cluster, tmp_path)`` runs kopf with ``mlplatform.kube.admission``'s handlers
and its HTTPS webhook server (a certificate made by ``mlplatform.kube.certificates``) on a free
local port; ``AdmissionClient.review(...)`` POSTs an ``admission.k8s.io/v1`` AdmissionReview
over TLS verified against that CA, and returns the ``response`` part::

    async with kube_cluster() as cluster, webhook_operator(cluster, tmp_path) as client:
        response = await client.review(admission.VALIDATE_ID, obj, operation="CREATE")
        assert response["allowed"] is False and "spec.id" in response["status"]["message"]
        ops = patch_ops(await client.review(admission.MUTATE_ID, obj))
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import ssl
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import kopf

from mlplatform.kube import admission, certificates
from mlplatform.models.spec import API_GROUP, API_VERSION, KIND, PLURAL
from tests.support.kube_cluster import KubeCluster, free_port, running_operator


@dataclass
class AdmissionClient:
    """An HTTPS client of one webhook server (lives as long as ``webhook_operator``)."""

    url: str
    session: aiohttp.ClientSession
    ssl_context: ssl.SSLContext

    async def review(
        self,
        webhook: str,
        obj: Mapping[str, Any] | None,
        *,
        operation: str = "CREATE",
        old: Mapping[str, Any] | None = None,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        """POST one AdmissionReview to ``/<webhook id>``; returns its ``response`` part."""
        uid = str(uuid.uuid4())
        source = obj if obj is not None else old
        meta = dict((source or {}).get("metadata") or {}) if isinstance(source, Mapping) else {}
        request = {
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": uid,
                "kind": {"group": API_GROUP, "version": API_VERSION, "kind": KIND},
                "resource": {"group": API_GROUP, "version": API_VERSION, "resource": PLURAL},
                "requestKind": {"group": API_GROUP, "version": API_VERSION, "kind": KIND},
                "requestResource": {
                    "group": API_GROUP,
                    "version": API_VERSION,
                    "resource": PLURAL,
                },
                "name": meta.get("name"),
                "namespace": meta.get("namespace"),
                "operation": operation,
                "userInfo": {"username": "admin", "groups": ["system:masters"]},
                "object": obj,
                "oldObject": old,
                "dryRun": dry_run,
                "options": {"apiVersion": "meta.k8s.io/v1", "kind": f"{operation.title()}Options"},
            },
        }
        async with self.session.post(
            f"{self.url}/{webhook}", json=request, ssl=self.ssl_context
        ) as resp:
            assert resp.status == 200, await resp.text()
            review: dict[str, Any] = await resp.json()
        assert review["apiVersion"] == "admission.k8s.io/v1"
        assert review["kind"] == "AdmissionReview"
        response: dict[str, Any] = review["response"]
        assert response["uid"] == uid
        return response

    async def wait_for_verdict(
        self,
        obj: Mapping[str, Any],
        predicate: Callable[[dict[str, Any]], bool],
        *,
        timeout: float = 10.0,
    ) -> dict[str, Any]:
        """Review ``obj`` until ``predicate(response)`` holds (the id index follows a watch)."""
        deadline = time.monotonic() + timeout
        while True:
            response = await self.review(admission.VALIDATE_ID, obj)
            if predicate(response):
                return response
            if time.monotonic() > deadline:
                raise TimeoutError(f"no expected verdict after {timeout}s; last: {response}")
            await asyncio.sleep(0.02)

    async def wait_until_denied(
        self, obj: Mapping[str, Any], *, timeout: float = 10.0
    ) -> dict[str, Any]:
        """Review ``obj`` until it is denied."""
        return await self.wait_for_verdict(obj, lambda r: not r["allowed"], timeout=timeout)

    async def wait_until_allowed(
        self, obj: Mapping[str, Any], *, timeout: float = 10.0
    ) -> dict[str, Any]:
        """Review ``obj`` until it is allowed."""
        return await self.wait_for_verdict(obj, lambda r: bool(r["allowed"]), timeout=timeout)


def patch_ops(response: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The JSON-patch operations of a mutating response (empty when it has no patch)."""
    if "patch" not in response:
        return []
    assert response["patchType"] == "JSONPatch"
    ops: list[dict[str, Any]] = json.loads(base64.b64decode(response["patch"]))
    return ops


@contextlib.asynccontextmanager
async def webhook_operator(
    cluster: KubeCluster, cert_dir: Path, *, ready_timeout: float = 10.0
) -> AsyncIterator[AdmissionClient]:
    """kopf with the admission handlers and an HTTPS webhook server, and a client for it."""
    registry = kopf.OperatorRegistry()
    admission.register(registry)
    port = free_port()
    settings = kopf.OperatorSettings()
    settings.admission.server = admission.webhook_server(
        cert_dir=cert_dir, addr="127.0.0.1", port=port, host="127.0.0.1", names=["localhost"]
    )
    ssl_context = ssl.create_default_context(cafile=str(cert_dir / certificates.CA_FILE))
    connector = aiohttp.TCPConnector(force_close=True)
    async with (
        running_operator(cluster, registry=registry, settings=settings),
        aiohttp.ClientSession(connector=connector) as session,
    ):
        client = AdmissionClient(
            url=f"https://127.0.0.1:{port}", session=session, ssl_context=ssl_context
        )
        await _wait_listening(port, timeout=ready_timeout)
        yield client


async def _wait_listening(port: int, *, timeout: float) -> None:
    """kopf opens the webhook port only after its resource scan; wait for it."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError as error:
            if time.monotonic() > deadline:
                message = f"the webhook server did not listen on {port} in {timeout}s"
                raise TimeoutError(message) from error
            await asyncio.sleep(0.02)
        else:
            writer.close()
            await writer.wait_closed()
            return
