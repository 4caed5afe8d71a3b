"""The corpus through the spec model: every invalid manifest gets its message, examples pass."""

from __future__ import annotations

from typing import Any

import pytest

from mlplatform.models.resource import validate_object
from tests.support import corpus

INVALID = corpus.invalid_cases()
VALID = corpus.valid_objects()


def test_the_corpus_holds_at_least_30_invalid_and_5_valid_manifests() -> None:
    assert len(INVALID) >= 30
    assert len(VALID) >= 5


@pytest.mark.parametrize("case", INVALID, ids=str)
def test_each_invalid_manifest_is_refused_with_its_message(case: corpus.Case) -> None:
    model, problems = validate_object(case.obj)
    lines = [str(problem) for problem in problems]
    assert model is None
    assert any(case.expect in line for line in lines), f"{case.expect!r} not in {lines}"


@pytest.mark.parametrize(("where", "obj"), VALID, ids=[where for where, _ in VALID])
def test_each_example_is_accepted(where: str, obj: dict[str, Any]) -> None:
    model, problems = validate_object(obj)
    assert problems == []
    assert model is not None
