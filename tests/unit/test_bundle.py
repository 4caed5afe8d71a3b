"""dist/install.yaml, the one-file install, is what the kustomize base renders: never stale."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support import installs

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "bundle.sh"
BUNDLE = ROOT / "dist" / "install.yaml"

pytestmark = pytest.mark.skipif(
    installs.kubectl() is None, reason="kubectl is not installed: it renders the bundle offline"
)


def _bundle(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=120, check=False
    )


def _docs(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def test_the_committed_bundle_is_what_the_script_generates_now() -> None:
    result = _bundle("--check")
    assert result.returncode == 0, result.stderr


def test_the_bundle_holds_the_objects_of_the_kustomize_base() -> None:
    docs = _docs(BUNDLE.read_text())
    assert docs == installs.render(())
    kinds = {doc["kind"] for doc in docs}
    assert {
        "CustomResourceDefinition",
        "ClusterRole",
        "Deployment",
        "ValidatingWebhookConfiguration",
        "MutatingWebhookConfiguration",
    } <= kinds


def test_a_stale_bundle_is_reported(tmp_path: Path) -> None:
    stale = tmp_path / "install.yaml"
    stale.write_text(BUNDLE.read_text().replace("replicas: 1", "replicas: 2"))
    result = _bundle("--check", "--output", str(stale))
    assert result.returncode == 1
    assert "stale" in result.stderr and "replicas: 2" in result.stderr


def test_a_bundle_of_ones_own_names_the_image_and_adds_the_components() -> None:
    reference = "registry.example.com:5000/platform/mlplatform-operator:0.1.0-rc.1"
    result = _bundle("--image", reference, "--component", "kubernetes-runner", "--output", "-")
    assert result.returncode == 0, result.stderr
    docs = _docs(result.stdout)
    [deployment] = [doc for doc in docs if doc["kind"] == "Deployment"]
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == reference
    container["image"] = "mlplatform-operator:0.1.0"
    assert docs == installs.render(("kubernetes-runner",))


def test_an_unknown_component_is_refused_before_anything_is_written() -> None:
    before = BUNDLE.read_bytes()
    result = _bundle("--component", "no-such-thing")
    assert result.returncode == 2
    assert "no component no-such-thing" in result.stderr
    assert BUNDLE.read_bytes() == before
