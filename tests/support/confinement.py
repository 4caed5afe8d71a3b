"""The folders and environment that confine one mlplatform run to one session.

The test harness (``DockerEnv``) and the bench (``BenchEnv``) each name their own network and
controller; both keep the three host roots of the settings (``DATA_DIR``, ``MLMODELS_DIR``,
``STORAGE_DIR``) under the session's folder, and start mlplatform processes with the same
confining variables.
"""

from __future__ import annotations

import abc
from pathlib import Path


class Confined(abc.ABC):
    """A session's root folder, network and controller, and what follows from them."""

    root: Path

    @property
    @abc.abstractmethod
    def network(self) -> str:
        """The Docker network the session's models join."""

    @property
    @abc.abstractmethod
    def controller(self) -> str:
        """The controller name the session's containers are labelled with."""

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def mlmodels_dir(self) -> Path:
        return self.root / "models"

    @property
    def storage_dir(self) -> Path:
        return self.root / "storage"

    def make_folders(self) -> None:
        for folder in (self.data_dir, self.mlmodels_dir, self.storage_dir):
            folder.mkdir(parents=True, exist_ok=True)

    def confined_environ(self) -> dict[str, str]:
        """The variables that keep an mlplatform process inside this session."""
        return {
            "RUNNERS_DOCKER_ENABLED": "true",
            "RUNNERS_DOCKER_NETWORK": self.network,
            "MLPLATFORM_CONTROLLER": self.controller,
            "DATA_DIR": str(self.data_dir),
            "MLMODELS_DIR": str(self.mlmodels_dir),
            "STORAGE_DIR": str(self.storage_dir),
        }
