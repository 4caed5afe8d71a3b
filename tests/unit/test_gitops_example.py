"""The GitOps repository layout of docs/gitops.md exists (manifests/examples/gitops) and renders.

Every kustomization in it renders offline; the platform's objects are valid strictly; the
environments' models pass ``mlplatform validate`` as the documented pipeline runs it; the
platform serves every namespace a model lands in; the Argo CD and Flux objects point at
folders that exist and at models that those folders render.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support import installs

ROOT = Path(__file__).resolve().parents[2]
GITOPS = ROOT / "manifests" / "examples" / "gitops"
MLPLATFORM = ROOT / ".venv" / "bin" / "mlplatform"
ENVIRONMENTS = ("staging", "prod")

pytestmark = pytest.mark.skipif(
    installs.kubectl() is None, reason="kubectl is not installed: it renders offline"
)

Docs = list[dict[str, Any]]


def _render_text(folder: Path) -> str:
    result = subprocess.run(
        [str(installs.kubectl()), "kustomize", str(folder)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"{folder}: {result.stderr}"
    return result.stdout


def _render(folder: Path) -> Docs:
    return [doc for doc in yaml.safe_load_all(_render_text(folder)) if doc]


@pytest.fixture(scope="module")
def platform() -> Docs:
    return _render(GITOPS / "platform")


def _watched(platform: Docs) -> set[str]:
    [deployment] = [d for d in platform if d["kind"] == "Deployment"]
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e["value"] for e in container["env"]}
    return set(env["MLPLATFORM_NAMESPACES"].split(","))


def test_every_kustomization_of_the_layout_renders() -> None:
    folders = sorted(p.parent for p in GITOPS.rglob("kustomization.yaml"))
    assert {f.relative_to(GITOPS).as_posix() for f in folders} >= {
        "platform",
        "models",
        "overlays/staging",
        "overlays/prod",
        "argocd",
        "flux",
    }
    for folder in folders:
        assert _render(folder), folder


def test_the_platform_is_valid_strictly_and_pulls_the_operator_from_a_registry(
    platform: Docs,
) -> None:
    failures = [failure for doc in platform for failure in installs.strict_failures(doc)]
    assert failures == []
    [deployment] = [d for d in platform if d["kind"] == "Deployment"]
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "registry.example.com/platform/mlplatform-operator:0.1.0"


def test_the_platform_holds_a_role_in_each_namespace_it_watches_and_creates_them(
    platform: Docs,
) -> None:
    watched = _watched(platform)
    assert watched == {"serving", "serving-canary"}
    assert not [d for d in platform if d["kind"] in ("ClusterRole", "ClusterRoleBinding")]
    for kind in ("Role", "RoleBinding"):
        assert {d["metadata"]["namespace"] for d in platform if d["kind"] == kind} == watched
    assert watched <= {d["metadata"]["name"] for d in platform if d["kind"] == "Namespace"}


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_each_environments_models_pass_the_documented_validation_pipeline(
    environment: str, platform: Docs
) -> None:
    # kubectl kustomize overlays/<env> | mlplatform validate --require-models -
    rendered = _render_text(GITOPS / "overlays" / environment)
    result = subprocess.run(
        [str(MLPLATFORM), "validate", "--require-models", "-"],
        input=rendered,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    models = [doc for doc in yaml.safe_load_all(rendered) if doc]
    assert models and all(doc["kind"] == "MLModel" for doc in models)
    assert {m["metadata"]["namespace"] for m in models} <= _watched(platform)
    # The platform runs only the Kubernetes runner: every model asks for it.
    assert {m["spec"]["runner"] for m in models} == {"kubernetes"}
    ids = [m["spec"]["id"] for m in models]
    assert len(ids) == len(set(ids)), "ids are unique in a cluster"


def _sources(docs: Docs) -> list[str]:
    paths: list[str] = []
    for doc in docs:
        if doc["kind"] == "ApplicationSet":
            template = doc["spec"]["template"]["spec"]["source"]["path"]
            elements = doc["spec"]["generators"][0]["list"]["elements"]
            paths.extend(template.replace("{{.cluster}}", e["cluster"]) for e in elements)
        elif doc["kind"] == "Kustomization" and "sourceRef" in doc["spec"]:
            paths.append(doc["spec"]["path"].removeprefix("./"))
    return paths


def test_argo_cd_applies_folders_that_exist_and_carries_the_health_check() -> None:
    docs = _render(GITOPS / "argocd")
    sources = _sources(docs)
    assert sorted(sources) == sorted(
        ["manifests/examples/gitops/platform"] * 2
        + [f"manifests/examples/gitops/overlays/{env}" for env in ENVIRONMENTS]
    )
    for source in sources:
        assert (ROOT / source / "kustomization.yaml").is_file(), source
    [config_map] = [d for d in docs if d["kind"] == "ConfigMap"]
    script = (ROOT / "manifests" / "argocd" / "mlmodel-health.lua").read_text()
    assert config_map["data"]["resource.customizations.health.mlplatform.dev_MLModel"] == script


def test_flux_waits_for_the_operator_then_checks_every_model_it_applies() -> None:
    docs = _render(GITOPS / "flux")
    kustomizations = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Kustomization"}
    platform, models = kustomizations["mlplatform"], kustomizations["mlplatform-models"]
    assert platform["spec"]["wait"] is True
    assert models["spec"]["dependsOn"] == [{"name": "mlplatform"}]
    for source in _sources(docs):
        assert (ROOT / source / "kustomization.yaml").is_file(), source
    applied = _render(ROOT / models["spec"]["path"])
    expected = {
        ("mlplatform.dev/v1alpha1", "MLModel", m["metadata"]["name"], m["metadata"]["namespace"])
        for m in applied
        if not m["spec"].get("suspend")
    }
    checked = {
        (c["apiVersion"], c["kind"], c["name"], c["namespace"])
        for c in models["spec"]["healthChecks"]
    }
    assert checked == expected
