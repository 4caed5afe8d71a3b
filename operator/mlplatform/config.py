"""Operator settings (DESIGN.md §5): read once from the environment, then passed in.

The names are the original service's (``RUNNERS_DOCKER_ENABLED``, ``DATA_DIR``, ...). A
``.env`` file is read only when ``ENVIRONMENT=development`` (S10). Relative directories are
resolved against the working directory at load time, as the original service did.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from mlplatform.errors import ConfigurationError
from mlplatform.models import rules


class Settings(BaseSettings):
    """Everything the runners and front ends may be configured with; immutable once read."""

    model_config = SettingsConfigDict(
        case_sensitive=False, frozen=True, extra="ignore", validate_by_name=True
    )

    environment: str = Field(default="production", alias="ENVIRONMENT")
    runners_docker_enabled: bool = Field(default=False, alias="RUNNERS_DOCKER_ENABLED")
    # S8: first host port for the debug model's ports; unset means no debug publishing.
    runners_docker_host_port_debug: int | None = Field(
        default=None, alias="RUNNERS_DOCKER_HOST_PORT_DEBUG", ge=1, le=65535
    )
    runners_docker_debug_host_ip: str = Field(
        default="127.0.0.1", alias="RUNNERS_DOCKER_DEBUG_HOST_IP"
    )
    runners_docker_network: str = Field(default="services-ml", alias="RUNNERS_DOCKER_NETWORK")
    # docker-py's own variable, read once with the rest; None: docker-py's default socket.
    docker_host: str | None = Field(default=None, alias="DOCKER_HOST")
    # Seconds docker-py waits for the engine before the runner reports it unavailable.
    runners_docker_timeout: float = Field(default=10.0, alias="RUNNERS_DOCKER_TIMEOUT", gt=0)
    # The Kubernetes runner (runner: kubernetes). None: on when the operator runs in a cluster
    # (KUBERNETES_SERVICE_HOST is set), off otherwise; models then report RunnerDisabled.
    runners_kubernetes_enabled: bool | None = Field(
        default=None, alias="RUNNERS_KUBERNETES_ENABLED"
    )
    # The claim <name>-storage every model with storage volumes gets: its size and class
    # (None: the cluster's default StorageClass).
    runners_kubernetes_storage_size: str = Field(
        default="1Gi",
        alias="RUNNERS_KUBERNETES_STORAGE_SIZE",
        pattern=rules.MEMORY_PATTERN,
    )
    runners_kubernetes_storage_class: str | None = Field(
        default=None,
        alias="RUNNERS_KUBERNETES_STORAGE_CLASS",
        pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$",
        max_length=253,
    )
    # Existing claims mounted read-only at /data and /models (None: a model asking for that
    # path is refused with a reason, no pod is created).
    runners_kubernetes_data_claim: str | None = Field(
        default=None,
        alias="RUNNERS_KUBERNETES_DATA_CLAIM",
        pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$",
        max_length=253,
    )
    runners_kubernetes_models_claim: str | None = Field(
        default=None,
        alias="RUNNERS_KUBERNETES_MODELS_CLAIM",
        pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$",
        max_length=253,
    )
    # Whether deleting an MLModel deletes its storage claim too (default: kept, like the
    # Docker runner's storage folder).
    runners_kubernetes_delete_claim: bool = Field(
        default=False, alias="RUNNERS_KUBERNETES_DELETE_CLAIM"
    )
    # Seconds a Kubernetes API call may take before the runner reports the API unavailable.
    runners_kubernetes_timeout: float = Field(
        default=10.0, alias="RUNNERS_KUBERNETES_TIMEOUT", gt=0
    )
    data_dir: Path = Field(default=Path(".data"), alias="DATA_DIR")
    mlmodels_dir: Path = Field(default=Path(".mlmodels"), alias="MLMODELS_DIR")
    storage_dir: Path = Field(default=Path(".storage"), alias="STORAGE_DIR")
    # Which controller owns the containers this process manages (label mlplatform.dev/controller):
    # an operator and a local mode on one engine never garbage-collect each other's models.
    controller: str = Field(
        default="operator",
        alias="MLPLATFORM_CONTROLLER",
        pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
        max_length=63,
    )
    log_format: Literal["text", "json"] = Field(default="text", alias="MLPLATFORM_LOG_FORMAT")

    @field_validator(
        "runners_kubernetes_storage_class",
        "runners_kubernetes_data_claim",
        "runners_kubernetes_models_claim",
        mode="before",
    )
    @classmethod
    def _unset_when_empty(cls, value: object) -> object:
        return None if value == "" else value

    def kubernetes_runner_enabled(self, environ: Mapping[str, str] | None = None) -> bool:
        """Whether the Kubernetes runner may act: the setting, else "in a cluster"."""
        if self.runners_kubernetes_enabled is not None:
            return self.runners_kubernetes_enabled
        env = os.environ if environ is None else environ
        return bool(env.get("KUBERNETES_SERVICE_HOST"))

    @field_validator("data_dir", "mlmodels_dir", "storage_dir")
    @classmethod
    def _absolute(cls, path: Path) -> Path:
        return path.expanduser().resolve()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # ``load`` passes the environment in explicitly, so tests can give their own.
        return init_settings, dotenv_settings

    @classmethod
    def load(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Read the settings from ``environ`` (default: the process environment) once."""
        env = dict(os.environ if environ is None else environ)
        env_file = ".env" if env.get("ENVIRONMENT", "production") == "development" else None
        values: dict[str, object] = {k: v for k, v in env.items() if k.upper() in _NAMES}
        values.update(overrides)
        try:
            return cls(_env_file=env_file, **values)  # type: ignore[arg-type]
        except ValidationError as error:
            details = "; ".join(
                f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors()
            )
            raise ConfigurationError(f"invalid settings: {details}") from error


_NAMES = {str(field.alias).upper() for field in Settings.model_fields.values() if field.alias}
