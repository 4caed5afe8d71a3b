"""The Helm chart (charts/mlplatform) renders the kustomize install's objects: one source of truth.

Helm is built from Go modules (``tests/helm/build``, by ``scripts/helm-build.sh``, which
``scripts/test.sh`` calls) and cached machine-wide by version. For every combination of
kustomize components the chart has a value for (all but ``dev``), ``helm template`` with the
matching values must give the very objects ``kubectl kustomize`` gives, Helm's own labels
aside; ``helm lint --strict`` passes; the values the base has no counterpart for land where
they should; bad values are refused with a message.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support import installs

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "mlplatform"
NAMESPACE = "mlplatform-system"
HELM_LABELS = ("helm.sh/chart", "app.kubernetes.io/managed-by", "app.kubernetes.io/instance")
# The chart's value for each component (dev has none: it is for development clusters).
VALUES: dict[str, dict[str, Any]] = {
    "cert-manager": {"webhook": {"certificates": "cert-manager"}},
    "peering": {"peering": {"enabled": True}},
    "monitoring": {"monitoring": {"serviceMonitor": True}},
    "kubernetes-runner": {"runners": {"docker": {"enabled": False}}},
    "namespaced": {"namespaces": ["models"]},
}
CHART_COMBINATIONS = [c for c in installs.every_combination() if "dev" not in c]

Docs = list[dict[str, Any]]

pytestmark = pytest.mark.skipif(
    installs.kubectl() is None, reason="kubectl is not installed: it renders the kustomization"
)


@pytest.fixture(scope="module")
def helm() -> str:
    path = subprocess.run(
        ["bash", str(ROOT / "scripts" / "helm-build.sh"), "--path"],
        capture_output=True,
        text=True,
        check=False,
    )
    if path.returncode != 0:
        pytest.fail(f"helm is not built: run scripts/helm-build.sh (scripts/test.sh does): {path}")
    return path.stdout.strip()


def _merge(into: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    for key, value in values.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value
    return into


def values_for(combination: tuple[str, ...]) -> dict[str, Any]:
    """The chart's values that mean the kustomize base with ``combination``."""
    values: dict[str, Any] = {"namespace": {"create": True}}
    for component in combination:
        _merge(values, json.loads(json.dumps(VALUES[component])))
    return values


def template(
    helm: str, values: dict[str, Any], tmp_path: Path, *extra: str
) -> subprocess.CompletedProcess[str]:
    given = tmp_path / "values.yaml"
    given.write_text(yaml.safe_dump(values))
    return subprocess.run(
        [
            *(helm, "template", "mlplatform", str(CHART), "--namespace", NAMESPACE),
            *("--include-crds", "--values", str(given), *extra),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def render_chart(helm: str, values: dict[str, Any], tmp_path: Path) -> Docs:
    result = template(helm, values, tmp_path)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def comparable(docs: Docs) -> list[dict[str, Any]]:
    """The objects without Helm's labels, in one order, the pod's keyed lists (variables,
    volumes, mounts: Kubernetes merges them by key) sorted by key: kustomize lists the
    entries a component patched first."""
    docs = json.loads(json.dumps(docs))
    for doc in docs:
        labels = doc["metadata"].get("labels", {})
        for label in HELM_LABELS:
            labels.pop(label, None)
        if "labels" in doc["metadata"] and not labels:
            del doc["metadata"]["labels"]
        if doc["kind"] == "Deployment":
            pod = doc["spec"]["template"]["spec"]
            pod["volumes"].sort(key=lambda v: v["name"])
            for container in pod["containers"]:
                container["env"].sort(key=lambda e: e["name"])
                container["volumeMounts"].sort(key=lambda m: m["mountPath"])
    return sorted(
        docs,
        key=lambda d: (d["kind"], d["metadata"].get("namespace", ""), d["metadata"]["name"]),
    )


def _deployment(docs: Docs) -> dict[str, Any]:
    [deployment] = [d for d in docs if d["kind"] == "Deployment"]
    return dict(deployment)


def test_helm_lint_passes_strictly_with_each_components_values(helm: str, tmp_path: Path) -> None:
    for combination in ((), *[(c,) for c in VALUES], tuple(VALUES)):
        given = tmp_path / "values.yaml"
        given.write_text(yaml.safe_dump(values_for(combination)))
        result = subprocess.run(
            [helm, "lint", "--strict", str(CHART), "--namespace", NAMESPACE, "-f", str(given)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, (combination, result.stdout + result.stderr)


@pytest.mark.parametrize("combination", CHART_COMBINATIONS, ids=lambda c: "+".join(c) or "base")
def test_the_chart_renders_the_kustomize_objects_with_the_same_settings(
    helm: str, combination: tuple[str, ...], tmp_path: Path
) -> None:
    chart = comparable(render_chart(helm, values_for(combination), tmp_path))
    kustomize = comparable(installs.render(combination))
    assert [(d["kind"], d["metadata"]["name"]) for d in chart] == [
        (d["kind"], d["metadata"]["name"]) for d in kustomize
    ]
    assert chart == kustomize


def test_the_charts_crd_is_the_generated_one_byte_for_byte() -> None:
    assert [p.name for p in (CHART / "crds").iterdir()] == ["mlmodels.mlplatform.dev.yaml"]
    assert (CHART / "crds" / "mlmodels.mlplatform.dev.yaml").read_bytes() == (
        ROOT / "crds" / "mlmodels.mlplatform.dev.yaml"
    ).read_bytes()


def test_the_chart_version_follows_the_package(helm: str) -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    project = (ROOT / "pyproject.toml").read_text()
    assert f'version = "{chart["appVersion"]}"' in project


def test_values_without_a_component_land_in_the_deployment(helm: str, tmp_path: Path) -> None:
    values = {
        "image": {"repository": "registry.example.com/platform/mlplatform-operator", "tag": "9.9"},
        "replicas": 2,
        "peering": {"enabled": True},
        "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}},
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "ml"}],
        "extraEnv": [{"name": "MLPLATFORM_WORKERS", "value": "16"}],
        "imagePullSecrets": [{"name": "registry"}],
        "runners": {"kubernetes": {"enabled": False, "storageClass": "fast"}},
        "monitoring": {"serviceMonitor": True, "serviceMonitorLabels": {"release": "kps"}},
    }
    docs = render_chart(helm, values, tmp_path)
    failures = [failure for doc in docs for failure in installs.strict_failures(doc)]
    assert failures == []
    deployment = _deployment(docs)
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert deployment["spec"]["replicas"] == 2
    assert container["image"] == "registry.example.com/platform/mlplatform-operator:9.9"
    # Helm merges maps: the requests given, the limits the chart's (null removes them).
    assert container["resources"] == {
        "requests": {"cpu": "100m", "memory": "256Mi"},
        "limits": {"cpu": "1", "memory": "512Mi"},
    }
    assert pod["nodeSelector"] == {"kubernetes.io/os": "linux"}
    assert pod["tolerations"] == values["tolerations"]
    assert pod["imagePullSecrets"] == [{"name": "registry"}]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["MLPLATFORM_WORKERS"] == "16"
    assert env["RUNNERS_KUBERNETES_ENABLED"] == "false"
    assert env["RUNNERS_KUBERNETES_STORAGE_CLASS"] == "fast"
    assert env["MLPLATFORM_STANDALONE"] == "false"
    [monitor] = [d for d in docs if d["kind"] == "ServiceMonitor"]
    assert monitor["metadata"]["labels"]["release"] == "kps"
    assert not [d for d in docs if d["kind"] == "Namespace"]  # namespace.create: false


def test_the_default_image_is_the_charts_app_version(helm: str, tmp_path: Path) -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    [container] = _deployment(render_chart(helm, {}, tmp_path))["spec"]["template"]["spec"][
        "containers"
    ]
    assert container["image"] == f"mlplatform-operator:{chart['appVersion']}"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"replicas": 2}, "replicas > 1 needs peering.enabled"),
        # values.schema.json: Helm refuses them before rendering.
        ({"webhook": {"certificates": "vault"}}, "/webhook/certificates"),
        ({"namespaces": ["team-*"]}, "/namespaces/0"),
        ({"replica": 2}, "replica"),  # a typo is not silently ignored
    ],
)
def test_values_that_cannot_work_are_refused_with_a_message(
    helm: str, values: dict[str, Any], message: str, tmp_path: Path
) -> None:
    result = template(helm, values, tmp_path)
    assert result.returncode != 0
    assert message in result.stderr
