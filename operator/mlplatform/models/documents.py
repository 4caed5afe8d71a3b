"""Reading MLModel manifests from YAML: safe, bounded, and never a traceback.

A manifest is untrusted input. The loader builds only plain data (``SafeLoader``), refuses
anchors and aliases (so a "billion laughs" document cannot expand), refuses duplicate keys
(the API server does too), and bounds the file size and nesting depth.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mlplatform.models.resource import Problem, ValidMLModel, is_mlmodel, validate_object
from mlplatform.models.spec import API_GROUP

MAX_FILE_BYTES = 1024 * 1024
MAX_DEPTH = 64
# Nodes (scalars, lists, maps) in one file: a real manifest has a few hundred. Bounds the
# time of pure-Python parsing (a 1 MiB list of 500 000 items would take ~18 s).
MAX_NODES = 20_000
# Longer integer literals are refused: no port or quantity needs them, and Python refuses to
# print integers of more than 4300 digits (a message quoting one would crash).
MAX_INT_CHARS = 64
MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")


class ManifestError(ValueError):
    """Raised when a YAML stream cannot be read as manifests (syntax, aliases, limits)."""


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader without aliases and duplicate keys, with a depth limit."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._nodes = 0

    def _line(self) -> int:
        event: yaml.Event = self.peek_event()  # type: ignore[no-untyped-call]
        return event.start_mark.line + 1 if event.start_mark is not None else 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            raise ManifestError(f"line {self._line()}: YAML aliases are not allowed in manifests")
        event: yaml.Event = self.peek_event()  # type: ignore[no-untyped-call]
        if getattr(event, "anchor", None):
            raise ManifestError(f"line {self._line()}: YAML anchors are not allowed in manifests")
        self._depth += 1
        self._nodes += 1
        if self._nodes > MAX_NODES:
            raise ManifestError(f"line {self._line()}: more than {MAX_NODES} YAML nodes")
        try:
            if self._depth > MAX_DEPTH:
                raise ManifestError(f"line {self._line()}: nested deeper than {MAX_DEPTH} levels")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        keys: set[object] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, str):
                line = key_node.start_mark.line + 1
                raise ManifestError(f"line {line}: mapping keys must be strings, got {key!r}")
            if key in keys:
                raise ManifestError(f'line {key_node.start_mark.line + 1}: duplicate key "{key}"')
            keys.add(key)
        return super().construct_mapping(node, deep=deep)


def _timestamps_as_strings(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> str:
    return str(loader.construct_scalar(node))


def _bounded_int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int:
    if len(str(node.value)) > MAX_INT_CHARS:
        line = node.start_mark.line + 1
        raise ManifestError(f"line {line}: integer longer than {MAX_INT_CHARS} characters")
    return int(loader.construct_yaml_int(node))


_BoundedLoader.add_constructor("tag:yaml.org,2002:timestamp", _timestamps_as_strings)
_BoundedLoader.add_constructor("tag:yaml.org,2002:int", _bounded_int)


def parse_yaml(text: str) -> list[Any]:
    """Every document of a YAML stream as plain data (empty documents dropped)."""
    if len(text.encode("utf-8", errors="replace")) > MAX_FILE_BYTES:
        raise ManifestError(f"larger than {MAX_FILE_BYTES // 1024} KiB")
    loader: _BoundedLoader | None = None
    try:
        # The reader refuses control characters already in the constructor: inside the try.
        loader = _BoundedLoader(text)
        documents = []
        while loader.check_data():  # type: ignore[no-untyped-call]
            documents.append(loader.get_data())
        return [doc for doc in documents if doc is not None]
    except yaml.YAMLError as error:
        raise ManifestError(f"not valid YAML: {_one_line(error)}") from error
    except RecursionError as error:
        raise ManifestError("nested too deeply") from error
    except ValueError as error:
        # A tagged scalar that is not what its tag says (`!!int eighty`, `!!float x`).
        if isinstance(error, ManifestError):
            raise
        raise ManifestError(f"not valid YAML: {_one_line(error)}") from error
    finally:
        if loader is not None:
            loader.dispose()


@dataclass(frozen=True)
class Document:
    """One document of a manifest file, valid or not."""

    source: str
    index: int  # 1-based within the file
    count: int  # documents in the file, to know whether to show the index
    model: ValidMLModel | None = None
    problems: list[Problem] = field(default_factory=list)
    kind: str | None = None

    @property
    def where(self) -> str:
        return f"{self.source}#{self.index}" if self.count > 1 else self.source

    def report(self) -> list[str]:
        """``FILE[#DOC]: FIELD: MESSAGE`` lines, one per problem."""
        return [f"{self.where}: {problem}" for problem in self.problems]


def read_documents(path: Path) -> list[Document]:
    """The MLModel documents of one file; other kinds are returned with ``model=None``."""
    source = str(path)
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise ManifestError(f"larger than {MAX_FILE_BYTES // 1024} KiB")
        docs = parse_yaml(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        return [
            Document(
                source, 1, 1, problems=[Problem("(file)", f"cannot be read: {_one_line(error)}")]
            )
        ]
    except ManifestError as error:
        return [Document(source, 1, 1, problems=[Problem("(yaml)", str(error))])]
    result = []
    for index, obj in enumerate(docs, start=1):
        if not is_mlmodel(obj):
            kind = obj.get("kind") if isinstance(obj, dict) else None
            in_our_group = isinstance(obj, dict) and str(obj.get("apiVersion", "")).startswith(
                f"{API_GROUP}/"
            )
            # Another kind (a Service...) is not ours to judge; a typo in ours (`kind: Model`
            # under mlplatform.dev) is, or a pipeline would pass what the cluster refuses.
            if isinstance(obj, dict) and isinstance(kind, str) and not in_our_group:
                result.append(Document(source, index, len(docs), kind=kind))
                continue
        model, problems = validate_object(obj)
        result.append(
            Document(source, index, len(docs), model=model, problems=problems, kind="MLModel")
        )
    return result


def manifest_files(paths: Iterable[Path]) -> Iterator[Path]:
    """Files named directly, and YAML/JSON files found (recursively, sorted) in folders."""
    for path in paths:
        if path.is_dir():
            yield from sorted(
                p
                for p in path.rglob("*")
                if p.is_file() and p.suffix in MANIFEST_SUFFIXES and not p.name.startswith(".")
            )
        else:
            yield path


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())
