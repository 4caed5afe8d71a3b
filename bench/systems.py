"""The systems under test, behind one small interface: start, apply models, remove models.

- ``LocalMode``: ``mlplatform local <folder>`` watching a folder; applying a model writes its
  manifest (atomically: a hidden temporary file renamed into place), removing deletes it.
- ``OperatorMode``: ``mlplatform operator`` (its real kopf settings, default peering mode) on
  the real control plane of ``scripts/kube-up.sh`` (``cluster.py``), as the operator's
  ServiceAccount, watching a namespace of the run's own; applying POSTs MLModel objects (as
  the admin), removing DELETEs them (the operator's finalizer removes the container).
Both processes reach Docker through the counting proxy (``DOCKER_HOST``).
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import kubernetes.client.exceptions
import yaml

from bench.cluster import MLMODELS, Cluster, read
from bench.env import MLPLATFORM, PYTHON, BenchEnv, Process
from mlplatform.models import spec
from mlplatform.runners.kubernetes.rest import MERGE_PATCH

API_VERSION = f"{spec.API_GROUP}/{spec.API_VERSION}"
NAMESPACE = "bench"


def manifest(model_id: str, image: str, **container: Any) -> dict[str, Any]:
    """The MLModel of ``model_id``; ``container`` adds fields (camelCase) to its container."""
    name = model_id.partition(":")[0]
    return {
        "apiVersion": API_VERSION,
        "kind": "MLModel",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {"id": model_id, "container": {"image": image, "ports": [8080], **container}},
    }


class System(Protocol):
    name: str
    namespace: str  # the MLModels' namespace (their stable endpoint is <name>.<namespace>)

    @property
    def process(self) -> Process: ...

    def start(self) -> None: ...

    def stop(self) -> None:
        """Stop the process and whatever the system needs besides (its namespace, ...)."""
        ...

    def helper_pids(self) -> dict[str, int]:
        """Other processes of the system worth profiling (e.g. the API emulator)."""
        ...

    def apply(self, model_ids: Sequence[str], **container: Any) -> None:
        """Create the models (``container``: extra container fields, camelCase)."""
        ...

    def update(self, model_id: str, **container: Any) -> None:
        """Change a model's container fields as a user would (edit the manifest, patch)."""
        ...

    def remove(self, model_ids: Sequence[str]) -> None: ...


class LocalMode:
    """``mlplatform local`` watching one folder of this run."""

    name = "local"
    namespace = NAMESPACE

    def __init__(self, env: BenchEnv, image: str) -> None:
        self._env = env
        self._image = image
        self.folder = env.root / "manifests"
        self.folder.mkdir()
        self._process: Process | None = None

    @property
    def process(self) -> Process:
        assert self._process is not None
        return self._process

    def start(self) -> None:
        self._process = self._env.spawn(
            "mlplatform-local",
            [str(MLPLATFORM), "local", str(self.folder)],
            self._env.sut_environ(),
        )

    def stop(self) -> None:
        if self._process is not None:
            self._process.stop()

    def helper_pids(self) -> dict[str, int]:
        return {}

    def _path(self, model_id: str) -> Path:
        return self.folder / f"{model_id.partition(':')[0]}.yaml"

    def apply(self, model_ids: Sequence[str], **container: Any) -> None:
        for model_id in model_ids:
            path = self._path(model_id)
            temporary = path.with_name(f".{path.name}.tmp")
            temporary.write_text(yaml.safe_dump(manifest(model_id, self._image, **container)))
            temporary.rename(path)

    def update(self, model_id: str, **container: Any) -> None:
        self.apply([model_id], **container)

    def remove(self, model_ids: Sequence[str]) -> None:
        for model_id in model_ids:
            self._path(model_id).unlink(missing_ok=True)


class OperatorMode:
    """``mlplatform operator`` on the real control plane (``bench.cluster``), as its
    ServiceAccount, watching a namespace of this run's own."""

    name = "operator"

    def __init__(self, env: BenchEnv, image: str) -> None:
        self._env = env
        self._image = image
        self.namespace = f"bench-{env.token}-docker"
        self._cluster: Cluster | None = None
        self._process: Process | None = None

    @property
    def process(self) -> Process:
        assert self._process is not None
        return self._process

    @property
    def cluster(self) -> Cluster:
        assert self._cluster is not None
        return self._cluster

    def start(self) -> None:
        self._cluster = Cluster.up(self._env.root)
        self._cluster.create_namespace(self.namespace)
        environ = self._env.sut_environ()
        environ["KUBECONFIG"] = str(self._cluster.token_kubeconfig("operator-docker"))
        self._process = self._env.spawn(
            "mlplatform-operator",
            [
                str(PYTHON),
                "-m",
                "mlplatform",
                "operator",
                "--namespace",
                self.namespace,
                "--liveness",
                "",
                "--metrics-port",
                "0",
            ],
            environ,
        )

    def stop(self) -> None:
        """The models are deleted while the operator runs (it releases their finalizers),
        then it stops, then the namespace goes (waited for) and the control plane stops if
        this run started it."""
        if self._cluster is None:
            return
        try:
            if self._process is not None and self._process.alive():
                self.cluster.plane.kubectl(
                    "delete", "mlmodels", "--all", "-n", self.namespace, "--timeout=120s",
                    check=False,
                )  # fmt: skip
            if self._process is not None:
                self._process.stop()
            # Whatever the operator could not release (it died): let the namespace go.
            for name in self._model_names():
                self.cluster.plane.kubectl(
                    "patch", "mlmodel", name, "-n", self.namespace, "--type=merge",
                    "-p", '{"metadata":{"finalizers":null}}', check=False,
                )  # fmt: skip
            self.cluster.delete_namespace(self.namespace)
        finally:
            self.cluster.close()
            self._cluster = None

    def helper_pids(self) -> dict[str, int]:
        return {}

    def _model_names(self) -> list[str]:
        listing = read(
            self.cluster.admin.request("list", MLMODELS, namespace=self.namespace, timeout=60)
        )
        return [str(item["metadata"]["name"]) for item in listing.get("items") or []]

    def _each(self, action: Callable[[str], object], model_ids: Sequence[str]) -> None:
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            for future in [pool.submit(action, m) for m in model_ids]:
                future.result()

    def _create(self, model_id: str, **container: Any) -> None:
        body = manifest(model_id, self._image, **container)
        body["metadata"]["namespace"] = self.namespace
        read(self.cluster.admin.request("create", MLMODELS, namespace=self.namespace,
                                        body=body, timeout=30))  # fmt: skip

    def apply(self, model_ids: Sequence[str], **container: Any) -> None:
        self._each(lambda m: self._create(m, **container), model_ids)

    def update(self, model_id: str, **container: Any) -> None:
        # A merge patch of the spec, as `kubectl patch --type merge` sends it.
        patch = {"spec": manifest(model_id, self._image, **container)["spec"]}
        name = model_id.partition(":")[0]
        read(self.cluster.admin.request("patch", MLMODELS, namespace=self.namespace, name=name,
                                        body=patch, content_type=MERGE_PATCH,
                                        timeout=30))  # fmt: skip

    def _delete(self, model_id: str) -> None:
        name = model_id.partition(":")[0]
        try:
            read(self.cluster.admin.request("delete", MLMODELS, namespace=self.namespace,
                                            name=name, timeout=30))  # fmt: skip
        except kubernetes.client.exceptions.ApiException as error:
            if error.status != 404:
                raise

    def remove(self, model_ids: Sequence[str]) -> None:
        self._each(self._delete, model_ids)
