"""The validation corpus: invalid manifests with the words each must produce, valid examples.

Every validation layer runs the same corpus (spec model, CRD schema + CEL, admission webhook):

    from tests.support import corpus
    for case in corpus.invalid_cases(): ...   # case.path, case.obj, case.expect, case.expect_crd
    for where, obj in corpus.valid_objects(): ...

An invalid case is one file in ``tests/corpus/invalid/`` holding one document. Its leading
comments say what it must produce:

- ``# expect: FRAGMENT`` — a fragment of one ``FIELD: MESSAGE`` line of ``validate_object``
  (so also of the webhook's denial message, which quotes the same problems);
- ``# expect-crd: FRAGMENT`` — a fragment of what the API server says through the CRD's
  OpenAPI schema and CEL rules (``tests/support/cel_harness.py`` evaluates them offline);
- ``# crd: not-expressible ...`` instead, when a schema cannot catch it (only the webhook and
  the offline validator do). Rare, and each one says why.

The valid corpus is every MLModel document in ``manifests/examples/`` (they are also the
documentation's examples, so they must pass every layer).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mlplatform.models.resource import is_mlmodel

ROOT = Path(__file__).resolve().parents[2]
INVALID_DIR = ROOT / "tests" / "corpus" / "invalid"
EXAMPLES_DIR = ROOT / "manifests" / "examples"

_EXPECT = "# expect:"
_EXPECT_CRD = "# expect-crd:"
_NOT_EXPRESSIBLE = "# crd: not-expressible"


@dataclass(frozen=True)
class Case:
    """One invalid manifest and the message fragments it must produce."""

    path: Path
    obj: Any
    expect: str
    expect_crd: str | None  # None: the CRD cannot express the rule (see ``crd_expressible``)
    crd_expressible: bool

    @property
    def name(self) -> str:
        return self.path.stem

    @property
    def reaches_webhook(self) -> bool:
        """Whether the API server would route it to the MLModel admission webhook at all.

        An object of another kind or an unserved version is refused before admission.
        """
        return is_mlmodel(self.obj) and self.obj.get("apiVersion") == "mlplatform.dev/v1alpha1"

    def __str__(self) -> str:
        return self.name


def _header(text: str, prefix: str) -> str | None:
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        if line.startswith(prefix):
            return line[len(prefix) :].strip()
    return None


def load_case(path: Path) -> Case:
    """Read one corpus file; a file without ``# expect:`` or a CRD verdict is a corpus bug."""
    text = path.read_text(encoding="utf-8")
    expect = _header(text, _EXPECT)
    expect_crd = _header(text, _EXPECT_CRD)
    not_expressible = _header(text, _NOT_EXPRESSIBLE) is not None
    if not expect:
        raise ValueError(f"{path}: has no '{_EXPECT} FRAGMENT' line")
    if (expect_crd is None) == (not not_expressible):
        raise ValueError(f"{path}: needs exactly one of '{_EXPECT_CRD}' or '{_NOT_EXPRESSIBLE}'")
    docs = [doc for doc in yaml.safe_load_all(text) if doc is not None]
    if len(docs) != 1:
        raise ValueError(f"{path}: must hold exactly one document, holds {len(docs)}")
    return Case(
        path=path,
        obj=docs[0],
        expect=expect,
        expect_crd=expect_crd,
        crd_expressible=not not_expressible,
    )


def invalid_cases() -> list[Case]:
    """Every invalid manifest of the corpus, sorted by file name."""
    return [load_case(path) for path in sorted(INVALID_DIR.glob("*.yaml"))]


def valid_objects() -> list[tuple[str, dict[str, Any]]]:
    """Every MLModel document in ``manifests/examples/`` as ``("file#N", object)``."""
    found: list[tuple[str, dict[str, Any]]] = []
    for path in sorted(EXAMPLES_DIR.rglob("*.yaml")):
        docs = [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]
        found.extend(
            (f"{path.relative_to(ROOT)}#{index}", doc)
            for index, doc in enumerate(docs, start=1)
            if is_mlmodel(doc)
        )
    return found
