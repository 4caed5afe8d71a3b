"""The hostile corpus through the admission webhook and through local mode.

The webhook gets what the API server would send: every hostile file that parses into an
MLModel object (the rest never reach it: the API server refuses non-JSON bodies) is POSTed
as an AdmissionReview and must be denied naming the same field. Local mode gets the whole
corpus as its manifest folder and must create nothing in Docker.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from mlplatform.kube import admission
from mlplatform.models import documents
from mlplatform.models.resource import is_mlmodel, validate_object
from tests.reliability import figures
from tests.security import hostile
from tests.support.admission_client import AdmissionClient, webhook_operator
from tests.support.kube_cluster import KubeCluster, kube_cluster
from tests.support.local_cli import LocalCli


def _objects() -> list[tuple[hostile.HostileCase, dict[str, Any]]]:
    """Hostile cases that are one JSON-able MLModel object (what can reach the webhook)."""
    found = []
    for case in hostile.corpus_cases():
        if case.expect.startswith("("):
            continue
        try:
            docs = documents.parse_yaml(case.path.read_text(encoding="utf-8"))
        except (documents.ManifestError, UnicodeDecodeError):
            continue
        for obj in docs:
            if (
                is_mlmodel(obj)
                and obj.get("apiVersion") == "mlplatform.dev/v1alpha1"
                and validate_object(obj)[0] is None  # a multi-document file's valid neighbour
                and isinstance(obj.get("metadata"), dict)  # the API server checks ObjectMeta
            ):
                try:
                    json.dumps(obj)
                except (TypeError, ValueError):
                    continue  # bytes, sets...: not something the API server can send
                found.append((case, obj))
    return found


OBJECTS = _objects()


@pytest.fixture
async def webhook(tmp_path: Path) -> AsyncIterator[AdmissionClient]:
    cluster: KubeCluster
    async with kube_cluster() as cluster, webhook_operator(cluster, tmp_path / "certs") as client:
        yield client


async def test_the_webhook_denies_every_hostile_object_naming_the_field(
    webhook: AdmissionClient,
) -> None:
    assert len(OBJECTS) > 50
    for case, obj in OBJECTS:
        response = await webhook.review(admission.VALIDATE_ID, obj, operation="CREATE")
        assert response["allowed"] is False, case
        message = response["status"]["message"]
        # The webhook quotes the validator's FIELD: MESSAGE problems, joined by "; ".
        assert case.expect.split(": ")[0] in message, (case.name, message[:300])
        figures.add("hostile manifests tried (webhook)")


@pytest.mark.docker
def test_local_mode_creates_nothing_for_the_hostile_corpus(local: LocalCli) -> None:
    for case in hostile.corpus_cases():
        if case.name.startswith("multi-document"):
            continue  # its first document is valid on purpose
        (local.folder / case.name).write_bytes(case.path.read_bytes())
    result = local.run("--once", "--timeout", "30")
    figures.add("hostile manifests tried (local mode)", len(list(local.folder.iterdir())))
    assert result.returncode != 0
    assert "Traceback" not in result.stdout + result.stderr, result.stderr[-3000:]
    assert local.managed() == []
