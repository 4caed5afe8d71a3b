"""The kustomize install renders offline, and Kubernetes' schemas accept what it renders.

``manifests/`` (the CRD and the base) and every combination of ``manifests/components/``
(``tests/support/installs.py``) are rendered with ``kubectl kustomize`` and each object is
validated strictly with ``kubernetes-validate``; what each component promises is checked on
the objects of every combination that includes it, so no pair of components undoes another.
"""

from __future__ import annotations

import json
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlplatform.kube import crd, options
from tests.support import installs

ROOT = Path(__file__).resolve().parents[2]
KUBECTL = installs.kubectl()
COMBINATIONS = installs.every_combination()

pytestmark = pytest.mark.skipif(
    KUBECTL is None, reason="kubectl is not installed: it renders the kustomization offline"
)

Docs = list[dict[str, Any]]


def _render_folder(folder: Path) -> Docs:
    assert KUBECTL is not None
    result = subprocess.run(
        [KUBECTL, "kustomize", str(folder)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@pytest.fixture(scope="module")
def rendered() -> Docs:
    return _render_folder(ROOT / "manifests")


@pytest.fixture(scope="module")
def combinations() -> dict[tuple[str, ...], Docs]:
    """Every combination rendered once (two at a time: kubectl is a process each)."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip(COMBINATIONS, pool.map(installs.render, COMBINATIONS), strict=True))


def _deployment(docs: Docs) -> dict[str, Any]:
    [deployment] = [d for d in docs if d["kind"] == "Deployment"]
    return dict(deployment)


def _operator(docs: Docs) -> dict[str, Any]:
    [container] = _deployment(docs)["spec"]["template"]["spec"]["containers"]
    return dict(container)


def _environ(docs: Docs) -> dict[str, str]:
    return {e["name"]: e["value"] for e in _operator(docs)["env"]}


def _config(docs: Docs) -> options.OperatorConfig:
    """The configuration the rendered Deployment starts the operator with."""
    from mlplatform.cli import _parser

    container = _operator(docs)
    return options.load(_parser().parse_args(container["args"]), environ=_environ(docs))


def test_the_kustomization_renders_the_crd_as_generated(rendered: Docs) -> None:
    crds = [doc for doc in rendered if doc["kind"] == "CustomResourceDefinition"]
    assert crds == [crd.build()]


def test_every_rendered_document_passes_kubernetes_validate_strictly(rendered: Docs) -> None:
    failures = [failure for doc in rendered for failure in installs.strict_failures(doc)]
    assert failures == []
    assert rendered


def test_the_base_is_the_empty_combination_of_components(
    rendered: Docs, combinations: dict[tuple[str, ...], Docs]
) -> None:
    assert combinations[()] == rendered


def test_every_combination_of_components_validates_strictly(
    combinations: dict[tuple[str, ...], Docs],
) -> None:
    assert len(combinations) == 2 ** len(installs.COMPONENTS)
    failures = [
        f"{'+'.join(combination) or 'base'}: {failure}"
        for combination, docs in combinations.items()
        for doc in docs
        for failure in installs.strict_failures(doc)
    ]
    assert failures == []


def _unordered_env(docs: Docs) -> Docs:
    """The objects with the operator's variables sorted: kustomize lists the ones a patch
    merged first, so their order follows the components' (nothing refers to another)."""
    docs = json.loads(json.dumps(docs))
    for container in _deployment(docs)["spec"]["template"]["spec"]["containers"]:
        assert not any("$(" in e.get("value", "") for e in container["env"])
        container["env"].sort(key=lambda e: e["name"])
    return docs


def test_components_compose_in_any_order(combinations: dict[tuple[str, ...], Docs]) -> None:
    everything = installs.COMPONENTS
    assert _unordered_env(installs.render(tuple(reversed(everything)))) == _unordered_env(
        combinations[everything]
    )


def test_every_combination_holds_each_object_once_and_each_variable_once(
    combinations: dict[tuple[str, ...], Docs],
) -> None:
    for combination, docs in combinations.items():
        keys = [(d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"]) for d in docs]
        assert len(keys) == len(set(keys)), combination
        names = [e["name"] for e in _operator(docs)["env"]]
        assert len(names) == len(set(names)), (combination, names)


def test_every_combination_starts_the_operator_with_a_valid_configuration(
    combinations: dict[tuple[str, ...], Docs],
) -> None:
    for combination, docs in combinations.items():
        config = _config(docs)
        assert config.standalone is ("peering" not in combination), combination
        expected = ["models"] if "namespaced" in combination else []
        assert config.namespaces == expected, combination
        environ = _environ(docs)
        assert (environ["RUNNERS_DOCKER_ENABLED"] == "true") is (
            "kubernetes-runner" not in combination
        )


def test_the_kubernetes_runner_runs_without_docker_as_non_root_read_only(
    combinations: dict[tuple[str, ...], Docs],
) -> None:
    for combination, docs in combinations.items():
        if "kubernetes-runner" not in combination:
            continue
        pod = _deployment(docs)["spec"]["template"]["spec"]
        container = _operator(docs)
        env = _environ(docs)
        assert env["RUNNERS_DOCKER_ENABLED"] == "false"
        assert env["RUNNERS_KUBERNETES_ENABLED"] == "true"
        assert not {"DOCKER_HOST", "STORAGE_DIR", "DATA_DIR", "MLMODELS_DIR"} & env.keys()
        assert not pod.get("hostNetwork")
        assert all("hostPath" not in volume for volume in pod["volumes"])
        assert "docker" not in yaml.safe_dump(pod["volumes"] + container["volumeMounts"])
        mounted = {m["name"] for m in container["volumeMounts"]}
        assert mounted == {v["name"] for v in pod["volumes"]} == {"tls"}
        context = container["securityContext"]
        assert context["runAsNonRoot"] is True and context["runAsUser"] != 0
        assert context["readOnlyRootFilesystem"] is True
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"] == {"drop": ["ALL"]}
        [namespace] = [d for d in docs if d["kind"] == "Namespace"]
        assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == (
            "restricted"
        ), combination
        assert any(d["kind"] == "CustomResourceDefinition" for d in docs)


def test_the_docker_runner_keeps_the_socket_and_its_storage(
    combinations: dict[tuple[str, ...], Docs],
) -> None:
    for combination, docs in combinations.items():
        if "kubernetes-runner" in combination:
            continue
        pod = _deployment(docs)["spec"]["template"]["spec"]
        paths = {v["hostPath"]["path"] for v in pod["volumes"] if "hostPath" in v}
        assert paths == {"/var/run/docker.sock", "/var/lib/mlplatform"}, combination
        assert _environ(docs)["DOCKER_HOST"] == "unix:///var/run/docker.sock"


def test_a_namespaced_install_holds_roles_in_the_watched_namespaces_and_no_cluster_role(
    combinations: dict[tuple[str, ...], Docs],
) -> None:
    for combination, docs in combinations.items():
        cluster_rbac = [d for d in docs if d["kind"] in ("ClusterRole", "ClusterRoleBinding")]
        roles = [d for d in docs if d["kind"] in ("Role", "RoleBinding")]
        if "namespaced" not in combination:
            assert len(cluster_rbac) == 2 and roles == [], combination
            continue
        assert cluster_rbac == [], combination
        watched = _config(docs).namespaces
        assert sorted(d["metadata"]["namespace"] for d in roles) == sorted(watched * 2)
        for binding in (d for d in roles if d["kind"] == "RoleBinding"):
            [subject] = binding["subjects"]
            assert subject == {
                "kind": "ServiceAccount",
                "name": _deployment(docs)["spec"]["template"]["spec"]["serviceAccountName"],
                "namespace": "mlplatform-system",
            }


def test_cert_manager_mounts_the_certificate_and_the_webhooks_then_refuse(
    combinations: dict[tuple[str, ...], Docs],
) -> None:
    for combination, docs in combinations.items():
        webhooks = [d for d in docs if d["kind"].endswith("WebhookConfiguration")]
        assert len(webhooks) == 2
        policies = {hook["failurePolicy"] for d in webhooks for hook in d["webhooks"]}
        volumes = _deployment(docs)["spec"]["template"]["spec"]["volumes"]
        [tls] = [v for v in volumes if v["name"] == "tls"]
        if "cert-manager" not in combination:
            assert policies == {"Ignore"}
            assert tls == {"name": "tls", "emptyDir": {}}
            assert all("annotations" not in d["metadata"] for d in webhooks)
            continue
        [certificate] = [d for d in docs if d["kind"] == "Certificate"]
        assert policies == {"Fail"}
        assert tls == {"name": "tls", "secret": {"secretName": certificate["spec"]["secretName"]}}
        meta = certificate["metadata"]
        for webhook in webhooks:
            injected = webhook["metadata"]["annotations"]["cert-manager.io/inject-ca-from"]
            assert injected == f"{meta['namespace']}/{meta['name']}"
        [service] = [
            d
            for d in docs
            if d["kind"] == "Service" and d["metadata"]["name"] == "mlplatform-webhook"
        ]
        assert (
            f"{service['metadata']['name']}.{service['metadata']['namespace']}.svc"
            in certificate["spec"]["dnsNames"]
        )


def test_the_operator_is_ready_only_when_the_webhook_port_answers(rendered: Docs) -> None:
    container = _operator(rendered)
    assert container["readinessProbe"]["tcpSocket"] == {"port": "webhook"}
    assert {"name": "webhook", "containerPort": 9443} in container["ports"]


def test_peering_replicas_get_distinct_priorities_and_the_docs_say_so(
    combinations: dict[tuple[str, ...], Docs],
) -> None:
    docs = combinations[("peering",)]
    assert sum(d["kind"] == "CustomResourceDefinition" for d in docs) == 3
    config = _config(docs)
    assert not config.standalone
    # No fixed priority: every replica computes its own ("auto").
    assert not any(arg.startswith("--priority") for arg in _operator(docs)["args"])
    first = config.peering_priority(now=1_800_000_000.0, pid=7)
    second = config.peering_priority(now=1_800_000_020.0, pid=7)
    same_second = config.peering_priority(now=1_800_000_000.0, pid=8)
    assert first > second > 0  # the earlier start leads; the later one waits
    assert same_second != first
    text = (ROOT / "docs" / "operator.md").read_text()
    assert "--priority" in text and "waits" in text


def test_the_monitoring_component_scrapes_the_metrics_port(
    combinations: dict[tuple[str, ...], Docs],
) -> None:
    docs = combinations[("monitoring",)]
    [monitor] = [d for d in docs if d["kind"] == "ServiceMonitor"]
    [service] = [
        d for d in docs if d["kind"] == "Service" and d["metadata"]["name"].endswith("metrics")
    ]
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    assert monitor["spec"]["namespaceSelector"]["matchNames"] == [service["metadata"]["namespace"]]
    [endpoint] = monitor["spec"]["endpoints"]
    assert endpoint["port"] == service["spec"]["ports"][0]["name"] == "metrics"
    assert service["spec"]["ports"][0]["targetPort"] == "metrics"
    assert {"name": "metrics", "containerPort": 9090} in _operator(docs)["ports"]
    assert _config(docs).metrics_port == 9090


def test_each_overlay_is_the_base_with_its_one_component(
    combinations: dict[tuple[str, ...], Docs],
) -> None:
    overlays = sorted(p.name for p in (ROOT / "manifests" / "overlays").iterdir())
    assert overlays and set(overlays) <= set(installs.COMPONENTS)
    for name in overlays:
        assert _render_folder(ROOT / "manifests" / "overlays" / name) == combinations[(name,)]


def test_the_common_combinations_are_real_combinations() -> None:
    for combination in installs.COMMON:
        assert set(combination) <= set(installs.COMPONENTS)
        assert len(set(combination)) == len(combination)
    assert set(installs.REQUIRES) <= set(installs.COMPONENTS)
