"""Reading MLModel manifests from YAML: safe, bounded, and never a traceback.

A manifest is untrusted input. The loader builds only plain data (``SafeLoader``), refuses
anchors and aliases (so a "billion laughs" document cannot expand), refuses duplicate keys
(the API server does too), and bounds the file size and nesting depth.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mlplatform.models.resource import Problem, ValidMLModel, validate_object
from mlplatform.models.spec import API_GROUP, KIND

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
    """Raised when a YAML stream cannot be read as manifests (syntax, aliases, limits);
    ``line`` and ``column`` (1-based) say where, when the parser knows."""

    def __init__(self, message: str, *, line: int | None = None, column: int | None = None):
        super().__init__(message)
        self.line = line
        self.column = column


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
    return [data for data, _ in parse_yaml_with_lines(text)]


Lines = dict[tuple[str | int, ...], int]


def parse_yaml_with_lines(text: str) -> list[tuple[Any, Lines]]:
    """Every document with the 1-based line of each field path (``("spec", "id") -> 7``)."""
    if len(text.encode("utf-8", errors="replace")) > MAX_FILE_BYTES:
        raise ManifestError(f"larger than {MAX_FILE_BYTES // 1024} KiB")
    loader: _BoundedLoader | None = None
    try:
        # The reader refuses control characters already in the constructor: inside the try.
        loader = _BoundedLoader(text)
        documents: list[tuple[Any, Lines]] = []
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            data = loader.construct_document(node)
            if data is not None:
                lines: Lines = {}
                _index_lines(node, (), lines)
                documents.append((data, lines))
        return documents
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark
        if mark is None:
            raise ManifestError(f"not valid YAML: {_one_line(error)}") from error
        raise ManifestError(
            f"not valid YAML: {_syntax_problem(error)}", line=mark.line + 1, column=mark.column + 1
        ) from error
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


def _syntax_problem(error: yaml.MarkedYAMLError) -> str:
    """The parser's problem in one line, with where the construct it was in began (the
    position of the problem itself is the report's ``FILE:LINE:COL``)."""
    problem = " ".join((error.problem or "").split()) or _one_line(error)
    context, at = " ".join((error.context or "").split()), error.context_mark
    if context and at is not None:
        return f"{problem} ({context} started at line {at.line + 1}, column {at.column + 1})"
    return f"{problem} ({context})" if context else problem


def _index_lines(node: yaml.Node, path: tuple[str | int, ...], lines: Lines) -> None:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                here = (*path, str(key.value))
                lines[here] = key.start_mark.line + 1
                _index_lines(value, here, lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            here = (*path, index)
            lines[here] = item.start_mark.line + 1
            _index_lines(item, here, lines)


_PATH_PART = re.compile(r"\[(\d+)\]|\.?([^.\[\]]+)")


def _field_path(field_name: str) -> tuple[str | int, ...]:
    """``spec.container.ports[1]`` → ``("spec", "container", "ports", 1)``."""
    parts: list[str | int] = []
    for match in _PATH_PART.finditer(field_name):
        parts.append(int(match.group(1)) if match.group(1) is not None else match.group(2))
    return tuple(parts)


def is_ours(obj: object) -> bool:
    """Whether a document belongs to the MLModel API: its ``apiVersion`` group is ours.

    A document without ``apiVersion`` that names our kind is ours too (a forgotten line
    must be reported, not skipped); everything else (a Service, a ``package.json``, a
    compose file) is someone else's.
    """
    if not isinstance(obj, dict):
        return isinstance(obj, list) and any(is_ours(item) for item in obj)
    api_version = obj.get("apiVersion")
    if api_version is None:
        return obj.get("kind") in {KIND, f"{KIND}List"}
    return isinstance(api_version, str) and api_version.split("/", 1)[0] == API_GROUP


def _list_items(obj: object) -> list[Any] | None:
    """The items of a ``List`` (``kubectl get -o yaml``) or an ``MLModelList``; else None."""
    if not isinstance(obj, dict) or not isinstance(obj.get("items"), list):
        return None
    kind = obj.get("kind")
    if kind == f"{KIND}List" and is_ours(obj):
        return list(obj["items"])
    if kind == "List" and obj.get("apiVersion") == "v1":
        return list(obj["items"])
    return None


@dataclass(frozen=True)
class Document:
    """One document of a manifest file (or one item of a ``List``), valid or not."""

    source: str
    index: int  # 1-based within the file
    count: int  # documents in the file, to know whether to show the index
    model: ValidMLModel | None = None
    problems: list[Problem] = field(default_factory=list)
    kind: str | None = None
    item: int | None = None  # index in the document's ``items`` when read from a List
    lines: Lines = field(default_factory=dict, repr=False, compare=False)
    # Where a file that cannot be parsed breaks: (line, column), 1-based.
    position: tuple[int, int] | None = None

    @property
    def where(self) -> str:
        if self.item is not None:
            return f"{self.source}#{self.index}.items[{self.item}]"
        return f"{self.source}#{self.index}" if self.count > 1 else self.source

    def line_of(self, problem: Problem) -> int | None:
        """The line of the problem's field, or of its nearest parent the YAML has."""
        path = _field_path(problem.field)
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return None

    def report(self) -> list[str]:
        """``FILE[#DOC][:LINE]: FIELD: MESSAGE`` lines, one per problem (``FILE:LINE:COL``
        for a file that cannot be parsed)."""
        if self.position is not None:
            at = "{}:{}:{}".format(self.where, *self.position)
            return [f"{at}: {problem}" for problem in self.problems]
        lines = []
        for problem in self.problems:
            line = self.line_of(problem)
            where = f"{self.where}:{line}" if line is not None else self.where
            lines.append(f"{where}: {problem}")
        return lines


def read_documents(path: Path, *, named: bool = True) -> list[Document]:
    """The documents of one file; documents that are not ours come back with ``model=None``.

    ``named=False`` (a file found in a folder, not named by the user): a file that cannot be
    read as YAML and never mentions the MLModel API is someone else's and is skipped (one
    document of kind ``None``), not reported.
    """
    source = str(path)
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            return [_unreadable(source, "(yaml)", f"larger than {MAX_FILE_BYTES // 1024} KiB")]
        raw = path.read_bytes()
    except OSError as error:
        return [_unreadable(source, "(file)", f"cannot be read: {_one_line(error)}")]
    return read_text(raw, source, named=named)


def read_text(raw: bytes, source: str, *, named: bool = True) -> list[Document]:
    """Like ``read_documents`` for bytes already read (standard input)."""
    try:
        if len(raw) > MAX_FILE_BYTES:
            raise ManifestError(f"larger than {MAX_FILE_BYTES // 1024} KiB")
        docs = parse_yaml_with_lines(raw.decode("utf-8"))
    except UnicodeDecodeError as error:
        if not named and not _mentions_us(raw):
            return [Document(source, 1, 1)]
        return [_unreadable(source, "(file)", f"cannot be read: {_one_line(error)}")]
    except ManifestError as error:
        if not named and not _mentions_us(raw):
            return [Document(source, 1, 1)]
        position = None
        if error.line is not None and error.column is not None:
            position = (error.line, error.column)
        return [_unreadable(source, "(yaml)", str(error), position=position)]
    result: list[Document] = []
    for index, (obj, lines) in enumerate(docs, start=1):
        items = _list_items(obj)
        if items is None:
            result.append(_judge(obj, source, index, len(docs), lines=lines))
            continue
        for number, item in enumerate(items):
            prefix = ("items", number)
            own = {path[2:]: line for path, line in lines.items() if path[:2] == prefix}
            result.append(_judge(item, source, index, len(docs), lines=own, item=number))
    return result


def _judge(
    obj: object, source: str, index: int, count: int, *, lines: Lines, item: int | None = None
) -> Document:
    if not is_ours(obj):
        kind = obj.get("kind") if isinstance(obj, dict) else None
        return Document(
            source, index, count, kind=kind if isinstance(kind, str) else None, item=item
        )
    model, problems = validate_object(obj)
    return Document(
        source, index, count, model=model, problems=problems, kind=KIND, item=item, lines=lines
    )


def _unreadable(
    source: str, what: str, message: str, *, position: tuple[int, int] | None = None
) -> Document:
    return Document(source, 1, 1, problems=[Problem(what, message)], kind=KIND, position=position)


def _mentions_us(raw: bytes) -> bool:
    return API_GROUP.encode() in raw or KIND.encode() in raw


def manifest_files(paths: Iterable[Path]) -> Iterator[Path]:
    """Files named directly, and YAML/JSON files found (recursively, sorted) in folders.

    Hidden files and folders (``.git``, ``.venv``, ``.github``) are skipped unless named, and
    so are a Helm chart's ``templates/`` (Go templates that Helm renders, not manifests; the
    folder holds a ``Chart.yaml``).
    """
    for path in paths:
        if path.is_dir():
            yield from sorted(_walk(path))
        else:
            yield path


def _walk(folder: Path) -> Iterator[Path]:
    for root, folders, files in os.walk(folder):
        chart = "Chart.yaml" in files
        folders[:] = [
            name
            for name in folders
            if not name.startswith(".") and not (chart and name == "templates")
        ]
        for name in files:
            if not name.startswith(".") and name.endswith(MANIFEST_SUFFIXES):
                yield Path(root) / name


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())
