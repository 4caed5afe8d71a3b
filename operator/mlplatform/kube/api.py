"""The operator's own calls to the Kubernetes API: write an MLModel's status, list MLModels.

kopf owns the watch, the finalizers and the Events; these two calls are the ones a long-lived
per-object loop needs between kopf's handler invocations (kopf applies a daemon's ``patch``
only when the daemon returns). They use the official client (the status write as plain
JSON, ``runners.kubernetes.rest``), synchronously, from the reconcile worker threads; the
client reads the same kubeconfig / in-cluster service account as kopf's default login
(``KUBECONFIG`` honoured) and refreshes a projected token itself.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from typing import Any, Final

import kubernetes

from mlplatform.models.spec import API_GROUP, API_VERSION, PLURAL
from mlplatform.runners.kubernetes.rest import MERGE_PATCH, Resource, Rest, Rule

# The status write goes as plain JSON (``rest``): it is one per model under a burst, and the
# typed client's validation of the body cost more than the request.
MLMODEL_STATUS: Final = Resource(API_GROUP, API_VERSION, PLURAL, "status")
PEERING_GROUP: Final = "kopf.dev"
PEERING_VERSION: Final = "v1"
PEERINGS: Final = Resource(PEERING_GROUP, PEERING_VERSION, "kopfpeerings")
CLUSTER_PEERINGS: Final = Resource(PEERING_GROUP, PEERING_VERSION, "clusterkopfpeerings")
RULES: Final[frozenset[Rule]] = frozenset(
    {MLMODEL_STATUS.rule("patch"), PEERINGS.rule("get"), CLUSTER_PEERINGS.rule("get")}
)


class ObjectGone(Exception):
    """Raised when the object to patch no longer exists (HTTP 404)."""


# Kept-alive connections of the one ApiClient, shared by the reconcile workers, the status
# writes and the removals (a watch's connection is never returned to the pool). The
# client's default (five per CPU) is too few under a burst on a small node: every request
# past it opens a new connection and throws it away after.
CONNECTIONS = 32


class KubeApi:
    """A thin client for MLModel status writes and listings; safe to share between threads."""

    def __init__(self, client: Any, *, request_timeout: float = 10.0) -> None:
        # The official ``ApiClient``, shared with the Kubernetes runner (one connection pool).
        self.client = client
        self._objects = kubernetes.client.CustomObjectsApi(client)
        self._rest = Rest(client, RULES)
        self._timeout = request_timeout

    @classmethod
    def from_environment(cls) -> KubeApi:
        """In-cluster service account if there is one, else the kubeconfig (``KUBECONFIG``)."""
        try:
            kubernetes.config.load_incluster_config()  # type: ignore[no-untyped-call]
        except kubernetes.config.ConfigException:
            kubernetes.config.load_kube_config()  # type: ignore[no-untyped-call]
        configuration = kubernetes.client.Configuration.get_default_copy()
        configuration.connection_pool_maxsize = CONNECTIONS
        return cls(kubernetes.client.ApiClient(configuration))

    @classmethod
    def for_server(
        cls, server: str, *, token: str | None = None, insecure: bool = False
    ) -> KubeApi:
        """A client for one API server address (tests, emulators)."""
        configuration = kubernetes.client.Configuration()
        configuration.host = server
        configuration.verify_ssl = not insecure
        configuration.connection_pool_maxsize = CONNECTIONS
        if token:
            configuration.api_key = {"authorization": token}
            configuration.api_key_prefix = {"authorization": "Bearer"}
        return cls(kubernetes.client.ApiClient(configuration))

    def patch_status(
        self, namespace: str, name: str, status_patch: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Merge-patch ``status`` through the status subresource; the status the object holds
        after it (the server's answer); ``ObjectGone`` on 404."""
        try:
            response = self._rest.request(
                "patch",
                MLMODEL_STATUS,
                namespace=namespace,
                name=name,
                body={"status": dict(status_patch)},
                content_type=MERGE_PATCH,
                timeout=self._timeout,
            )
            held = json.loads(response.data or b"{}").get("status")
        except kubernetes.client.exceptions.ApiException as error:
            if error.status == 404:
                raise ObjectGone(f"{namespace}/{name}") from error
            raise
        return dict(held) if isinstance(held, Mapping) else {}

    def peering_records(self, name: str, namespaces: Collection[str] = ()) -> list[Any]:
        """The ``status`` (identity → record) of kopf's peering object ``name``: the
        cluster-wide one, or the one in each of ``namespaces``."""
        where: list[tuple[Resource, str | None]] = (
            [(PEERINGS, namespace) for namespace in namespaces]
            if namespaces
            else [(CLUSTER_PEERINGS, None)]
        )
        found: list[Any] = []
        for resource, namespace in where:
            response = self._rest.request(
                "get", resource, namespace=namespace, name=name, timeout=self._timeout
            )
            found.append(json.loads(response.data).get("status") or {})
        return found

    def live_uids(self, namespaces: Collection[str] = ()) -> set[str]:
        """The uids of every MLModel now stored (in ``namespaces``, or in the whole cluster)."""
        listings: list[Any]
        if namespaces:
            listings = [
                self._objects.list_namespaced_custom_object(
                    API_GROUP, API_VERSION, namespace, PLURAL, _request_timeout=self._timeout
                )
                for namespace in namespaces
            ]
        else:
            listings = [
                self._objects.list_cluster_custom_object(
                    API_GROUP, API_VERSION, PLURAL, _request_timeout=self._timeout
                )
            ]
        return {
            str(item["metadata"]["uid"])
            for listing in listings
            for item in listing.get("items", [])
            if item.get("metadata", {}).get("uid")
        }


def ensure_peering(api: KubeApi, name: str, namespaces: Collection[str] = ()) -> None:
    """Create kopf's peering object(s) ``name`` if absent (kopf needs them for a named peering)."""
    objects = api._objects
    try:
        if namespaces:
            for namespace in namespaces:
                body = {
                    "apiVersion": f"{PEERING_GROUP}/{PEERING_VERSION}",
                    "kind": "KopfPeering",
                    "metadata": {"name": name, "namespace": namespace},
                }
                _create_ignoring_conflict(
                    lambda b=body, ns=namespace: objects.create_namespaced_custom_object(
                        PEERING_GROUP, PEERING_VERSION, ns, "kopfpeerings", b
                    )
                )
        else:
            body = {
                "apiVersion": f"{PEERING_GROUP}/{PEERING_VERSION}",
                "kind": "ClusterKopfPeering",
                "metadata": {"name": name},
            }
            _create_ignoring_conflict(
                lambda: objects.create_cluster_custom_object(
                    PEERING_GROUP, PEERING_VERSION, "clusterkopfpeerings", body
                )
            )
    except kubernetes.client.exceptions.ApiException as error:
        raise PeeringUnavailable(
            f'cannot create the kopf peering "{name}" ({error.status} {error.reason}); '
            "install the kopf.dev peering CRDs (manifests/components/peering) "
            "or run with --standalone"
        ) from error


class PeeringUnavailable(Exception):
    """Raised when the peering object can neither be found nor created."""


def _create_ignoring_conflict(create: Any) -> None:
    try:
        create()
    except kubernetes.client.exceptions.ApiException as error:
        if error.status != 409:  # 409: it exists already
            raise
