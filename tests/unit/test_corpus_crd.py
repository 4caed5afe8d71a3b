"""The corpus through the CRD: OpenAPI schema plus CEL rules, evaluated offline."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support import cel_harness, corpus

CRD = cel_harness.load_crd()
INVALID = corpus.invalid_cases()
EXPRESSIBLE = [case for case in INVALID if case.crd_expressible]
NOT_EXPRESSIBLE = [case for case in INVALID if not case.crd_expressible]
VALID = corpus.valid_objects()


@pytest.mark.parametrize("case", EXPRESSIBLE, ids=str)
def test_the_crd_refuses_each_invalid_manifest_with_its_message(case: corpus.Case) -> None:
    messages = cel_harness.validate(case.obj, CRD)
    assert case.expect_crd is not None
    assert any(case.expect_crd in message for message in messages), (
        f"{case.expect_crd!r} not in {messages}"
    )


@pytest.mark.parametrize("case", NOT_EXPRESSIBLE, ids=str)
def test_a_rule_marked_not_expressible_really_passes_the_crd(case: corpus.Case) -> None:
    # If the CRD learns to catch it, the corpus file should say what it says instead.
    assert cel_harness.validate(case.obj, CRD) == []


def test_rules_the_crd_cannot_express_are_rare() -> None:
    assert len(NOT_EXPRESSIBLE) <= 3, [case.name for case in NOT_EXPRESSIBLE]


@pytest.mark.parametrize(("where", "obj"), VALID, ids=[where for where, _ in VALID])
def test_the_crd_accepts_each_example(where: str, obj: dict[str, Any]) -> None:
    assert cel_harness.validate(obj, CRD) == []
