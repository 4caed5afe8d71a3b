"""`kubectl kustomize manifests/` renders offline; Kubernetes' schemas accept what it renders."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from mlplatform.kube import crd
from mlplatform.models.spec import KIND
from tests.support import cel_harness

ROOT = Path(__file__).resolve().parents[2]
KUBECTL = shutil.which("kubectl")

pytestmark = pytest.mark.skipif(
    KUBECTL is None, reason="kubectl is not installed: it renders the kustomization offline"
)


@pytest.fixture(scope="module")
def rendered() -> list[dict[str, Any]]:
    assert KUBECTL is not None
    result = subprocess.run(
        [KUBECTL, "kustomize", str(ROOT / "manifests")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def test_the_kustomization_renders_the_crd_as_generated(rendered: list[dict[str, Any]]) -> None:
    crds = [doc for doc in rendered if doc["kind"] == "CustomResourceDefinition"]
    assert crds == [crd.build()]


def test_every_rendered_document_passes_kubernetes_validate_strictly(
    rendered: list[dict[str, Any]],
) -> None:
    version = kubernetes_validate.latest_version()
    failures: list[str] = []
    for doc in rendered:
        where = f"{doc['kind']}/{doc['metadata']['name']}"
        if doc["kind"] == KIND:
            # Our own kind: kubernetes-validate has no schema for it; the CRD (offline) does.
            failures.extend(f"{where}: {message}" for message in cel_harness.validate(doc))
            continue
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            failures.append(f"{where}: {error}")
    assert failures == []
    assert rendered
