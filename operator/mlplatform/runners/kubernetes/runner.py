"""The Kubernetes runner: a model as a Deployment, a Service and a storage claim in its namespace.

``KubernetesRunner(settings, api_client)`` implements the runner contract with the official
client (one ``ApiClient``, shared by the worker threads):

- ``apply`` converges the three objects to the plan: a missing object is created, one whose
  owned fields differ (a spec change — another spec hash — or a hand edit) is patched back
  (JSON patch at the owned paths), an unchanged one is not written at all. A suspended model
  keeps its Deployment at 0 replicas, its Service and its claim. Kubernetes restarts the
  pod; the runner never creates pods itself. An object of the model's name that is not
  managed by mlplatform, or that another MLModel controls, is a conflict (``NameConflict``),
  never overwritten.
- ``observe`` reads the Deployment and the pods of its current revision (see ``status``).
  Every read of the runner's is served by the ``ObjectCache`` its watches keep while they
  run (as controller-runtime's client reads from its informers), else by the API server:
  converging a new model costs two creates and no read.
- ``delete`` deletes the Deployment and the Service (the claim only when
  ``RUNNERS_KUBERNETES_DELETE_CLAIM`` says so). Their ``ownerReferences`` make Kubernetes'
  garbage collector do the same when the MLModel goes, even with no operator running.
- ``list_owned``/``remove_owned`` find and remove Deployments by the managed labels (this
  controller's only), for adoption after a restart and garbage collection.
- ``events`` watches Deployments, Services, claims and pods by label, fills the cache and
  turns each change into a ``RunnerEvent`` for the owner named in the labels (see ``watch``).

Given ``namespaces`` (the operator's ``--namespace``), every list and watch is made in those
namespaces only, so a Role in each of them is all the runner needs; without, they are
cluster-wide.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

from mlplatform import errors
from mlplatform.config import Settings
from mlplatform.models import quantities
from mlplatform.runners import base
from mlplatform.runners.kubernetes import api, drift, plan, watch
from mlplatform.runners.kubernetes import status as status_module
from mlplatform.runners.kubernetes.cache import ObjectCache, carries

log = logging.getLogger(__name__)

TYPE = "kubernetes"


class KubernetesRunner:
    """Runs each model as a Deployment + Service (+ claim) in the MLModel's namespace."""

    type = TYPE
    # The Deployment is named after the MLModel: an id change patches it in place, so the
    # core has no workload of an old id to retire.
    one_workload_per_owner = True

    def __init__(
        self, settings: Settings, api_client: Any, *, namespaces: tuple[str, ...] = ()
    ) -> None:
        self._settings = settings
        self._api = api.KubeObjects(api_client, timeout=settings.runners_kubernetes_timeout)
        self._namespaces = namespaces
        self._own_writes = watch.OwnWrites()
        self._cache = ObjectCache()
        # Claim growths the API refused: (namespace, claim) → (size, the claim's version).
        self._growth_refused: dict[tuple[str, str], tuple[str | None, object]] = {}

    # --- selectors ---------------------------------------------------------------------

    @property
    def selector(self) -> str:
        """The label selector of everything this controller manages."""
        return _selector(base.owned_labels(self._settings.controller))

    def plan_for(self, workload: base.Workload) -> plan.KubernetesPlan:
        """The objects this runner makes for ``workload`` (raises ``StorageNotConfigured``)."""
        return plan.plan(workload, self._settings)

    # --- the contract ------------------------------------------------------------------

    def apply(self, workload: base.Workload) -> base.RunnerStatus:
        """Converge the Deployment, Service and claim to the plan; no writes when in sync."""
        made = self.plan_for(workload)
        actions: list[base.Action] = []
        if made.claim is not None and made.claim_name is not None:
            claim_action, claim = self._converge(api.CLAIM, made.claim, workload.owner)
            actions.append(claim_action)
            self._grow_claim(made.claim, claim)
        deployment_action, deployment = self._converge(
            api.DEPLOYMENT,
            made.deployment,
            workload.owner,
        )
        actions.append(deployment_action)
        service_action, service = self._converge(
            api.SERVICE,
            made.service,
            workload.owner,
        )
        actions.append(service_action)
        action = (
            deployment_action
            if deployment_action != base.Action.NONE
            else next((a for a in actions if a != base.Action.NONE), base.Action.NONE)
        )
        # What the API answered to the writes (or read) is current: only the pods are read,
        # and not even those for a Deployment created just now (it has none yet).
        return self._read(
            made,
            action=action,
            deployment=deployment,
            service=service,
            pods=[] if deployment_action == base.Action.CREATED else None,
        )

    def observe(self, workload: base.Workload) -> base.RunnerStatus:
        """What runs for the model, from the Deployment and its pods; changes nothing."""
        made = self.plan_for(workload)
        deployment = self._get(api.DEPLOYMENT, made.namespace, made.name)
        service = self._get(api.SERVICE, made.namespace, made.name)
        return self._read(made, deployment=deployment, service=service, known=True)

    def delete(self, workload: base.Workload) -> base.RunnerStatus:
        """Delete the Deployment and the Service (the claim only if the settings say so)."""
        owner = workload.owner
        name = owner.name
        removed = False
        for kind in (api.DEPLOYMENT, api.SERVICE):
            live = self._api.get(kind, owner.namespace, name)
            if live is not None and self._is_ours(live, owner):
                uid = (live.get("metadata") or {}).get("uid")
                removed = self._api.delete(kind, owner.namespace, name, uid=uid) or removed
        if self._settings.runners_kubernetes_delete_claim:
            claim = plan.claim_name(name)
            live = self._api.get(api.CLAIM, owner.namespace, claim)
            if live is not None and self._is_ours(live, owner, controller=False):
                uid = (live.get("metadata") or {}).get("uid")
                removed = self._api.delete(api.CLAIM, owner.namespace, claim, uid=uid) or removed
        return base.RunnerStatus(
            state=base.State.REMOVED,
            action=base.Action.REMOVED if removed else base.Action.NONE,
            workload_name=name,
            ready=False,
            message="Deployment and Service deleted"
            + ("" if self._settings.runners_kubernetes_delete_claim else "; storage claim kept"),
        )

    def probe(self, workload: base.Workload, status: base.RunnerStatus) -> base.ProbeResult:
        """The kubelet runs the readiness probe; its verdict is in the rollout status."""
        if status.ready:
            return base.ProbeResult(ok=True, message="the kubelet reports the pod Ready")
        return base.ProbeResult(ok=False, message=status.message or "the pod is not Ready")

    def list_owned(self) -> list[base.OwnedWorkload]:
        """Every Deployment this controller manages, read from its labels."""
        items = [
            item
            for namespace in self._namespaces or (None,)
            for item in self._api.list(api.DEPLOYMENT, namespace=namespace, selector=self.selector)[
                0
            ]
        ]
        owned: list[base.OwnedWorkload] = []
        for item in items:
            found = self._owned(item)
            if found is not None:
                owned.append(found)
        return owned

    def remove_owned(self, owned: base.OwnedWorkload) -> None:
        """Remove an orphan's Deployment (that very one, by uid) and its Service."""
        namespace = owned.owner.namespace
        self._api.delete(api.DEPLOYMENT, namespace, owned.workload_name, uid=owned.workload_id)
        service = self._api.get(api.SERVICE, namespace, owned.workload_name)
        if service is not None and self._labels(service).get(base.LABEL_OWNER_UID) == (
            owned.owner.uid
        ):
            uid = (service.get("metadata") or {}).get("uid")
            self._api.delete(api.SERVICE, namespace, owned.workload_name, uid=uid)

    def logs(
        self, namespace: str, name: str, *, previous: bool, tail: int | None, follow: bool
    ) -> Iterator[bytes]:
        """Not read by this runner: a pod's logs are the cluster's (kubectl logs)."""
        raise errors.RunnerNotImplemented(
            f"the logs of a runner kubernetes model are the cluster's: kubectl logs -n "
            f"{namespace} deployment/{name}"
        )

    def stop_writes(self) -> None:
        """No new writes to the cluster from now on (the process is stopping)."""
        self._api.stop_writes()

    def events(self) -> base.EventStream:
        """A blocking iterator of changes to managed objects; ``close()`` ends it."""
        return watch.WorkloadEvents(
            self._api,
            self.selector,
            self._settings.controller,
            self._own_writes,
            cache=self._cache,
            namespaces=self._namespaces,
        )

    # --- internals ---------------------------------------------------------------------

    def _get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """The object from the cache while the watches keep it, else from the API server."""
        if self._cache.synced():
            return self._cache.get(kind, namespace, name)
        return self._api.get(kind, namespace, name)

    def _write(
        self,
        kind: str,
        base_object: dict[str, Any] | None,
        namespace: str,
        name: str,
        call: Callable[[], dict[str, Any]],
    ) -> dict[str, Any]:
        """One create (``base_object`` None) or patch of ``base_object``, remembered so that
        its own watch event is not drift, and kept in the cache."""
        self._own_writes.begin(kind, namespace, name)
        written: dict[str, Any] | None = None
        try:
            written = call()
            self._cache.written(kind, written, base_object)
            return written
        finally:
            self._own_writes.end(kind, namespace, name, written)

    def _converge(
        self,
        kind: str,
        desired: dict[str, Any],
        owner: base.Owner,
        *,
        fresh: bool = False,
    ) -> tuple[base.Action, dict[str, Any]]:
        """Create, patch back or leave the object; returns what was done and the object.

        ``fresh``: read it from the API server, not the cache (whose copy proved stale)."""
        meta = desired["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        live = self._api.get(kind, namespace, name) if fresh else self._get(kind, namespace, name)
        if live is None:
            try:
                created = self._write(
                    kind, None, namespace, name, lambda: self._api.create(kind, namespace, desired)
                )
                log.info("Created %s %s/%s", kind, namespace, name)
                return base.Action.CREATED, created
            except api.Conflict:
                live = self._api.get(kind, namespace, name)  # created meanwhile: converge it
                if live is None:
                    raise errors.RunnerUnavailable(
                        f"{kind} {namespace}/{name} was created and deleted meanwhile; retrying"
                    ) from None
        self._check_ownership(kind, live, owner)
        drifted = drift.object_differences(kind, desired, live)
        if not drifted:
            return base.Action.NONE, live
        try:
            ops = _for_uid(live, drift.restore_ops(kind, desired, live))
            patched = self._write(
                kind, live, namespace, name, lambda: self._api.patch(kind, namespace, name, ops)
            )
        except api.NotFound:
            if not fresh:  # gone since the cache's copy was made: read the API server
                return self._converge(kind, desired, owner, fresh=True)
            raise errors.RunnerUnavailable(
                f"{kind} {namespace}/{name} was deleted while being patched; retrying"
            ) from None
        except errors.StartFailed:
            if not fresh:  # refused: maybe replaced since the cache's copy (another uid)
                return self._converge(kind, desired, owner, fresh=True)
            raise
        log.info("Patched %s %s/%s back to the plan: %s", kind, namespace, name, drifted[:5])
        return base.Action.REPLACED, patched

    def _grow_claim(self, desired: dict[str, Any], live: dict[str, Any]) -> None:
        """Ask for the storage size the settings say when it is more than the claim has.

        A claim only grows (Kubernetes refuses to shrink one), and only where its
        StorageClass allows expansion: a refusal is logged once, the model keeps running on
        the claim it has, and the same size is asked again only once the claim changed."""
        want, have = _storage_request(desired), _storage_request(live)
        want_bytes = quantities.parse_memory(want) if want else None
        have_bytes = quantities.parse_memory(have) if have else None
        if want_bytes is None or have_bytes is None or want_bytes <= have_bytes:
            return
        meta = live.get("metadata") or {}
        namespace, name = str(meta.get("namespace")), str(meta.get("name"))
        if self._growth_refused.get((namespace, name)) == (want, meta.get("resourceVersion")):
            return  # refused for this size and this claim already: not asked again
        ops = _for_uid(
            live, [{"op": "add", "path": "/spec/resources/requests/storage", "value": want}]
        )
        try:
            self._write(
                api.CLAIM,
                live,
                namespace,
                name,
                lambda: self._api.patch(api.CLAIM, namespace, name, ops),
            )
        except (errors.RunnerError, api.NotFound, api.Conflict) as error:
            log.warning(
                "Could not grow claim %s/%s from %s to %s: %s", namespace, name, have, want, error
            )
            self._growth_refused[namespace, name] = (want, meta.get("resourceVersion"))
            return
        log.info("Asked to grow claim %s/%s from %s to %s", namespace, name, have, want)

    def _check_ownership(self, kind: str, live: dict[str, Any], owner: base.Owner) -> None:
        """Refuse to touch an object of the model's name that is not ours."""
        name = (live.get("metadata") or {}).get("name")
        if self._is_ours(live, owner, controller=kind != api.CLAIM):
            return
        raise errors.ContainerConflict(
            f"{kind} {owner.namespace}/{name} exists and is not managed by mlplatform for "
            f"MLModel {owner.key} ({_held_by(live)}); rename the MLModel or remove that {kind}"
        )

    def _is_ours(self, live: dict[str, Any], owner: base.Owner, *, controller: bool = True) -> bool:
        labels = self._labels(live)
        if labels.get(base.LABEL_MANAGED_BY) != base.MANAGED_BY:
            return False
        if labels.get(base.LABEL_OWNER_NAME) != owner.name:
            return False
        if not controller:
            return True
        # Another MLModel's object (say, the previous one of this name, not yet collected)
        # is adopted only when no other live controller claims it.
        for reference in (live.get("metadata") or {}).get("ownerReferences") or []:
            if reference.get("controller") and reference.get("kind") != "MLModel":
                return False
            if reference.get("controller") and reference.get("name") != owner.name:
                return False
        return True

    def _read(
        self,
        made: plan.KubernetesPlan,
        *,
        action: base.Action = base.Action.NONE,
        deployment: dict[str, Any] | None = None,
        service: dict[str, Any] | None = None,
        pods: list[dict[str, Any]] | None = None,
        known: bool = False,
    ) -> base.RunnerStatus:
        """The status from the objects given (``known``: even when None), the rest read."""
        if deployment is None and not known:
            deployment = self._get(api.DEPLOYMENT, made.namespace, made.name)
        if service is None and not known:
            service = self._get(api.SERVICE, made.namespace, made.name)
        if pods is None:
            pods = []
            if deployment is not None:
                pods = self._pods(made)
        return status_module.read_status(
            made, deployment, pods, service_exists=service is not None, action=action
        )

    def _pods(self, made: plan.KubernetesPlan) -> list[dict[str, Any]]:
        """The model's pods, from the cache while the watches keep it."""
        if self._cache.synced():
            return self._cache.select(api.POD, made.namespace, made.selector)
        items, _ = self._api.list(
            api.POD, namespace=made.namespace, selector=_selector(made.selector)
        )
        return [p for p in items if carries(p, made.selector)]

    def _owned(self, item: dict[str, Any]) -> base.OwnedWorkload | None:
        meta = item.get("metadata") or {}
        labels = meta.get("labels") or {}
        annotations = meta.get("annotations") or {}
        if labels.get(base.LABEL_MANAGED_BY) != base.MANAGED_BY:
            return None  # an emulator or an old API server may ignore the selector
        if labels.get(base.LABEL_CONTROLLER) != self._settings.controller:
            return None
        owner = base.owner_from_labels(labels)
        if not (owner.uid and owner.name and owner.namespace):
            return None
        counts = status_module.replicas(item)
        if counts["desired"] == 0 and counts["current"] == 0:
            state = base.State.REMOVED
        elif status_module.rollout_complete(item):
            state = base.State.RUNNING
        else:
            state = base.State.STARTING
        return base.OwnedWorkload(
            owner=owner,
            model_id=str(annotations.get(plan.ANNOTATION_MODEL_ID) or ""),
            workload_id=str(meta.get("uid") or ""),
            workload_name=str(meta.get("name") or ""),
            revision=str(annotations.get(plan.ANNOTATION_SPEC_HASH) or ""),
            state=state,
        )

    @staticmethod
    def _labels(obj: dict[str, Any]) -> dict[str, str]:
        labels: dict[str, str] = (obj.get("metadata") or {}).get("labels") or {}
        return labels


def _for_uid(live: dict[str, Any], ops: list[Any]) -> list[Any]:
    """``ops`` applied only to the very object they were computed from: a copy from the
    cache may be of an object since deleted and made again under that name by someone
    else, which must never be written over (the API refuses the patch: 422)."""
    uid = (live.get("metadata") or {}).get("uid")
    return ops if not uid else [{"op": "test", "path": "/metadata/uid", "value": uid}, *ops]


def _storage_request(claim: dict[str, Any]) -> str | None:
    requests = ((claim.get("spec") or {}).get("resources") or {}).get("requests") or {}
    value = requests.get("storage")
    return str(value) if value is not None else None


def _selector(labels: dict[str, str]) -> str:
    return ",".join(f"{key}={value}" for key, value in sorted(labels.items()))


def _held_by(live: dict[str, Any]) -> str:
    """Who holds an object that is not ours: its controller, its manager, or nobody known."""
    meta = live.get("metadata") or {}
    for reference in meta.get("ownerReferences") or []:
        if reference.get("controller"):
            return f"controlled by {reference.get('kind')} {reference.get('name')}"
    labels = meta.get("labels") or {}
    if labels.get(base.LABEL_MANAGED_BY) == base.MANAGED_BY:
        return f"made by mlplatform for MLModel {labels.get(base.LABEL_OWNER_NAMESPACE)}/" + str(
            labels.get(base.LABEL_OWNER_NAME)
        )
    manager = next(  # who wrote its spec (not a controller writing its status)
        (
            m.get("manager")
            for m in meta.get("managedFields") or []
            if m.get("manager") and not m.get("subresource")
        ),
        None,
    )
    return f"written by {manager}" if manager else "its owner is unknown"
