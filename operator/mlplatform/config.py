"""Operator settings: read once from the environment, then passed in.

The names are the original service's (``RUNNERS_DOCKER_ENABLED``, ``DATA_DIR``, ...). A
``.env`` file is read only when ``ENVIRONMENT=development``. Each field's default and
description live here once; ``mlplatform COMMAND --help`` prints them
(``environment_help``). Relative directories are resolved against the working directory at
load time, as the original service did.

These are the settings every command shares (runners, folders, controller label, log
format). A command's own options (``--metrics-port``, ``--workers``, ...) are declared with
their flags in ``kube/options.py`` and ``local/options.py``; the two meet in one frozen
per-process object (``OperatorConfig``, ``LocalConfig``). See docs/design.md, "Settings".
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from mlplatform.errors import ConfigurationError
from mlplatform.models import rules


class InvalidSettings(ConfigurationError):
    """Settings that cannot work: one ``VARIABLE: rule`` per problem, all in one line."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(f"invalid settings: {'; '.join(problems)}")
        self.problems = problems


class Settings(BaseSettings):
    """Everything the runners and front ends may be configured with; immutable once read."""

    model_config = SettingsConfigDict(
        case_sensitive=False, frozen=True, extra="ignore", validate_by_name=True
    )

    environment: str = Field(
        default="production",
        alias="ENVIRONMENT",
        description="development reads a .env file from the working folder",
    )
    runners_docker_enabled: bool = Field(
        default=False,
        alias="RUNNERS_DOCKER_ENABLED",
        description="true: models with runner docker are started on the Docker engine",
    )
    # Debug ports: first host port for the debug model's ports; unset means no debug publishing.
    runners_docker_host_port_debug: int | None = Field(
        default=None,
        alias="RUNNERS_DOCKER_HOST_PORT_DEBUG",
        ge=1,
        le=65535,
        description="first host port for the debug model's ports; unset: not published",
    )
    runners_docker_debug_host_ip: str = Field(
        default="127.0.0.1",
        alias="RUNNERS_DOCKER_DEBUG_HOST_IP",
        description="host address the debug ports are published on",
    )
    runners_docker_network: str = Field(
        default="services-ml",
        alias="RUNNERS_DOCKER_NETWORK",
        description="Docker network the model containers join",
    )
    # docker-py's own variable, read once with the rest; None: docker-py's default socket.
    docker_host: str | None = Field(
        default=None,
        alias="DOCKER_HOST",
        description="Docker engine address; unset: the local socket",
    )
    # Seconds docker-py waits for the engine before the runner reports it unavailable.
    runners_docker_timeout: float = Field(
        default=10.0,
        alias="RUNNERS_DOCKER_TIMEOUT",
        gt=0,
        description="seconds to wait for the Docker engine before it counts as unavailable",
    )
    # What a model gets when its spec says nothing (no model runs unlimited: a fork bomb or
    # a memory hog would take the host), and the most a spec may ask for (None: no cap).
    runners_docker_default_memory: str = Field(
        default="2Gi",
        alias="RUNNERS_DOCKER_DEFAULT_MEMORY",
        pattern=rules.MEMORY_PATTERN,
        description="memory limit of a model whose spec sets none",
    )
    runners_docker_default_cpu: str = Field(
        default="2",
        alias="RUNNERS_DOCKER_DEFAULT_CPU",
        pattern=rules.CPU_PATTERN,
        description="CPU limit of a model whose spec sets none",
    )
    runners_docker_max_memory: str | None = Field(
        default=None,
        alias="RUNNERS_DOCKER_MAX_MEMORY",
        pattern=rules.MEMORY_PATTERN,
        description="the most memory a model may ask for; unset: no cap",
    )
    runners_docker_max_cpu: str | None = Field(
        default=None,
        alias="RUNNERS_DOCKER_MAX_CPU",
        pattern=rules.CPU_PATTERN,
        description="the most CPU a model may ask for; unset: no cap",
    )
    runners_docker_pids_limit: int = Field(
        default=1024,
        alias="RUNNERS_DOCKER_PIDS_LIMIT",
        ge=16,
        description="most processes (and threads) in one model container",
    )
    runners_docker_log_max_size: str = Field(
        default="10m",
        alias="RUNNERS_DOCKER_LOG_MAX_SIZE",
        pattern=r"^[1-9][0-9]*[kmg]$",
        description="size at which a model's log file is rotated (json-file driver)",
    )
    runners_docker_log_max_files: int = Field(
        default=3,
        alias="RUNNERS_DOCKER_LOG_MAX_FILES",
        ge=1,
        description="rotated log files kept per model",
    )
    # The Kubernetes runner (runner: kubernetes). None: on when the operator runs in a cluster
    # (KUBERNETES_SERVICE_HOST is set), off otherwise; models then report RunnerDisabled.
    runners_kubernetes_enabled: bool | None = Field(
        default=None,
        alias="RUNNERS_KUBERNETES_ENABLED",
        description="true: runner kubernetes models run as Deployments; unset: on in a cluster",
    )
    # The claim <name>-storage every model with storage volumes gets: its size and class
    # (None: the cluster's default StorageClass).
    runners_kubernetes_storage_size: str = Field(
        default="1Gi",
        alias="RUNNERS_KUBERNETES_STORAGE_SIZE",
        description="size of each model's storage claim <name>-storage",
        pattern=rules.MEMORY_PATTERN,
    )
    runners_kubernetes_storage_class: str | None = Field(
        default=None,
        alias="RUNNERS_KUBERNETES_STORAGE_CLASS",
        description="StorageClass of the storage claims; unset: the cluster's default",
        pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$",
        max_length=253,
    )
    # Existing claims mounted read-only at /data and /models (None: a model asking for that
    # path is refused with a reason, no pod is created).
    runners_kubernetes_data_claim: str | None = Field(
        default=None,
        alias="RUNNERS_KUBERNETES_DATA_CLAIM",
        description="existing claim mounted read-only at /data; unset: /data is refused",
        pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$",
        max_length=253,
    )
    runners_kubernetes_models_claim: str | None = Field(
        default=None,
        alias="RUNNERS_KUBERNETES_MODELS_CLAIM",
        description="existing claim mounted read-only at /models; unset: /models is refused",
        pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$",
        max_length=253,
    )
    # Whether deleting an MLModel deletes its storage claim too (default: kept, like the
    # Docker runner's storage folder).
    runners_kubernetes_delete_claim: bool = Field(
        default=False,
        alias="RUNNERS_KUBERNETES_DELETE_CLAIM",
        description="true: deleting an MLModel deletes its storage claim too",
    )
    # Seconds a Kubernetes API call may take before the runner reports the API unavailable.
    runners_kubernetes_timeout: float = Field(
        default=10.0,
        alias="RUNNERS_KUBERNETES_TIMEOUT",
        gt=0,
        description="seconds a Kubernetes API call may take before it counts as unavailable",
    )
    data_dir: Path = Field(
        default=Path(".data"),
        alias="DATA_DIR",
        description="host folder mounted read-only at /data",
    )
    mlmodels_dir: Path = Field(
        default=Path(".mlmodels"),
        alias="MLMODELS_DIR",
        description="host folder mounted read-only at /models",
    )
    storage_dir: Path = Field(
        default=Path(".storage"),
        alias="STORAGE_DIR",
        description="host folder of the models' writable volumes",
    )
    # Which controller owns the containers this process manages (label mlplatform.dev/controller):
    # an operator and a local mode on one engine never garbage-collect each other's models.
    controller: str = Field(
        default="operator",
        alias="MLPLATFORM_CONTROLLER",
        pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
        max_length=63,
        description="controller label of the containers this process owns and may remove",
    )
    log_format: Literal["text", "json"] = Field(
        default="text",
        alias="MLPLATFORM_LOG_FORMAT",
        description="text or json (one JSON object per log line on stderr)",
    )

    @field_validator("docker_host")
    @classmethod
    def _docker_address(cls, address: str | None) -> str | None:
        if not address:
            return None
        parts = urlsplit(address)
        if parts.scheme not in _DOCKER_SCHEMES:
            raise ValueError(
                f"{address!r} is not a Docker address (unix:///path, tcp://host:port, ssh://host)"
            )
        if parts.scheme in {"tcp", "http", "https", "ssh"}:
            try:
                port = parts.port
            except ValueError:
                raise ValueError(f"{address!r} has a port outside 1-65535") from None
            if not parts.hostname or port == 0:
                raise ValueError(f"{address!r} needs a host name and a port in 1-65535")
        return address

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
            raise InvalidSettings(
                [
                    f"{_alias(e['loc'])}: {e['msg'].removeprefix('Value error, ')}"
                    for e in error.errors()
                ]
            ) from error


_NAMES = {str(field.alias).upper() for field in Settings.model_fields.values() if field.alias}
_DOCKER_SCHEMES = frozenset({"unix", "tcp", "http", "https", "ssh", "npipe"})


def _alias(loc: tuple[int | str, ...]) -> str:
    """A settings field as the user writes it: its environment variable."""
    name = str(loc[0]) if loc else ""
    field_info = Settings.model_fields.get(name)
    return str(field_info.alias) if field_info is not None and field_info.alias else name


def read_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables a process reads: ``environ`` (default: the process environment), over
    the ``.env`` file of the working folder when ``ENVIRONMENT=development``."""
    env = dict(os.environ if environ is None else environ)
    if env.get("ENVIRONMENT", "production") != "development" or not Path(".env").is_file():
        return env
    from dotenv import dotenv_values

    from_file = {k: v for k, v in dotenv_values(".env").items() if v is not None}
    return {**from_file, **env}


def environment_help(
    *, omit: tuple[str, ...] = (), defaults: Mapping[str, str] | None = None
) -> str:
    """The settings' environment variables with their defaults, for ``--help``.

    ``omit``: prefixes of variables the command does not read; ``defaults``: the command's
    own default where it differs (local mode's controller label).
    """
    lines = ["environment variables (and each option's [env ...]; a flag wins over its variable):"]
    for field_info in Settings.model_fields.values():
        alias = str(field_info.alias)
        if alias.startswith(omit):
            continue
        default = field_info.default
        shown = (
            (defaults or {}).get(alias)
            or ("unset" if default is None else None)
            or (str(default).lower() if isinstance(default, bool) else str(default))
        )
        lines.append(f"  {alias:<32} {field_info.description} (default: {shown})")
    return "\n".join(lines)
