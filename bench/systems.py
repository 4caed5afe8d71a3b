"""The systems under test, behind one small interface: start, apply models, remove models.

- ``LocalMode``: ``mlplatform local <folder>`` watching a folder; applying a model writes its
  manifest (atomically: a hidden temporary file renamed into place), removing deletes it.
- ``OperatorMode``: ``mlplatform operator`` (its real kopf settings, default peering mode)
  against the KMock emulator (``kube_api.py``, its own process); applying POSTs MLModel
  objects, removing DELETEs them (the operator's finalizer removes the container).
Both processes reach Docker through the counting proxy (``DOCKER_HOST``).
"""

from __future__ import annotations

import concurrent.futures
import json
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import yaml

from bench.env import MLPLATFORM, PYTHON, REPO, BenchEnv, Process
from mlplatform.models import spec

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

    @property
    def process(self) -> Process: ...

    def start(self) -> None: ...

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
    """``mlplatform operator`` against the KMock emulator, both processes of this run."""

    name = "operator"

    def __init__(self, env: BenchEnv, image: str) -> None:
        self._env = env
        self._image = image
        self._kubeconfig = env.root / "kubeconfig.json"
        self._api: Process | None = None
        self._process: Process | None = None
        self._url = ""

    @property
    def process(self) -> Process:
        assert self._process is not None
        return self._process

    def start(self) -> None:
        self._api, self._url = self._env.spawn_api(
            "kmock-api",
            [str(PYTHON), str(REPO / "bench" / "kube_api.py"), str(self._kubeconfig)],
            self._kubeconfig,
        )
        environ = self._env.sut_environ()
        environ["KUBECONFIG"] = str(self._kubeconfig)
        self._process = self._env.spawn(
            "mlplatform-operator",
            [
                str(PYTHON),
                "-m",
                "mlplatform",
                "operator",
                "--all-namespaces",
                "--liveness",
                "",
                "--metrics-port",
                "0",
            ],
            environ,
        )

    def helper_pids(self) -> dict[str, int]:
        return {"kmock": self._api.pid} if self._api is not None else {}

    def _call(
        self, method: str, path: str, body: Any = None, content_type: str = "application/json"
    ) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self._url + path, data=data, method=method, headers={"Content-Type": content_type}
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            if method == "DELETE" and error.code == 404:
                return None
            raise RuntimeError(f"{method} {path}: {error.code} {error.read()[:300]!r}") from error

    def _collection(self) -> str:
        return f"/apis/{API_VERSION}/namespaces/{NAMESPACE}/mlmodels"

    def _each(self, action: Any, model_ids: Sequence[str]) -> None:
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            for future in [pool.submit(action, m) for m in model_ids]:
                future.result()

    def apply(self, model_ids: Sequence[str], **container: Any) -> None:
        self._each(
            lambda m: self._call("POST", self._collection(), manifest(m, self._image, **container)),
            model_ids,
        )

    def update(self, model_id: str, **container: Any) -> None:
        # A merge patch of the spec, as `kubectl patch --type merge` sends it.
        patch = {"spec": manifest(model_id, self._image, **container)["spec"]}
        path = f"{self._collection()}/{model_id.partition(':')[0]}"
        self._call("PATCH", path, patch, content_type="application/merge-patch+json")

    def remove(self, model_ids: Sequence[str]) -> None:
        self._each(
            lambda m: self._call("DELETE", f"{self._collection()}/{m.partition(':')[0]}"),
            model_ids,
        )

    def get(self, model_id: str) -> Any:
        return self._call("GET", f"{self._collection()}/{model_id.partition(':')[0]}")
