"""The MLModel spec (`mlplatform.dev/v1alpha1`): the single source of truth for its rules.

Every rule lives here once, as a Python check with its message; where the API server can
check the same rule, its CEL twin sits beside it (``cel(...)``) and the CRD generator copies
it into ``crds/``. Types are strict (``"true"`` is not a boolean, ``"8080"`` is not a port),
unknown fields are refused, and defaults are the field defaults below — nowhere else.
"""

from __future__ import annotations

import json
import posixpath
import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from mlplatform.models import quantities, rules

API_GROUP = "mlplatform.dev"
API_VERSION = "v1alpha1"
KIND = "MLModel"
PLURAL = "mlmodels"
SINGULAR = "mlmodel"
# "mlm" is Seldon Core v2's Model; KServe has isvc/tm/ig. "mlpm": mlplatform model.
SHORT_NAMES = ("mlpm",)

RunnerType = Literal["docker", "kubernetes"]
# The value the first CRD reserved for "a future pod backend": refused with a pointer to the
# runner that became of it.
RETIRED_RUNNERS = {"pod": "kubernetes"}
PullPolicy = Literal["Always", "IfNotPresent", "Never"]


def cel(rule: str, message: str, *, field_path: str | None = None) -> dict[str, JsonValue]:
    """A CEL rule for the CRD's ``x-kubernetes-validations``, kept beside its Python twin.

    ``field_path`` (``.debug``) is the field the API server names in its message when the rule
    sits on an object but is about one of its fields; without it the server names the object
    (``spec``), or ``<nil>`` at the root.
    """
    validation: dict[str, JsonValue] = {"rule": rule, "message": message}
    if field_path is not None:
        validation["fieldPath"] = field_path
    return validation


def cel_string(text: str) -> str:
    """``text`` as a double-quoted CEL string literal (CEL has no ``\\.`` escape: double it)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _cel_schema(*validations: dict[str, JsonValue], **schema: JsonValue) -> dict[str, JsonValue]:
    extra: dict[str, JsonValue] = dict(schema)
    if validations:
        extra["x-kubernetes-validations"] = list(validations)
    return extra


def shown(value: object, limit: int = 80) -> str:
    """A user's value as a message quotes it: JSON-escaped (no raw newlines), cut at ``limit``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value) if value.bit_length() <= 256 else "an integer of more than 77 digits"
    if isinstance(value, float):
        return repr(value)
    text = value if isinstance(value, str) else repr(value)
    if len(text) > limit:
        return json.dumps(text[:limit], ensure_ascii=False)[:-1] + '..."'
    return json.dumps(text, ensure_ascii=False)


def _invalid(rule: str, message: str, **context: Any) -> PydanticCustomError:
    return PydanticCustomError(rule, message, context or None)


class _Strict(BaseModel):
    """Base of every spec object: strict types, unknown fields refused, camelCase on the wire."""

    model_config = ConfigDict(
        strict=True,
        extra="forbid",
        frozen=True,
        validate_by_alias=True,
        validate_by_name=False,
        serialize_by_alias=True,
    )


# --- spec.id (safe ids) -------------------------------------------------------------


def _check_id(value: str) -> str:
    if len(value) > rules.ID_MAX_LENGTH:
        raise _invalid("id_length", f"is {len(value)} characters long; {rules.ID_RULE}")
    if value.count(":") != 1:
        raise _invalid(
            "id_format",
            f'{shown(value)} must be "name:version" with exactly one ":"; {rules.ID_RULE_SHORT}',
        )
    if value != value.lower():
        raise _invalid(
            "id_format",
            f"{shown(value)} must be lower case (upper case is not allowed); {rules.ID_RULE_SHORT}",
        )
    if not re.fullmatch(rules.ID_PATTERN.strip("^$"), value):
        raise _invalid("id_format", f"{shown(value)} {rules.ID_RULE}")
    return value


ModelId = Annotated[
    str,
    AfterValidator(_check_id),
    Field(
        json_schema_extra=_cel_schema(
            cel(f"self.matches({cel_string(rules.ID_PATTERN)})", f"spec.id {rules.ID_RULE}"),
            maxLength=rules.ID_MAX_LENGTH,
            minLength=3,
        )
    ),
]


def split_id(model_id: str) -> tuple[str, str]:
    """``"iris:1.0"`` → ``("iris", "1.0")`` for a valid id."""
    name, _, version = model_id.partition(":")
    return name, version


def container_name(model_id: str) -> str:
    """The Docker container name of a model (contract): ``iris:1.0`` → ``iris-1.0``."""
    name, version = split_id(model_id)
    return f"{name}-{version}"


def id_scope(model_id: str, runner: str, namespace: str | None) -> str:
    """Where a ``spec.id`` must be unique, as a key: two models with one key collide.

    ``runner: docker``: the whole cluster (one engine is one space of container names, and
    the id names the container and the storage folder); ids that map to one container name
    (``a-b:1``, ``a:b-1``) collide too. ``runner: kubernetes``: the namespace (the model's
    objects are named after the MLModel, in its namespace; nothing is shared across
    namespaces)."""
    if runner == "kubernetes":
        return f"kubernetes/{namespace or 'default'}/{container_name(model_id)}"
    return f"docker/{container_name(model_id)}"


def id_scope_words(runner: str) -> str:
    """How the uniqueness rule of ``id_scope`` reads in a message."""
    if runner == "kubernetes":
        return "ids of runner kubernetes models must be unique within their namespace"
    return (
        "ids of runner docker models must be unique across the cluster "
        "(they name the container and the storage folder)"
    )


# --- ports ----------------------------------------------------------------------

Port = Annotated[int, Field(ge=1, le=65535)]


def _check_unique_ports(ports: list[int]) -> list[int]:
    seen: set[int] = set()
    for port in ports:
        if port in seen:
            raise _invalid("port_duplicate", f"port {port} is listed twice")
        seen.add(port)
    return ports


# --- volumes (unique base names, read-only data folders) ------------------------------


def _check_volume(path: str) -> str:
    if ":" in path:
        raise _invalid(
            "volume_bind_syntax",
            f'{shown(path)} contains ":" (Docker bind syntax is not allowed); {rules.VOLUME_RULE}',
        )
    if len(path) > rules.VOLUME_MAX_LENGTH:
        raise _invalid(
            "volume_length",
            f"is {len(path)} characters long, more than {rules.VOLUME_MAX_LENGTH}",
        )
    if ".." in path.split("/"):
        raise _invalid("volume_traversal", f'{shown(path)} contains ".."; {rules.VOLUME_RULE}')
    if path == "/" or not path.startswith("/"):
        what = "is the root" if path == "/" else "is not absolute"
        raise _invalid("volume_path", f"{shown(path)} {what}; {rules.VOLUME_RULE}")
    if not re.fullmatch(rules.VOLUME_PATTERN.strip("^$"), path):
        raise _invalid("volume_path", f"{shown(path)} {rules.VOLUME_RULE}")
    return path


VolumePath = Annotated[
    str,
    AfterValidator(_check_volume),
    Field(
        json_schema_extra=_cel_schema(
            cel(
                f"self.matches({cel_string(rules.VOLUME_PATTERN)})",
                f"each volume {rules.VOLUME_RULE}",
            ),
            maxLength=rules.VOLUME_MAX_LENGTH,
        )
    ),
]


def volume_basename(path: str) -> str:
    """The base name of a container volume path: ``/storage/logs`` → ``logs``."""
    return posixpath.basename(path.rstrip("/"))


def _check_volume_basenames(volumes: list[str]) -> list[str]:
    seen: dict[str, str] = {}
    for path in volumes:
        if path in seen.values():
            raise _invalid("volume_duplicate", f"path {shown(path)} is listed twice")
        base = volume_basename(path)
        if base in seen:
            raise _invalid(
                "volume_basename",
                f"base name {shown(base)} is used twice ({shown(seen[base])}, {shown(path)}); "
                "volume base names must be unique",
            )
        seen[base] = path
    return volumes


# --- env ------------------------------------------------------------------------------


class EnvVar(_Strict):
    """One environment variable of the model container."""

    name: str = Field(
        min_length=1,
        max_length=256,
        description="Variable name: a C identifier (letters, digits, _; not starting with a "
        "digit), unique in the list.",
        json_schema_extra=_cel_schema(
            cel(
                f"self.matches({cel_string(rules.ENV_NAME_PATTERN)})",
                "env name must be a C identifier (letters, digits, _; not starting with a digit)",
            )
        ),
    )
    value: str = Field(
        default="",
        max_length=rules.ENV_VALUE_MAX_LENGTH,
        description="Variable value (plain text; empty by default).",
    )

    @field_validator("name")
    @classmethod
    def _c_identifier(cls, name: str) -> str:
        if not re.fullmatch(rules.ENV_NAME_PATTERN.strip("^$"), name):
            raise _invalid(
                "env_name",
                f"{shown(name)} is not a C identifier "
                "(letters, digits, _; not starting with a digit)",
            )
        return name


def _check_unique_env(env: list[EnvVar]) -> list[EnvVar]:
    seen: set[str] = set()
    for var in env:
        if var.name in seen:
            raise _invalid("env_duplicate", f'env name "{var.name}" is listed twice')
        seen.add(var.name)
    return env


# --- resources ------------------------------------------------------------------------


def _check_cpu(value: str | int) -> str | int:
    nano = quantities.parse_cpu(value)
    if nano is None:
        raise _invalid("cpu", f'{shown(value)} is not a CPU quantity (e.g. "1", "0.5", "250m")')
    if nano <= 0:
        raise _invalid("cpu", f"{shown(value)} is zero; a container needs some CPU")
    if nano > quantities.MAX_CPUS * 10**9:
        raise _invalid("cpu", f"{shown(value)} is more than {quantities.MAX_CPUS} CPUs")
    return value


def _check_memory(value: str | int) -> str | int:
    size = quantities.parse_memory(value)
    if size is None:
        raise _invalid("memory", f'{shown(value)} is not a memory quantity (e.g. "512Mi", "1Gi")')
    if size > quantities.MAX_BYTES:
        raise _invalid("memory", f"{shown(value)} is more than any machine has (1Pi)")
    if size < rules.MEMORY_MIN_BYTES:
        raise _invalid("memory", f"{shown(value)} is below Docker's minimum of 6Mi")
    return value


def _memory_bytes_cel() -> str:
    """CEL for the number of bytes of a memory string that matches its pattern."""
    expression = "double(self)"
    # Two-letter suffixes first: "Mi" also ends with a letter that is not "M".
    suffixes = sorted(quantities.MEMORY_SUFFIXES.items(), key=lambda item: len(item[0]))
    for suffix, factor in suffixes:
        if not suffix:
            continue
        number = f"double(self.substring(0, self.size() - {len(suffix)}))"
        expression = f"self.endsWith('{suffix}') ? {number} * {float(factor)!r} : ({expression})"
    return expression


# The size bounds of a quantity, for strings of the right form (the form rule reports the rest).
_CPU_BOUND_CEL = (
    f"type(self) == int ? self <= {quantities.MAX_CPUS} : "
    f"!self.matches({cel_string(rules.CPU_PATTERN)}) || "
    f"(self.endsWith('m') ? int(self.substring(0, self.size() - 1)) <= "
    f"{quantities.MAX_CPUS * 1000} : double(self) <= {float(quantities.MAX_CPUS)!r})"
)
_MEMORY_BOUND_CEL = (
    f"type(self) == int ? self >= {rules.MEMORY_MIN_BYTES} && self <= {quantities.MAX_BYTES} : "
    f"!self.matches({cel_string(rules.MEMORY_PATTERN)}) || "
    f"(({_memory_bytes_cel()}) >= {float(rules.MEMORY_MIN_BYTES)!r} && "
    f"({_memory_bytes_cel()}) <= {float(quantities.MAX_BYTES)!r})"
)


class Resources(_Strict):
    """Limits applied to the container (cpu → CPU quota, memory → memory limit)."""

    cpu: (
        Annotated[
            str | int,
            AfterValidator(_check_cpu),
            Field(
                json_schema_extra={
                    "x-kubernetes-int-or-string": True,
                    "x-kubernetes-validations": [
                        cel(
                            "type(self) == int ? self > 0 : "
                            f"self.matches({cel_string(rules.CPU_PATTERN)}) "
                            f"&& !self.matches({cel_string(rules.CPU_ZERO_PATTERN)})",
                            'cpu must be a CPU quantity such as "1", "0.5" or "250m"',
                        ),
                        cel(_CPU_BOUND_CEL, f"cpu must be at most {quantities.MAX_CPUS} CPUs"),
                    ],
                }
            ),
        ]
        | None
    ) = Field(
        default=None,
        description='CPU limit as a Kubernetes quantity ("1", "0.5", "250m") or an integer '
        f"number of CPUs; more than 0, at most {quantities.MAX_CPUS}.",
    )
    memory: (
        Annotated[
            str | int,
            AfterValidator(_check_memory),
            Field(
                json_schema_extra={
                    "x-kubernetes-int-or-string": True,
                    "x-kubernetes-validations": [
                        cel(
                            "type(self) == int || "
                            f"self.matches({cel_string(rules.MEMORY_PATTERN)})",
                            'memory must be a memory quantity such as "512Mi" (at least 6Mi)',
                        ),
                        cel(
                            _MEMORY_BOUND_CEL,
                            "memory must be at least 6Mi (Docker's minimum) and at most 1Pi",
                        ),
                    ],
                }
            ),
        ]
        | None
    ) = Field(
        default=None,
        description='Memory limit as a Kubernetes quantity ("512Mi", "1Gi") or a number of '
        "bytes; at least 6Mi (Docker's minimum).",
    )


# --- readiness probe ------------------------------------------------------------------


class HTTPGetAction(_Strict):
    """An HTTP GET the operator sends to the container; 2xx/3xx means ready."""

    path: str = Field(
        default="/",
        max_length=1024,
        description="URL path to GET, starting with /.",
        json_schema_extra=_cel_schema(
            cel(
                f"self.matches({cel_string(rules.HTTP_PATH_PATTERN)})",
                "httpGet.path must start with /",
            )
        ),
    )
    port: Port = Field(description="Container port to probe; one of spec.container.ports.")

    @field_validator("path")
    @classmethod
    def _absolute_path(cls, path: str) -> str:
        if not re.fullmatch(rules.HTTP_PATH_PATTERN.strip("^$"), path):
            raise _invalid("probe_path", f'{shown(path)} must start with "/" and be a URL path')
        return path


class ReadinessProbe(_Strict):
    """Gates the Ready condition: Ready is True only while the latest probe passed.

    There is deliberately no ``failureThreshold``: one failed probe makes Ready False, so
    Ready is never True while the server is failing its probe.
    """

    http_get: HTTPGetAction = Field(
        alias="httpGet", description="The HTTP GET that decides readiness (2xx/3xx: ready)."
    )
    initial_delay_seconds: int = Field(
        default=0,
        ge=0,
        le=3600,
        alias="initialDelaySeconds",
        description="Seconds after the container starts before the first probe.",
    )
    period_seconds: int = Field(
        default=5, ge=1, le=3600, alias="periodSeconds", description="Seconds between probes."
    )
    timeout_seconds: int = Field(
        default=1,
        ge=1,
        le=60,
        alias="timeoutSeconds",
        description="Seconds one probe may take before it counts as failed.",
    )


# --- container ------------------------------------------------------------------------

Arg = Annotated[str, Field(max_length=rules.ARG_MAX_LENGTH)]


def _check_image(image: str) -> str:
    if not re.fullmatch(rules.IMAGE_PATTERN.strip("^$"), image):
        raise _invalid(
            "image",
            f"{shown(image)} is not a valid image reference ([registry/]repository[:tag][@digest], "
            "repository in lower case)",
        )
    return image


_VOLUME_BASENAME_CEL = (
    "self.all(a, self.exists_one(b, "
    "b.substring(b.lastIndexOf('/') + 1) == a.substring(a.lastIndexOf('/') + 1)))"
)


class ContainerSpec(_Strict):
    """What to run: image, ports, env, volumes, command, resources, readiness."""

    model_config = ConfigDict(
        json_schema_extra=_cel_schema(
            cel(
                "!has(self.readinessProbe) || self.readinessProbe.httpGet.port in self.ports",
                "readinessProbe.httpGet.port must be one of spec.container.ports",
            )
        )
    )

    image: Annotated[
        str,
        AfterValidator(_check_image),
        Field(
            min_length=1,
            max_length=rules.IMAGE_MAX_LENGTH,
            description="Container image reference ([registry/]repository[:tag][@digest]).",
            json_schema_extra=_cel_schema(
                cel(
                    f"self.matches({cel_string(rules.IMAGE_PATTERN)})",
                    "image must be a valid image reference ([registry/]repository[:tag][@digest])",
                )
            ),
        ),
    ]
    image_pull_policy: PullPolicy = Field(
        default="IfNotPresent",
        alias="imagePullPolicy",
        description="Always pulls before each (re)create; IfNotPresent pulls when the image is "
        "missing; Never only uses a local image.",
    )
    ports: Annotated[
        list[Port],
        AfterValidator(_check_unique_ports),
        Field(
            min_length=1,
            max_length=rules.PORTS_MAX_ITEMS,
            description="TCP ports the server listens on (unique); the first is the endpoint.",
            json_schema_extra=_cel_schema(
                cel("self.all(p, self.exists_one(q, q == p))", "ports must not repeat"),
            ),
        ),
    ]
    env: Annotated[
        list[EnvVar],
        AfterValidator(_check_unique_env),
        Field(
            max_length=rules.ENV_MAX_ITEMS,
            description="Environment variables of the container (names unique).",
            json_schema_extra=_cel_schema(
                cel(
                    "self.all(e, self.exists_one(f, f.name == e.name))", "env names must not repeat"
                ),
            ),
        ),
    ] = []
    volumes: Annotated[
        list[VolumePath],
        AfterValidator(_check_volume_basenames),
        Field(
            max_length=rules.VOLUMES_MAX_ITEMS,
            description="Absolute container paths backed by the model's storage folders "
            "(base names unique; /data and /models are read-only data folders).",
            json_schema_extra=_cel_schema(
                cel(
                    _VOLUME_BASENAME_CEL,
                    "volume base names must be unique: "
                    '["/storage", "/logs"] is valid, ["/storage/logs", "/logs"] is not',
                ),
            ),
        ),
    ] = []
    command: Annotated[list[Arg], Field(max_length=rules.ARGS_MAX_ITEMS)] | None = Field(
        default=None, description="Replaces the image's entrypoint (unset: the image's own)."
    )
    args: Annotated[list[Arg], Field(max_length=rules.ARGS_MAX_ITEMS)] | None = Field(
        default=None, description="Replaces the image's arguments (unset: the image's own)."
    )
    resources: Resources | None = Field(
        default=None, description="CPU and memory limits (unset: no limits)."
    )
    readiness_probe: ReadinessProbe | None = Field(
        default=None,
        alias="readinessProbe",
        description="HTTP probe that gates the Ready condition (unset: Ready once running).",
    )
    termination_grace_period_seconds: int = Field(
        default=rules.GRACE_PERIOD_DEFAULT_SECONDS,
        ge=0,
        le=rules.GRACE_PERIOD_MAX_SECONDS,
        alias="terminationGracePeriodSeconds",
        description=(
            "Seconds a stopping container gets between SIGTERM and SIGKILL, on every stop "
            "(update, suspend, delete, teardown). 0 kills at once."
        ),
    )

    @model_validator(mode="after")
    def _probe_port_is_exposed(self) -> ContainerSpec:
        probe = self.readiness_probe
        if probe is not None and probe.http_get.port not in self.ports:
            raise _invalid(
                "probe_port",
                f"readinessProbe.httpGet.port {probe.http_get.port} is not one of "
                f"spec.container.ports {self.ports}",
            )
        return self


# Rules on the whole object (the CRD puts them at the root of its schema, where CEL may read
# metadata.name): the Kubernetes runner names a Service after the MLModel.
OBJECT_VALIDATIONS: list[dict[str, JsonValue]] = [
    cel(
        "!has(self.spec) || !has(self.spec.runner) || self.spec.runner != 'kubernetes' "
        "|| !has(self.metadata.name) "
        f"|| (size(self.metadata.name) <= {rules.DNS_1035_LABEL_MAX_LENGTH} "
        f"&& self.metadata.name.matches({cel_string(rules.DNS_1035_LABEL_PATTERN)}))",
        f"metadata.name {rules.KUBERNETES_NAME_RULE}",
        field_path=".metadata.name",
    )
]


def _check_runner(value: object) -> object:
    if isinstance(value, str) and value in RETIRED_RUNNERS:
        raise _invalid(
            "runner_retired",
            f"must be one of 'docker' or 'kubernetes', got string {shown(value)} "
            f'(the reserved pod backend is now runner "{RETIRED_RUNNERS[value]}")',
        )
    return value


class MLModelSpec(_Strict):
    """The desired state of one model server."""

    model_config = ConfigDict(
        json_schema_extra=_cel_schema(
            cel(
                "!(self.runner == 'kubernetes' && self.debug)",
                rules.KUBERNETES_DEBUG_RULE,
                field_path=".debug",
            )
        )
    )

    id: ModelId = Field(
        description='The model\'s id, "name:version" in lower case (e.g. "iris:1.0"); it names '
        'the container ("name-version"), its DNS name and its storage folders, and must be '
        "unique among the models of one engine."
    )
    runner: Annotated[RunnerType, BeforeValidator(_check_runner)] = Field(
        default="docker", description="Where the model runs: docker or kubernetes."
    )
    suspend: bool = Field(
        default=False,
        description="true: nothing runs (docker: the container is removed; kubernetes: the "
        "Deployment is scaled to 0); storage is kept.",
    )
    debug: bool = Field(
        default=False,
        description="true: the container's ports are also published on the host "
        "(needs RUNNERS_DOCKER_HOST_PORT_DEBUG; one debug model at a time; runner docker only).",
    )
    container: ContainerSpec = Field(description="The model server's container.")

    @field_validator("debug")
    @classmethod
    def _no_debug_ports_in_a_cluster(cls, debug: bool, info: ValidationInfo) -> bool:
        if debug and info.data.get("runner") == "kubernetes":
            raise _invalid("debug_kubernetes", rules.KUBERNETES_DEBUG_RULE)
        return debug

    def to_wire(self) -> dict[str, Any]:
        """The spec as the API stores it, every default filled in (camelCase)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)
