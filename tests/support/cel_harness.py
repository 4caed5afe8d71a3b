"""Validate an object against the MLModel CRD offline, the way the API server would.

There is no kube-apiserver on these machines, so this harness does what it does for a
custom resource, in the same order, and words its messages like it:

1. the object must be of the CRD's kind and a served version;
2. defaults from the structural schema are filled in (the API server defaults before it
   validates, so CEL rules see defaulted values);
3. the OpenAPI v3 schema is checked with ``jsonschema``; fields the schema does not name are
   errors (``unknown field "spec.container.privileged"``), as with strict field validation,
   ``kubectl``'s default; ``x-kubernetes-list-type: set``/``map`` refuse duplicates;
4. every ``x-kubernetes-validations`` rule is evaluated with cel-python (``celpy``) at its
   schema node with ``self`` bound to the node's value, recursing through objects and arrays
   (a node whose value has the wrong type is skipped, as the API server skips it).

cel-python implements core CEL but not Kubernetes' string extension library; the functions
the rules may use (``indexOf``, ``lastIndexOf``, ``substring``, ``split``, ``lowerAscii``,
``upperAscii``, ``trim``, ``join``) are supplied here with cel-go's ``ext.Strings`` semantics
(code-point indexes; out-of-range indexes are errors, not clamped).
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Callable, Iterator
from typing import Any

import celpy
import jsonschema  # type: ignore[import-untyped,unused-ignore]
from celpy import celtypes
from celpy.adapter import json_to_cel

from mlplatform.kube import crd as crd_module

Schema = dict[str, Any]


# --- Kubernetes CEL string extensions ---------------------------------------------------


class CELStringError(ValueError):
    """A string extension was called out of its domain (cel-go raises an evaluation error)."""


def _index_of(text: str, sub: str, start: int = 0) -> celtypes.IntType:
    if not 0 <= start <= len(text):
        raise CELStringError(f"index out of range: {start}")
    return celtypes.IntType(text.find(sub, start))


def _last_index_of(text: str, sub: str, end: int | None = None) -> celtypes.IntType:
    if end is None:
        return celtypes.IntType(text.rfind(sub))
    if not 0 <= end <= len(text):
        raise CELStringError(f"index out of range: {end}")
    return celtypes.IntType(text.rfind(sub, 0, end + len(sub)))


def _substring(text: str, start: int, end: int | None = None) -> celtypes.StringType:
    stop = len(text) if end is None else int(end)
    if not 0 <= start <= len(text) or not start <= stop <= len(text):
        raise CELStringError(f"substring out of range: [{start}:{stop}] of {len(text)}")
    return celtypes.StringType(text[int(start) : stop])


def _split(text: str, sep: str, limit: int = -1) -> celtypes.ListType:
    if limit == 0:
        return celtypes.ListType([])
    parts = text.split(sep, int(limit) - 1) if limit > 0 else text.split(sep)
    if sep == "":  # cel-go splits into code points
        parts = list(text) if limit < 0 else [*text[: limit - 1], text[limit - 1 :]]
    return celtypes.ListType([celtypes.StringType(p) for p in parts])


def _join(items: list[str], sep: str = "") -> celtypes.StringType:
    return celtypes.StringType(str(sep).join(str(i) for i in items))


def _lower_ascii(text: str) -> celtypes.StringType:
    return celtypes.StringType("".join(c.lower() if c.isascii() else c for c in text))


def _upper_ascii(text: str) -> celtypes.StringType:
    return celtypes.StringType("".join(c.upper() if c.isascii() else c for c in text))


def _trim(text: str) -> celtypes.StringType:
    return celtypes.StringType(text.strip())


KUBERNETES_STRING_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "indexOf": _index_of,
    "lastIndexOf": _last_index_of,
    "substring": _substring,
    "split": _split,
    "join": _join,
    "lowerAscii": _lower_ascii,
    "upperAscii": _upper_ascii,
    "trim": _trim,
}


# --- CEL ------------------------------------------------------------------------------

_ENV = celpy.Environment()


@functools.lru_cache(maxsize=256)
def compile_rule(rule: str) -> Any:
    """A runnable program for one CEL rule; raises ``celpy.CELParseError`` on bad syntax."""
    return _ENV.program(_ENV.compile(rule), functions=KUBERNETES_STRING_FUNCTIONS)


def evaluate_rule(rule: str, value: Any) -> bool | str:
    """True/False for a rule with ``self`` bound to ``value``, or the evaluation error's text."""
    try:
        result = compile_rule(rule).evaluate({"self": json_to_cel(value)})
    except Exception as error:  # celpy raises its own errors and Python's from our functions
        return f"{type(error).__name__}: {error}"
    if isinstance(result, Exception):
        return f"{type(result).__name__}: {result}"
    if not isinstance(result, celtypes.BoolType):
        return f"rule returned {type(result).__name__}, not a boolean"
    return bool(result)


def iter_rules(schema: Schema, path: str = "") -> Iterator[tuple[str, str, str]]:
    """Every ``(path, rule, message)`` of a schema, for tests that compile them all."""
    for validation in schema.get("x-kubernetes-validations", []):
        yield path, validation["rule"], validation.get("message", "")
    for name, sub in schema.get("properties", {}).items():
        yield from iter_rules(sub, f"{path}.{name}" if path else name)
    if isinstance(schema.get("items"), dict):
        yield from iter_rules(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from iter_rules(schema["additionalProperties"], f"{path}[*]")


# --- the structural schema as JSON Schema ----------------------------------------------


def _as_json_schema(node: Schema) -> Schema:
    """Structural schema → JSON Schema that refuses unknown fields (strict field validation)."""
    out: Schema = {}
    for key, value in node.items():
        if key == "properties":
            out[key] = {name: _as_json_schema(sub) for name, sub in value.items()}
            if "metadata" in out[key]:
                # ObjectMeta is the API server's own: the CRD may only describe name there.
                out[key]["metadata"] = {"type": "object"}
        elif key in {"items", "additionalProperties"} and isinstance(value, dict):
            out[key] = _as_json_schema(value)
        elif key == "default" or key.startswith("x-kubernetes-"):
            continue
        else:
            out[key] = copy.deepcopy(value)
    if node.get("x-kubernetes-int-or-string"):
        out["type"] = ["integer", "string"]
    if (
        node.get("type") == "object"
        and "additionalProperties" not in node
        and not node.get("x-kubernetes-preserve-unknown-fields")
        and "properties" in node
    ):
        out["additionalProperties"] = False
    return out


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "null"


def _field(path: Any) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _schema_message(error: jsonschema.ValidationError) -> list[str]:
    """One jsonschema error worded as the API server words it."""
    path = _field(error.absolute_path)
    value = error.instance
    bound = error.validator_value
    kind = error.validator

    def invalid(shown: object, detail: str) -> list[str]:
        return [f"{path}: Invalid value: {shown}: {path} in body {detail}"]

    if kind == "additionalProperties":
        known = set(error.schema.get("properties", {}))
        return [
            f'unknown field "{_field([*error.absolute_path, k])}"' for k in value if k not in known
        ]
    if kind == "required":
        missing = [k for k in bound if isinstance(value, dict) and k not in value]
        return [f"{_field([*error.absolute_path, k])}: Required value" for k in missing]
    if kind == "type":
        wanted = "integer-or-string" if isinstance(bound, list) else bound
        actual = f'"{_type_name(value)}"'
        return invalid(actual, f"must be of type {wanted}: {actual}")
    if kind == "enum":
        allowed = ", ".join(json.dumps(v) for v in bound)
        return [f"{path}: Unsupported value: {json.dumps(value)}: supported values: {allowed}"]
    if kind == "minimum":
        return invalid(value, f"should be greater than or equal to {bound}")
    if kind == "maximum":
        return invalid(value, f"should be less than or equal to {bound}")
    if kind == "minItems":
        return invalid(len(value), f"should have at least {bound} items")
    if kind == "maxItems":
        return [f"{path}: Too many: {len(value)}: must have at most {bound} items"]
    if kind == "minLength":
        return invalid(json.dumps(value), f"should be at least {bound} chars long")
    if kind == "maxLength":
        return [f"{path}: Too long: may not be more than {bound} bytes"]
    return [f"{path}: Invalid value: {json.dumps(value)}: {error.message}"]


# --- walking schema and value together -------------------------------------------------


def _matches_type(node: Schema, value: Any) -> bool:
    if node.get("x-kubernetes-int-or-string"):
        return isinstance(value, (int, str)) and not isinstance(value, bool)
    wanted = node.get("type")
    return (
        wanted is None
        or _type_name(value) == wanted
        or (wanted == "number" and _type_name(value) == "integer")
    )


def _apply_defaults(node: Schema, value: Any) -> None:
    if isinstance(value, dict) and node.get("type") == "object":
        for name, sub in node.get("properties", {}).items():
            if name not in value and "default" in sub:
                value[name] = copy.deepcopy(sub["default"])
            if name in value:
                _apply_defaults(sub, value[name])
    elif isinstance(value, list) and isinstance(node.get("items"), dict):
        for item in value:
            _apply_defaults(node["items"], item)


def _list_type_problems(node: Schema, value: Any, path: str) -> list[str]:
    problems: list[str] = []
    if not isinstance(value, list):
        return problems
    list_type = node.get("x-kubernetes-list-type")
    keys = node.get("x-kubernetes-list-map-keys", [])
    seen: list[Any] = []
    for index, item in enumerate(value):
        if list_type == "set":
            identity: Any = item
        elif list_type == "map" and isinstance(item, dict):
            identity = {k: item.get(k) for k in keys}
        else:
            continue
        if identity in seen:
            problems.append(f"{path}[{index}]: Duplicate value: {json.dumps(identity)}")
        seen.append(identity)
    return problems


def _walk(node: Schema, value: Any, path: str) -> list[str]:
    """List-type and CEL problems of a value whose schema checks passed where they matter."""
    if not _matches_type(node, value):
        return []
    problems = _list_type_problems(node, value, path)
    for validation in node.get("x-kubernetes-validations", []):
        verdict = evaluate_rule(validation["rule"], value)
        where = path or "<nil>"  # kube-apiserver's word for the root
        if "fieldPath" in validation:
            where = f"{path}{validation['fieldPath']}" if path else validation["fieldPath"][1:]
        if verdict is False:
            message = validation.get("message") or f"failed rule: {validation['rule']}"
            # The server shows the value when the rule sits on a scalar, not on an object/list.
            shown = "" if isinstance(value, dict | list) else f"{json.dumps(value)}: "
            problems.append(f"{where}: Invalid value: {shown}{message}")
        elif verdict is not True:
            problems.append(f"{where}: Internal error: rule evaluation failed: {verdict}")
    if isinstance(value, dict):
        properties = node.get("properties", {})
        extra = node.get("additionalProperties")
        for name, sub_value in value.items():
            sub = properties.get(name, extra if isinstance(extra, dict) else None)
            if sub is not None:
                problems.extend(_walk(sub, sub_value, f"{path}.{name}" if path else name))
    elif isinstance(value, list) and isinstance(node.get("items"), dict):
        for index, item in enumerate(value):
            problems.extend(_walk(node["items"], item, f"{path}[{index}]"))
    return problems


# --- the entry point -------------------------------------------------------------------


def load_crd() -> dict[str, Any]:
    """The CRD as generated now (the committed file is checked against it elsewhere)."""
    return crd_module.build()


def validate(obj: Any, crd: dict[str, Any] | None = None) -> list[str]:
    """What the API server would say when creating ``obj`` under the CRD; [] when accepted."""
    crd = crd if crd is not None else load_crd()
    group = crd["spec"]["group"]
    kind = crd["spec"]["names"]["kind"]
    if not isinstance(obj, dict):
        return [f'<root>: Invalid value: "{_type_name(obj)}": the object must be a JSON object']
    versions = {v["name"]: v for v in crd["spec"]["versions"] if v.get("served")}
    api_version = obj.get("apiVersion")
    group_of, _, version = str(api_version).partition("/")
    if group_of != group or version not in versions:
        served = ", ".join(f'"{group}/{v}"' for v in versions)
        return [
            f"apiVersion: Invalid value: {json.dumps(api_version)}: served versions are {served}"
        ]
    if obj.get("kind") != kind:
        return [f'kind: Invalid value: {json.dumps(obj.get("kind"))}: must be "{kind}"']
    schema: Schema = versions[version]["schema"]["openAPIV3Schema"]
    value = copy.deepcopy(obj)
    _apply_defaults(schema, value)
    validator = jsonschema.Draft7Validator(_as_json_schema(schema))
    problems: list[str] = []
    for error in sorted(
        validator.iter_errors(value), key=lambda e: list(map(str, e.absolute_path))
    ):
        problems.extend(_schema_message(error))
    problems.extend(_walk(schema, value, ""))
    return list(dict.fromkeys(problems))
