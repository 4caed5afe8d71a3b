"""The shared validation corpus through the admission webhook (the third layer).

One kopf operator with the webhook server serves the whole module; every invalid manifest
that would reach the webhook is denied with its expected words, every example is allowed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from mlplatform.kube import admission
from tests.support import corpus
from tests.support.admission_client import AdmissionClient, patch_ops, webhook_operator
from tests.support.kube_cluster import kube_cluster

pytestmark = pytest.mark.asyncio(loop_scope="module")

INVALID = [case for case in corpus.invalid_cases() if case.reaches_webhook]
VALID = corpus.valid_objects()


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def webhook(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[AdmissionClient]:
    certs = tmp_path_factory.mktemp("certs")
    async with kube_cluster() as cluster, webhook_operator(cluster, certs) as client:
        yield client


async def test_most_of_the_corpus_reaches_the_webhook() -> None:
    assert len(INVALID) >= 30
    assert len(VALID) >= 5


@pytest.mark.parametrize("case", INVALID, ids=str)
async def test_each_invalid_manifest_is_denied_with_its_message(
    webhook: AdmissionClient, case: corpus.Case
) -> None:
    response = await webhook.review(admission.VALIDATE_ID, case.obj)
    assert response["allowed"] is False
    assert response["status"]["code"] == 422
    message = response["status"]["message"]
    assert any(case.expect in line for line in message.split("; ")), message


@pytest.mark.parametrize(("where", "obj"), VALID, ids=[where for where, _ in VALID])
async def test_each_example_is_allowed(
    webhook: AdmissionClient, where: str, obj: dict[str, Any]
) -> None:
    response = await webhook.review(admission.VALIDATE_ID, obj)
    assert response["allowed"] is True, response.get("status")


@pytest.mark.parametrize(("where", "obj"), VALID, ids=[where for where, _ in VALID])
async def test_the_mutating_webhook_only_adds_fields_to_each_example(
    webhook: AdmissionClient, where: str, obj: dict[str, Any]
) -> None:
    response = await webhook.review(admission.MUTATE_ID, obj)
    assert response["allowed"] is True
    assert all(op["op"] == "add" for op in patch_ops(response)), patch_ops(response)
