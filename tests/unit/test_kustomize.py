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


def _render(folder: str) -> list[dict[str, Any]]:
    assert KUBECTL is not None
    result = subprocess.run(
        [KUBECTL, "kustomize", str(ROOT / folder)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def test_the_kubernetes_runner_overlay_runs_without_docker_as_non_root_read_only() -> None:
    rendered = _render("manifests/overlays/kubernetes-runner")
    version = kubernetes_validate.latest_version()
    for doc in rendered:
        if doc["kind"] != KIND:
            kubernetes_validate.validate(doc, version, strict=True)
    [deployment] = [d for d in rendered if d["kind"] == "Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["RUNNERS_DOCKER_ENABLED"] == "false"
    assert env["RUNNERS_KUBERNETES_ENABLED"] == "true"
    assert "DOCKER_HOST" not in env
    assert not pod.get("hostNetwork")
    assert all("hostPath" not in volume for volume in pod["volumes"])
    assert "docker" not in yaml.safe_dump(pod["volumes"] + container["volumeMounts"])
    context = container["securityContext"]
    assert context["runAsNonRoot"] is True and context["runAsUser"] != 0
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert any(d["kind"] == "CustomResourceDefinition" for d in rendered)


def _operator(docs: list[dict[str, Any]]) -> dict[str, Any]:
    [deployment] = [d for d in docs if d["kind"] == "Deployment"]
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    return dict(container)


def test_the_operator_is_ready_only_when_the_webhook_port_answers(
    rendered: list[dict[str, Any]],
) -> None:
    container = _operator(rendered)
    assert container["readinessProbe"]["tcpSocket"] == {"port": "webhook"}
    assert {"name": "webhook", "containerPort": 9443} in container["ports"]


def test_peering_replicas_get_distinct_priorities_and_the_docs_say_so() -> None:
    from mlplatform.cli import _parser
    from mlplatform.kube import options

    container = _operator(_render("manifests/overlays/peering"))
    args = container["args"]
    assert "--standalone" not in args
    # No fixed priority: every replica computes its own ("auto").
    assert not any(arg.startswith("--priority") for arg in args)
    config = options.load(_parser().parse_args(args), environ={})
    first = config.peering_priority(now=1_800_000_000.0, pid=7)
    second = config.peering_priority(now=1_800_000_020.0, pid=7)
    same_second = config.peering_priority(now=1_800_000_000.0, pid=8)
    assert first > second > 0  # the earlier start leads; the later one waits
    assert same_second != first
    docs = (ROOT / "docs" / "operator.md").read_text()
    assert "--priority" in docs and "waits" in docs


def test_the_monitoring_overlay_scrapes_the_metrics_port() -> None:
    docs = _render("manifests/overlays/monitoring")
    [monitor] = [d for d in docs if d["kind"] == "ServiceMonitor"]
    [service] = [
        d for d in docs if d["kind"] == "Service" and d["metadata"]["name"].endswith("metrics")
    ]
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    [endpoint] = monitor["spec"]["endpoints"]
    assert endpoint["port"] == service["spec"]["ports"][0]["name"] == "metrics"
    assert service["spec"]["ports"][0]["targetPort"] == "metrics"
    assert {"name": "metrics", "containerPort": 9090} in _operator(docs)["ports"]
    version = kubernetes_validate.latest_version()
    kubernetes_validate.validate(service, version, strict=True)
