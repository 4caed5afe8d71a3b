"""``mlplatform local`` as a subprocess on a private corner of the engine, for fault tests.

``LocalRun`` writes manifests into a folder, starts or runs the installed ``mlplatform local``
with a private controller, network and folders (``DockerEnv``), and reads back what the
engine holds. Used by the security, fault and soak checks alike.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker.errors
import yaml
from docker.models.containers import Container

from mlplatform.runners.base import LABEL_CONTROLLER, LABEL_MODEL_ID
from tests.support.docker_env import DockerEnv
from tests.support.images import TestImages

CLI = Path(sys.executable).parent / "mlplatform"


@dataclass
class LocalRun:
    """Manifests in ``folder`` and the ``mlplatform local`` processes started on them."""

    env: DockerEnv
    folder: Path
    images: TestImages
    extra_env: dict[str, str] = field(default_factory=dict)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def manifest(self, name: str, image: str | None = None, **spec: Any) -> dict[str, Any]:
        container = {"image": image or self.images.http, "ports": [8080]}
        container.update(spec.pop("container", {}))
        return {
            "apiVersion": "mlplatform.dev/v1alpha1",
            "kind": "MLModel",
            "metadata": {"name": name, "namespace": "reliability"},
            "spec": {"id": self.env.model_id(name), "container": container, **spec},
        }

    def write(self, name: str, image: str | None = None, **spec: Any) -> Path:
        path = self.folder / f"{name}.yaml"
        temporary = path.with_suffix(".tmp")
        temporary.write_text(yaml.safe_dump(self.manifest(name, image, **spec)))
        temporary.replace(path)  # atomic: the watcher never reads half a file
        return path

    def remove(self, name: str) -> None:
        (self.folder / f"{name}.yaml").unlink(missing_ok=True)

    def environ(self) -> dict[str, str]:
        return {
            **os.environ,
            "RUNNERS_DOCKER_ENABLED": "true",
            "MLPLATFORM_CONTROLLER": self.env.controller,
            "RUNNERS_DOCKER_NETWORK": self.env.network,
            "DATA_DIR": str(self.env.data_dir),
            "MLMODELS_DIR": str(self.env.mlmodels_dir),
            "STORAGE_DIR": str(self.env.storage_dir),
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

    def start(self, *args: str) -> subprocess.Popen[bytes]:
        """``mlplatform local FOLDER --resync 3 ARGS`` in the background (watch mode)."""
        log = (self.folder.parent / f"local-{len(self.processes)}.log").open("wb")
        process = subprocess.Popen(
            [str(CLI), "local", str(self.folder), "--resync", "3", *args],
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

    def managed(self, *, running: bool = False) -> list[Container]:
        """Every container of this controller (models), running or not."""
        for _ in range(20):
            try:
                return list(
                    self.env.client.containers.list(
                        all=not running,
                        filters={"label": f"{LABEL_CONTROLLER}={self.env.controller}"},
                    )
                )
            except docker.errors.NotFound:
                continue  # one went between the list and its inspect: list again
        raise TimeoutError("the containers kept changing under the listing")

    def by_model(self, *, running: bool = False) -> dict[str, list[str]]:
        """Model id → the ids of its containers (more than one is a bug)."""
        found: dict[str, list[str]] = {}
        for container in self.managed(running=running):
            found.setdefault(container.labels[LABEL_MODEL_ID], []).append(str(container.id))
        return found

    def converged(self, names: list[str]) -> bool:
        """Exactly one running container per named model and none for any other id."""
        found = self.by_model(running=False)
        running = self.by_model(running=True)
        wanted = {self.env.model_id(name) for name in names}
        return (
            set(found) == wanted
            and all(len(ids) == 1 for ids in found.values())
            and set(running) == wanted
        )

    def status(self, path: Path) -> dict[str, dict[str, Any]]:
        doc = json.loads(path.read_text())
        return {item["name"]: item for item in doc["items"]}

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait(10)
