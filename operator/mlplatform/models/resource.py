"""The MLModel object as a whole (apiVersion, kind, metadata, spec) and its validation.

``validate_object`` is the one entry point every layer uses — the CLI, local mode and the
admission webhook — so a manifest gets the same verdict and the same words everywhere.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from mlplatform.models import rules
from mlplatform.models.spec import API_GROUP, API_VERSION, KIND, MLModelSpec, shown

GROUP_VERSION = f"{API_GROUP}/{API_VERSION}"
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_UNION_TAGS = {"str", "int", "bool", "list", "dict"}


@dataclass(frozen=True)
class Problem:
    """One reason an object is invalid: the field path (``spec.container.ports[1]``) and why."""

    field: str
    message: str

    def __str__(self) -> str:
        # One problem, one line: a user's key or value can never forge a second line.
        return _one_line(f"{self.field}: {self.message}")


@dataclass(frozen=True)
class ValidMLModel:
    """An MLModel that passed validation, with its defaults filled in."""

    name: str
    namespace: str | None
    spec: MLModelSpec
    metadata: dict[str, Any]


class InvalidMLModel(ValueError):
    """Raised by ``parse_object`` when an object breaks a rule; carries every problem."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(map(str, problems)))
        self.problems = problems


def is_mlmodel(obj: object) -> bool:
    """Whether a parsed document claims to be an MLModel (any version of our group)."""
    return (
        isinstance(obj, dict)
        and obj.get("kind") == KIND
        and str(obj.get("apiVersion", "")).startswith(f"{API_GROUP}/")
    )


def validate_spec(
    spec: object, *, prefix: str = "spec"
) -> tuple[MLModelSpec | None, list[Problem]]:
    """Validate a spec alone; the problems' paths start with ``prefix``."""
    if not isinstance(spec, dict):
        return None, [Problem(prefix, f"must be an object, got {_describe(spec)}")]
    try:
        return MLModelSpec.model_validate(spec), []
    except ValidationError as error:
        return None, _problems(error, prefix)


def validate_object(obj: object) -> tuple[ValidMLModel | None, list[Problem]]:
    """Validate a whole MLModel object as read from YAML or sent by the API server."""
    if not isinstance(obj, dict):
        return None, [Problem("(document)", f"must be an object, got {_describe(obj)}")]
    problems: list[Problem] = []
    if obj.get("apiVersion") != GROUP_VERSION:
        problems.append(
            Problem(
                "apiVersion", f'must be "{GROUP_VERSION}", got {_describe(obj.get("apiVersion"))}'
            )
        )
    if obj.get("kind") != KIND:
        problems.append(Problem("kind", f'must be "{KIND}", got {_describe(obj.get("kind"))}'))
    metadata = obj.get("metadata")
    name: str | None = None
    namespace: str | None = None
    if not isinstance(metadata, dict):
        problems.append(Problem("metadata", f"must be an object, got {_describe(metadata)}"))
        metadata = {}
    else:
        name, namespace = _check_metadata(metadata, problems)
    top = ("apiVersion", "kind", "metadata", "spec", "status")
    unknown = sorted(set(obj) - set(top))
    problems.extend(
        Problem(
            key if _PLAIN_KEY.fullmatch(key) else shown(key, 40),
            f"unknown field {shown(key, 40)} is not part of the MLModel API{_nearest(key, top)}",
        )
        for key in unknown
    )
    if "spec" not in obj:
        problems.append(Problem("spec", "is required"))
        return None, problems
    spec, spec_problems = validate_spec(obj["spec"])
    problems.extend(spec_problems)
    if spec is not None and name is not None:
        problems.extend(_check_name_for_runner(name, spec, from_prefix="name" not in metadata))
    if problems or spec is None or name is None:
        return None, problems
    return ValidMLModel(name=name, namespace=namespace, spec=spec, metadata=metadata), []


def parse_object(obj: object) -> ValidMLModel:
    """Like ``validate_object`` but raises ``InvalidMLModel``."""
    model, problems = validate_object(obj)
    if model is None:
        raise InvalidMLModel(problems)
    return model


def _check_metadata(
    metadata: dict[str, Any], problems: list[Problem]
) -> tuple[str | None, str | None]:
    name = metadata.get("name")
    namespace = metadata.get("namespace")
    if name is None and metadata.get("generateName"):
        name = str(metadata["generateName"])
    if not isinstance(name, str) or not name:
        problems.append(Problem("metadata.name", "is required"))
        name = None
    elif len(name) > 253 or not _DNS_SUBDOMAIN.fullmatch(name):
        problems.append(
            Problem(
                "metadata.name",
                f"{shown(name)} must be a DNS-1123 subdomain "
                '(lower-case letters, digits, "-", ".")',
            )
        )
        name = None
    if namespace is not None and (
        not isinstance(namespace, str)
        or not _DNS_SUBDOMAIN.fullmatch(namespace)
        or len(namespace) > 63
    ):
        problems.append(
            Problem("metadata.namespace", f"{_describe(namespace)} must be a DNS-1123 label")
        )
        namespace = None
    return name, namespace


def _check_name_for_runner(name: str, spec: MLModelSpec, *, from_prefix: bool) -> list[Problem]:
    """The Kubernetes runner names a Service after the MLModel: a DNS-1035 label."""
    if spec.runner != "kubernetes":
        return []
    # A generateName prefix gets five random lower-case letters and digits appended.
    full = f"{name}x0000" if from_prefix else name
    if len(full) <= rules.DNS_1035_LABEL_MAX_LENGTH and _DNS_1035.fullmatch(full):
        return []
    field = "metadata.generateName" if from_prefix else "metadata.name"
    return [Problem(field, f"{shown(name)} {rules.KUBERNETES_NAME_RULE}")]


_DNS_1035 = re.compile(rules.DNS_1035_LABEL_PATTERN.strip("^$"))
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_.-]{1,63}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _one_line(text: str) -> str:
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _describe(value: object) -> str:
    """How a value is shown in a message: its type as the API server names it, and the value."""
    if value is None:
        return "nothing"
    kinds = {bool: "boolean", int: "integer", float: "number", str: "string", list: "list"}
    kind = kinds.get(type(value), "object" if isinstance(value, dict) else type(value).__name__)
    if isinstance(value, (list, dict)):
        return kind
    return f"{kind} {shown(value)}"


_TYPE_MESSAGES = {
    "bool_type": "must be a boolean (true or false)",
    "bool_parsing": "must be a boolean (true or false)",
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "int_from_float": "must be an integer",
    "string_type": "must be a string",
    "list_type": "must be a list",
    "model_type": "must be an object",
    "model_attributes_type": "must be an object",
    "dict_type": "must be an object",
}


def _problems(error: ValidationError, prefix: str) -> list[Problem]:
    problems: list[Problem] = []
    seen: set[tuple[str, str]] = set()
    for detail in error.errors(include_url=False):
        raw = list(detail["loc"])
        # An unknown field's own name is the user's key, never a union tag: keep it as is
        # (a key named "str" or "a[0]" must still be named, and named right).
        tail = [raw.pop()] if detail["type"] == "extra_forbidden" and raw else []
        loc = [
            part
            for part in raw
            if not (isinstance(part, str) and (part in _UNION_TAGS or "[" in part))
        ] + tail
        path = prefix + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc)
        message = _message(detail, loc)
        if (path, message) not in seen:
            seen.add((path, message))
            problems.append(Problem(path, message))
    return _merge_union_types(problems)


def _known_fields(model: type[BaseModel], loc: list[Any]) -> tuple[str, ...]:
    """The field names (as written in a manifest) of the object at ``loc`` under ``model``;
    empty when ``loc`` does not lead to an object of the API."""
    current: type[BaseModel] | None = model
    for part in loc:
        if current is None:
            return ()
        if isinstance(part, int):
            continue  # an item of a list: the list's item model was taken already
        field = next(
            (f for name, f in current.model_fields.items() if part in (f.alias, name)), None
        )
        current = _object_model(field.annotation) if field is not None else None
    if current is None:
        return ()
    return tuple(f.alias or name for name, f in current.model_fields.items())


def _object_model(annotation: Any) -> type[BaseModel] | None:
    """The model of an object field, through ``X | None`` and ``list[X]``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType, list, typing.Annotated):
        for argument in typing.get_args(annotation):
            found = _object_model(argument)
            if found is not None:
                return found
    return None


def _nearest(key: str, known: tuple[str, ...]) -> str:
    """`` (did you mean "imagePullPolicy"?)`` for a key close to a known field, else ""."""
    by_case = {name.lower(): name for name in known}
    close = by_case.get(key.lower()) or next(
        iter(difflib.get_close_matches(key, known, n=1, cutoff=0.75)), None
    )
    return f' (did you mean "{close}"?)' if close else ""


def _merge_union_types(problems: list[Problem]) -> list[Problem]:
    """One line for a quantity of the wrong type (``cpu: 0.5``), not one per union branch."""
    merged: list[Problem] = []
    for problem in problems:
        first = next((p for p in merged if p.field == problem.field), None)
        pair = {first.message.split(",")[0], problem.message.split(",")[0]} if first else set()
        if first is not None and pair == {"must be a string", "must be an integer"}:
            got = problem.message.split(", got ", 1)[-1]
            hint = f' (quote it: "{got.split(" ", 1)[-1]}")' if got.startswith("number") else ""
            merged[merged.index(first)] = Problem(
                problem.field, f"must be a string or an integer, got {got}{hint}"
            )
            continue
        merged.append(problem)
    return merged


def _message(detail: Any, loc: list[Any]) -> str:
    kind: str = detail["type"]
    value = detail.get("input")
    ctx = detail.get("ctx") or {}
    if kind == "extra_forbidden":
        hint = _nearest(str(loc[-1]), _known_fields(MLModelSpec, loc[:-1]))
        return f"unknown field {shown(loc[-1], 40)} is not part of the MLModel API{hint}"
    if kind == "missing":
        return "is required"
    if kind in _TYPE_MESSAGES:
        return f"{_TYPE_MESSAGES[kind]}, got {_describe(value)}"
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected', '')}, got {_describe(value)}"
    if kind in {"greater_than_equal", "greater_than", "less_than_equal", "less_than"}:
        bound = {
            "greater_than_equal": ">=",
            "greater_than": ">",
            "less_than_equal": "<=",
            "less_than": "<",
        }[kind]
        return f"must be {bound} {next(iter(ctx.values()))}, got {_describe(value)}"
    if kind == "too_short":
        return f"must have at least {ctx.get('min_length')} item(s), got {ctx.get('actual_length')}"
    if kind == "too_long":
        return f"must have at most {ctx.get('max_length')} item(s), got {ctx.get('actual_length')}"
    if kind == "string_too_short":
        return f"must be at least {ctx.get('min_length')} character(s) long"
    if kind == "string_too_long":
        return f"must be at most {ctx.get('max_length')} characters long, got {len(str(value))}"
    return str(detail["msg"])
