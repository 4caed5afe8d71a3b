"""A Kubernetes API for tests: KMock's emulator with what kopf needs, plus kopf runners.

There is no real API server on these machines, so the operator's Kubernetes side is tested
against ``kmock.KubernetesEmulator`` — an in-memory API over HTTP that serves
discovery, list, watch, create, patch and delete. ``ClusterEmulator`` fills the emulator's gaps
so that kopf behaves as it does against a real cluster:

- discovery declares ``mlmodels`` (with the ``status`` subresource), ``customresourcedefinitions``,
  ``namespaces`` and ``events`` (kopf does not start watching without the first three);
- every write sets ``metadata.resourceVersion`` (a counter), and creation sets ``uid``,
  ``generation: 1``, ``creationTimestamp`` and a name from ``generateName``;
- ``metadata.generation`` goes up when ``spec`` changes, never for metadata or status;
- JSON patches (kopf's finalizers, with a ``test`` on ``resourceVersion``) are applied, and a
  failing ``test`` is answered ``422`` as the API server does (kopf then retries);
- a merge patch of the main resource ignores ``status``; a patch of ``/status`` changes only
  ``status`` (the status subresource's rules).

Usage (all helpers are coroutines unless said otherwise)::

    from tests.support.kube_cluster import kube_cluster, running_operator, mlmodel

    async def test_something() -> None:
        registry = kopf.OperatorRegistry()
        ...register handlers on ``registry`` (e.g. ``admission.register(registry)``)...
        async with kube_cluster() as cluster, running_operator(cluster, registry=registry):
            await cluster.create(mlmodel("iris", namespace="models", spec={...}))
            obj = await cluster.wait_for_condition("models", "iris", "Ready", timeout=10)
            await cluster.patch("models", "iris", {"spec": {"suspend": True}})   # merge patch
            await cluster.delete("models", "iris")
            await cluster.wait_gone("models", "iris", timeout=10)
            assert any(e["reason"] == "..." for e in cluster.events(name="iris"))

- ``kube_cluster()`` — async context manager: a started emulator on a random local port;
  ``cluster.url`` is its address, ``cluster.write_kubeconfig(path)`` writes a kubeconfig for
  subprocesses (``KUBECONFIG=path mlplatform operator --standalone ...``).
- ``cluster.create(obj)`` / ``get(ns, name)`` (``None`` when absent) / ``patch(ns, name, patch,
  status=False)`` / ``delete(ns, name)`` / ``list_objects()`` — through the HTTP API, so
  watchers see them.
- ``cluster.wait_for(ns, name, predicate, timeout=...)`` polls until ``predicate(obj)`` is true
  (``TimeoutError`` naming the last state otherwise); ``wait_for_condition(ns, name, type,
  status="True", timeout=...)``, ``wait_for_phase(...)`` and ``wait_gone(...)`` build on it.
- ``cluster.events(namespace=None, name=None)`` — the core/v1 Events posted so far (kopf's own
  and the operator's), oldest first. They are posted asynchronously: wait for one with
  ``await until(lambda: ..., what=...)``, the helper for any condition outside the API
  (Events, Docker state, an HTTP endpoint); ``TimeoutError`` naming ``what`` otherwise.
- ``running_operator(cluster, registry=..., settings=None, namespaces=(), memo=None,
  startup_timeout=10)`` — async context manager that runs ``kopf.operator()`` in a task against
  the emulator (credentials come from a pre-filled vault, no login handler needed) and stops
  it on exit. Without ``namespaces`` it serves the whole cluster. ``fast_settings()`` gives the
  short timeouts used by default (no peering, no long watch/backoff waits).
- ``mlmodel(name, namespace=..., spec=...)`` builds an MLModel object.
- ``free_port()`` — a free local TCP port (for kopf's webhook server).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import datetime
import json
import logging
import secrets
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import jsonpatch
import kmock
import kopf
from kmock._internal import dicts as kmock_dicts
from kmock._internal import enums as kmock_enums
from kmock._internal import rendering as kmock_rendering
from kopf._cogs.structs import credentials as kopf_credentials

from mlplatform.models.spec import API_GROUP, API_VERSION, KIND, PLURAL, SINGULAR

MLMODELS = kmock.resource(API_GROUP, API_VERSION, PLURAL)
EVENTS = kmock.resource("", "v1", "events")
NAMESPACES = kmock.resource("", "v1", "namespaces")
CRDS = kmock.resource("apiextensions.k8s.io", "v1", "customresourcedefinitions")

_ALL_VERBS = {"create", "delete", "get", "list", "patch", "update", "watch"}
_JSON_PATCH_ERRORS = (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException)


class ClusterEmulator(kmock.KubernetesEmulator):
    """KMock's emulator plus the object bookkeeping kopf relies on (see the module docstring)."""

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self._version = 0
        self.watched: set[Any] = set()  # resources someone has started watching
        self.resources[MLMODELS] = kmock.ResourceInfo(
            kind=KIND,
            singular=SINGULAR,
            namespaced=True,
            verbs=_ALL_VERBS,
            shortnames={"mlpm"},
            subresources={"status"},
        )
        self.resources[CRDS] = kmock.ResourceInfo(
            kind="CustomResourceDefinition",
            singular="customresourcedefinition",
            namespaced=False,
            verbs=_ALL_VERBS,
        )
        self.resources[NAMESPACES] = kmock.ResourceInfo(
            kind="Namespace", singular="namespace", namespaced=False, verbs=_ALL_VERBS
        )
        self.resources[EVENTS] = kmock.ResourceInfo(
            kind="Event", singular="event", namespaced=True, verbs=_ALL_VERBS
        )

    async def _handle(self, request: kmock_rendering.Request) -> Any:
        if request.resource is not None:
            async with self._lock:
                if request.action == kmock_enums.action.CREATE:
                    self._on_create(request)
                elif request.action == kmock_enums.action.UPDATE and request.name is not None:
                    self._on_patch(request)
                elif request.action == kmock_enums.action.DELETE and request.name is not None:
                    self._on_delete(request)
        return await super()._handle(request)

    async def _serve_list(self, request: kmock_rendering.Request) -> Any:
        # The list's resourceVersion lets a watch started from it skip what the list showed.
        async with self._lock:
            version = str(self._version)
        listing: Any = await super()._serve_list(request)
        listing["metadata"] = {"resourceVersion": version}
        return listing

    async def _serve_watch(self, request: kmock_rendering.Request) -> AsyncIterator[Any]:
        # KMock's own watch subscribes to the event bus only after it has sent the snapshot, so
        # a change made meanwhile (e.g. kopf's finalizer patch) is lost; and it re-sends objects
        # that the preceding list already showed (kopf then acts on stale bodies). Like the API
        # server, start from the list's resourceVersion: send only what changed since.
        yield b""
        assert request.resource is not None
        since = request.params.get("resourceVersion", "")
        since_version = int(since) if since.isdigit() else 0
        bus = self._buses[request.resource]
        async with self._lock:
            mark = await bus.mark()
            self.watched.add(request.resource)
            events = [
                {"type": "ADDED" if since_version == 0 else "MODIFIED", "object": obj.raw}
                for (resource, namespace, _), obj in self.objects.items()
                if resource == request.resource
                and not obj.deleted
                and request.namespace in (None, namespace)
                and _version_of(obj.raw) > since_version
            ]
        try:
            for event in events:
                yield event
            async for event in bus.stream(since=mark):
                namespace = event.get("object", {}).get("metadata", {}).get("namespace")
                if request.namespace in (None, namespace):
                    yield event
        finally:
            await bus.unmark(mark)

    def _next_version(self) -> str:
        self._version += 1
        return str(self._version)

    def _key(self, request: kmock_rendering.Request) -> Any:
        return (request.resource, request.namespace, request.name)

    def _stored(self, request: kmock_rendering.Request) -> dict[str, Any] | None:
        key = self._key(request)
        if key not in self.objects or self.objects[key].deleted:
            return None
        raw: dict[str, Any] = self.objects[key].raw
        return raw

    def _on_create(self, request: kmock_rendering.Request) -> None:
        data = request.data
        if not isinstance(data, dict):
            raise kmock.KubernetesError(status=400, reason="BadRequest", message="not an object")
        meta = data.setdefault("metadata", {})
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = f"{meta['generateName']}{secrets.token_hex(3)}"
        if request.namespace and not meta.get("namespace"):
            meta["namespace"] = request.namespace
        meta["uid"] = str(uuid.uuid4())
        meta["resourceVersion"] = self._next_version()
        meta["generation"] = 1
        meta["creationTimestamp"] = _now()
        meta.pop("deletionTimestamp", None)
        if request.resource == MLMODELS:
            data.pop("status", None)  # the status subresource: created objects have none

    def _on_patch(self, request: kmock_rendering.Request) -> None:
        old = self._stored(request)
        if old is None:
            return  # the emulator answers 404
        patch = request.data
        status_only = request.subresource == "status"
        if isinstance(patch, dict):
            if status_only:
                for key in list(patch):
                    if key not in {"status", "metadata"}:
                        del patch[key]
                if isinstance(patch.get("metadata"), dict):
                    patch["metadata"] = {}
            elif request.resource == MLMODELS:
                patch.pop("status", None)
            new = kmock_dicts.merge_patch_dict(old, patch)
        elif isinstance(patch, list):
            try:
                new = jsonpatch.apply_patch(copy.deepcopy(old), patch, in_place=False)
            except _JSON_PATCH_ERRORS as error:
                raise kmock.KubernetesError(
                    status=422, reason="Invalid", message=f"the JSON patch failed: {error}"
                ) from error
        else:
            raise kmock.KubernetesError(status=400, reason="BadRequest", message="bad patch")
        generation = int(old.get("metadata", {}).get("generation") or 1)
        if new.get("spec") != old.get("spec"):
            generation += 1
        version = self._next_version()
        if isinstance(patch, dict):
            meta = patch.get("metadata")
            if not isinstance(meta, dict):
                meta = patch["metadata"] = {}
            meta["resourceVersion"] = version
            meta["generation"] = generation
        else:
            patch.append({"op": "add", "path": "/metadata/resourceVersion", "value": version})
            patch.append({"op": "add", "path": "/metadata/generation", "value": generation})

    def _on_delete(self, request: kmock_rendering.Request) -> None:
        old = self._stored(request)
        if old is None:
            return
        meta = old.get("metadata", {})
        if meta.get("finalizers") and not meta.get("deletionTimestamp"):
            # The emulator will set deletionTimestamp; that is a new version of the object.
            self.objects[self._key(request)].patch(
                {"metadata": {"resourceVersion": self._next_version()}}
            )


def _version_of(obj: Mapping[str, Any]) -> int:
    version = str(obj.get("metadata", {}).get("resourceVersion", ""))
    return int(version) if version.isdigit() else 0


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def mlmodel(
    name: str, *, namespace: str = "default", spec: Mapping[str, Any], **metadata: Any
) -> dict[str, Any]:
    """An MLModel object as a user would apply it."""
    return {
        "apiVersion": f"{API_GROUP}/{API_VERSION}",
        "kind": KIND,
        "metadata": {"name": name, "namespace": namespace, **metadata},
        "spec": copy.deepcopy(dict(spec)),
    }


async def until(predicate: Callable[[], bool], *, timeout: float = 20, what: str = "") -> None:
    """Wait for a condition outside the API (Docker state, events); fail naming it."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"not within {timeout}s: {what}")
        await asyncio.sleep(0.1)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class KubeCluster:
    """A running emulator and the helpers tests use on it (lives as long as ``kube_cluster()``)."""

    emulator: ClusterEmulator
    server: kmock.Server
    # No keep-alive: kopf waits (5 s) at exit for every task spawned after its start, and the
    # server side of an idle kept-alive connection is such a task.
    session: aiohttp.ClientSession

    @property
    def url(self) -> str:
        return str(self.server.url).rstrip("/")

    def _path(self, namespace: str, name: str | None = None, *, status: bool = False) -> str:
        path = f"/apis/{API_GROUP}/{API_VERSION}/namespaces/{namespace}/{PLURAL}"
        if name is not None:
            path += f"/{name}"
        if status:
            path += "/status"
        return path

    async def _call(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        content_type: str = "application/json",
        missing_ok: bool = False,
    ) -> dict[str, Any] | None:
        data = None if body is None else json.dumps(body)
        headers = {"Content-Type": content_type} if body is not None else {}
        url = self.url + path
        async with self.session.request(method, url, data=data, headers=headers) as resp:
            payload: dict[str, Any] = await resp.json(content_type=None)
            if resp.status == 404 and missing_ok:
                return None
            if resp.status >= 400:
                raise AssertionError(f"{method} {path} answered {resp.status}: {payload}")
            return payload

    async def create(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """Create an MLModel (as ``kubectl create``); returns the stored object."""
        namespace = obj.get("metadata", {}).get("namespace", "default")
        result = await self._call("POST", self._path(namespace), body=dict(obj))
        assert result is not None
        return result

    async def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The stored MLModel, or ``None`` when there is none."""
        return await self._call("GET", self._path(namespace, name), missing_ok=True)

    async def list_objects(self) -> list[dict[str, Any]]:
        """Every MLModel in every namespace."""
        path = f"/apis/{API_GROUP}/{API_VERSION}/{PLURAL}"
        result = await self._call("GET", path)
        assert result is not None
        items: list[dict[str, Any]] = result.get("items", [])
        return items

    async def patch(
        self, namespace: str, name: str, patch: Mapping[str, Any], *, status: bool = False
    ) -> dict[str, Any]:
        """Merge-patch an MLModel (``status=True``: through the status subresource)."""
        path = self._path(namespace, name, status=status)
        result = await self._call(
            "PATCH", path, body=dict(patch), content_type="application/merge-patch+json"
        )
        assert result is not None
        return result

    async def delete(self, namespace: str, name: str) -> None:
        """Delete an MLModel: gone at once without finalizers, else marked for deletion."""
        await self._call("DELETE", self._path(namespace, name))

    def events(
        self, *, namespace: str | None = None, name: str | None = None
    ) -> list[dict[str, Any]]:
        """Events posted so far (oldest first), optionally about one object."""
        found: list[dict[str, Any]] = []
        for (resource, ns, _), obj in self.emulator.objects.items():
            if resource != EVENTS or obj.deleted or (namespace is not None and ns != namespace):
                continue
            raw: dict[str, Any] = obj.raw
            if name is not None and raw.get("involvedObject", {}).get("name") != name:
                continue
            found.append(raw)
        return sorted(found, key=lambda e: int(e["metadata"]["resourceVersion"]))

    async def wait_for(
        self,
        namespace: str,
        name: str,
        predicate: Callable[[dict[str, Any] | None], bool],
        *,
        timeout: float = 10.0,
        interval: float = 0.05,
    ) -> dict[str, Any] | None:
        """Poll until ``predicate(object or None)`` holds; ``TimeoutError`` with the last state."""
        deadline = time.monotonic() + timeout
        while True:
            obj = await self.get(namespace, name)
            if predicate(obj):
                return obj
            if time.monotonic() > deadline:
                shown = json.dumps(obj, indent=1, sort_keys=True)[:3000]
                raise TimeoutError(
                    f"{namespace}/{name} not as expected in {timeout}s; last:\n{shown}"
                )
            await asyncio.sleep(interval)

    async def wait_for_condition(
        self,
        namespace: str,
        name: str,
        condition: str,
        status: str = "True",
        *,
        timeout: float = 10.0,
    ) -> dict[str, Any]:
        """Wait until ``status.conditions[type=condition].status == status``."""

        def holds(obj: dict[str, Any] | None) -> bool:
            conditions = ((obj or {}).get("status") or {}).get("conditions") or []
            return any(c.get("type") == condition and c.get("status") == status for c in conditions)

        obj = await self.wait_for(namespace, name, holds, timeout=timeout)
        assert obj is not None
        return obj

    async def wait_for_phase(
        self, namespace: str, name: str, phase: str, *, timeout: float = 10.0
    ) -> dict[str, Any]:
        """Wait until ``status.phase == phase``."""
        obj = await self.wait_for(
            namespace,
            name,
            lambda o: ((o or {}).get("status") or {}).get("phase") == phase,
            timeout=timeout,
        )
        assert obj is not None
        return obj

    async def wait_gone(self, namespace: str, name: str, *, timeout: float = 10.0) -> None:
        """Wait until the object no longer exists (finalizers released)."""
        await self.wait_for(namespace, name, lambda o: o is None, timeout=timeout)

    def connection_info(self) -> kopf.ConnectionInfo:
        return kopf.ConnectionInfo(server=self.url, insecure=True, default_namespace="default")

    def vault(self) -> Any:
        """A kopf credentials vault already holding the emulator's address (no login needed)."""
        return kopf_credentials.Vault({"kmock-emulator": self.connection_info()})

    def write_kubeconfig(self, path: Path) -> Path:
        """A kubeconfig pointing at the emulator, for subprocesses (``KUBECONFIG=...``)."""
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "kmock", "cluster": {"server": self.url}}],
            "users": [{"name": "kmock", "user": {"token": "kmock"}}],
            "contexts": [
                {"name": "kmock", "context": {"cluster": "kmock", "user": "kmock"}},
            ],
            "current-context": "kmock",
        }
        path.write_text(json.dumps(config, indent=2))
        return path


@contextlib.asynccontextmanager
async def kube_cluster(
    emulator_class: type[ClusterEmulator] = ClusterEmulator,
) -> AsyncIterator[KubeCluster]:
    """A started emulator on a random local port; everything is dropped on exit."""
    connector = aiohttp.TCPConnector(force_close=True)
    async with (
        emulator_class() as emulator,
        kmock.Server(emulator) as server,
        aiohttp.ClientSession(connector=connector) as session,
    ):
        yield KubeCluster(emulator=emulator, server=server, session=session)


def fast_settings(settings: kopf.OperatorSettings | None = None) -> kopf.OperatorSettings:
    """kopf settings for tests: quick (re)connections and retries, quiet logs."""
    settings = settings if settings is not None else kopf.OperatorSettings()
    settings.watching.connect_timeout = 2
    settings.watching.server_timeout = 30
    settings.watching.client_timeout = 40
    settings.watching.reconnect_backoff = 0.05
    settings.networking.connect_timeout = 2
    settings.networking.request_timeout = 10
    settings.networking.error_backoffs = [0.1, 0.2, 0.5, 1]
    settings.batching.batch_window = 0.01
    settings.batching.idle_timeout = 5
    settings.batching.exit_timeout = 2
    settings.process.ultimate_exiting_timeout = 2
    settings.posting.level = logging.INFO
    return settings


@dataclass
class RunningOperator:
    """A kopf operator running in a task of the test's event loop (see ``running_operator``)."""

    task: asyncio.Task[None]
    stop_flag: asyncio.Event
    ready_flag: asyncio.Event
    settings: kopf.OperatorSettings
    started_in: float  # seconds from the start of the task to kopf's ready flag


@contextlib.asynccontextmanager
async def running_operator(
    cluster: KubeCluster,
    *,
    registry: kopf.OperatorRegistry,
    settings: kopf.OperatorSettings | None = None,
    namespaces: Collection[str] = (),
    memo: object | None = None,
    watching: bool = True,
    startup_timeout: float = 10.0,
    stop_timeout: float = 10.0,
) -> AsyncIterator[RunningOperator]:
    """Run kopf with ``registry`` against ``cluster`` until the block exits, then stop it.

    With ``watching`` (the default), startup waits until kopf watches MLModels (so objects
    created next are seen); pass ``False`` for registries with admission handlers only.
    A failing operator task fails the block (its exception is raised at startup or on exit).
    """
    settings = fast_settings(settings)
    stop_flag = asyncio.Event()
    ready_flag = asyncio.Event()
    started = time.monotonic()
    # kopf waits (5 s) at exit for every task spawned after its start, taking them for its own;
    # the task that stops it (e.g. a fixture's teardown) is added to the ignored ones at exit.
    ignored: set[asyncio.Task[Any]] = set(asyncio.all_tasks())

    async def operate() -> None:
        tasks = await kopf.spawn_tasks(
            registry=registry,
            settings=settings,
            standalone=True,
            clusterwide=not namespaces,
            namespaces=list(namespaces),
            stop_flag=stop_flag,
            ready_flag=ready_flag,
            vault=cluster.vault(),
            memo=memo,
        )
        await kopf.run_tasks(tasks, ignored=ignored)

    task = asyncio.create_task(operate(), name="kopf-operator")
    ready = asyncio.create_task(ready_flag.wait())
    try:
        done, _ = await asyncio.wait(
            {task, ready}, timeout=startup_timeout, return_when=asyncio.FIRST_COMPLETED
        )
        if task in done:
            task.result()  # raises the operator's failure
            raise AssertionError("The operator exited during its startup.")
        if ready not in done:
            raise TimeoutError(f"The operator was not ready within {startup_timeout}s.")
        while watching and MLMODELS not in cluster.emulator.watched:
            if task.done():
                task.result()
                raise AssertionError("The operator exited during its startup.")
            if time.monotonic() - started > startup_timeout:
                raise TimeoutError(f"The operator did not watch MLModels in {startup_timeout}s.")
            await asyncio.sleep(0.01)
        running = RunningOperator(
            task=task,
            stop_flag=stop_flag,
            ready_flag=ready_flag,
            settings=settings,
            started_in=time.monotonic() - started,
        )
        yield running
    finally:
        ready.cancel()
        current = asyncio.current_task()
        if current is not None:
            ignored.add(current)
        stop_flag.set()
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout=stop_timeout)
        except TimeoutError:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            raise
        except asyncio.CancelledError:
            pass
