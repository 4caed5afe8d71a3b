"""``mlplatform local`` as a subprocess on a private corner of the engine.

``LocalCli`` writes manifests into a folder, runs or starts the installed ``mlplatform local``
with a private controller, network and folders (``DockerEnv``), and reads back what the
engine holds. Used by the local-mode, security and fault tests alike.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from docker.models.containers import Container

from mlplatform.runners.base import LABEL_CONTROLLER, LABEL_MODEL_ID
from mlplatform.runners.docker_plan import is_candidate_name
from tests.support.docker_env import DockerEnv, wait_until
from tests.support.images import TestImages

CLI = Path(sys.executable).parent / "mlplatform"


@dataclass
class LocalCli:
    """Manifests in ``folder`` and the ``mlplatform local`` processes started on them."""

    env: DockerEnv
    folder: Path
    images: TestImages
    extra_env: dict[str, str] = field(default_factory=dict)
    namespace: str = "tests"
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    # --- manifests ----------------------------------------------------------------------

    def manifest(self, name: str, image: str | None = None, **spec: Any) -> dict[str, Any]:
        """Model ``name`` (id from ``env.model_id``); ``spec`` keys merge into the spec."""
        container = {"image": image or self.images.http, "ports": [8080]}
        container.update(spec.pop("container", {}))
        return {
            "apiVersion": "mlplatform.dev/v1alpha1",
            "kind": "MLModel",
            "metadata": {"name": name, "namespace": self.namespace},
            "spec": {"id": self.env.model_id(name), "container": container, **spec},
        }

    def write(self, name: str, image: str | None = None, **spec: Any) -> Path:
        """Write ``<name>.yaml`` atomically (a watcher never reads half a file)."""
        path = self.folder / f"{name}.yaml"
        temporary = path.with_suffix(".tmp")
        temporary.write_text(yaml.safe_dump(self.manifest(name, image, **spec)))
        temporary.replace(path)
        return path

    def remove(self, name: str) -> None:
        (self.folder / f"{name}.yaml").unlink(missing_ok=True)

    def ids(self, *names: str) -> set[str]:
        return {self.env.model_id(name) for name in names}

    # --- the process ------------------------------------------------------------------------

    def environ(self) -> dict[str, str]:
        return {
            **os.environ,
            **self.env.confined_environ(),
            "RUNNERS_DOCKER_TIMEOUT": "30",
            **self.extra_env,
        }

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """``mlplatform local FOLDER ARGS`` to completion."""
        return subprocess.run(
            [str(CLI), "local", str(self.folder), *args],
            env=self.environ(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def start(self, *args: str, resync: float = 3) -> subprocess.Popen[bytes]:
        """``mlplatform local FOLDER --resync N ARGS`` in the background (watch mode)."""
        log = (self.folder.parent / f"local-{len(self.processes)}.log").open("wb")
        process = subprocess.Popen(
            [str(CLI), "local", str(self.folder), "--resync", str(resync), *args],
            env=self.environ(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.processes.append(process)
        return process

    def log(self, index: int = -1) -> str:
        number = index if index >= 0 else len(self.processes) + index
        path = self.folder.parent / f"local-{number}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait(10)

    # --- what the engine holds ----------------------------------------------------------------

    def by_model(self, *, running: bool = False, candidates: bool = False) -> dict[str, list[str]]:
        """Model id → the ids of its serving containers (more than one is a bug).

        A new revision being brought up behind the serving container (a temporary name)
        is left out, unless ``candidates``: then only those are listed.
        """
        found: dict[str, list[str]] = {}
        # The low-level list: one call, no per-container inspect that a removal could race.
        for container in self.env.client.api.containers(
            all=not running, filters={"label": f"{LABEL_CONTROLLER}={self.env.controller}"}
        ):
            name = str(container["Names"][0]).lstrip("/")
            if is_candidate_name(name) != candidates:
                continue
            found.setdefault(container["Labels"][LABEL_MODEL_ID], []).append(container["Id"])
        return found

    def containers(self, *, running: bool = True) -> dict[str, str]:
        """Model id → its one serving container id (fails when a model has two)."""
        found = self.by_model(running=running)
        for model_id, ids in found.items():
            assert len(ids) == 1, f"two containers for {model_id}: {ids}"
        return {model_id: ids[0] for model_id, ids in found.items()}

    def managed(self, *, running: bool = False) -> list[Container]:
        """Every container of this controller, inspected (for ``attrs`` and ``exec_run``)."""
        return list(
            self.env.client.containers.list(
                all=not running,
                ignore_removed=True,  # one may go between the list and its inspect
                filters={"label": f"{LABEL_CONTROLLER}={self.env.controller}"},
            )
        )

    def wait_for(
        self, ok: Callable[[dict[str, str]], bool], *, running: bool = True, timeout: float = 15
    ) -> dict[str, str]:
        """The containers, once ``ok(containers)`` holds (TimeoutError otherwise)."""

        def check() -> dict[str, str] | None:
            found = self.containers(running=running)
            return found if ok(found) else None

        return wait_until(check, timeout=timeout)

    def converged(self, names: list[str]) -> bool:
        """Exactly one running container per named model and none for any other id."""
        found = self.by_model(running=False)
        running = self.by_model(running=True)
        wanted = self.ids(*names)
        return (
            set(found) == wanted
            and all(len(ids) == 1 for ids in found.values())
            and set(running) == wanted
            and not self.by_model(candidates=True)
        )

    @staticmethod
    def status(path: Path) -> dict[str, dict[str, Any]]:
        """The status file's items by model name."""
        doc = json.loads(path.read_text())
        return {item["metadata"]["name"]: item for item in doc["items"]}
