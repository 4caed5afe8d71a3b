"""The shipped ClusterRole, enforced by the real RBAC authorizer on the operator's token.

Every other test of this folder already runs the operator as its ServiceAccount; these ask
the authorizer directly: each request the code declares is allowed, and requests outside the
ClusterRole (Secrets, ConfigMaps, Nodes, other verbs) are refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from mlplatform.kube import api as kube_api
from mlplatform.runners.kubernetes import api as runner_api
from tests.cluster.conftest import ClusterTest
from tests.support.control_plane import (
    OPERATOR_NAMESPACE,
    ControlPlane,
    condition,
    is_ready,
    mlmodel,
)

RUNNER_ENV = {"RUNNERS_KUBERNETES_ENABLED": "true", "RUNNERS_DOCKER_ENABLED": "false"}

DECLARED = sorted(kube_api.RULES | runner_api.RULES)


@pytest.fixture(scope="module")
def operator_config(control_plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return control_plane.operator_kubeconfig(tmp_path_factory.mktemp("rbac") / "kubeconfig")


def can_i(plane: ControlPlane, config: Path, verb: str, group: str, resource: str) -> bool:
    target = f"{resource}.{group}" if group else resource
    done = plane.kubectl("auth", "can-i", verb, target, "-n", "some-team", kubeconfig=config,
                         check=False)  # fmt: skip
    return done.stdout.strip() == "yes"


@pytest.mark.parametrize(("group", "resource", "verb"), DECLARED, ids=str)
def test_every_request_the_code_declares_is_allowed_for_the_operators_token(
    control_plane: ControlPlane, operator_config: Path, group: str, resource: str, verb: str
) -> None:
    assert can_i(control_plane, operator_config, verb, group, resource)


@pytest.mark.parametrize(
    ("verb", "group", "resource"),
    [
        ("get", "", "secrets"),
        ("list", "", "configmaps"),
        ("get", "", "nodes"),
        ("delete", "", "pods"),
        ("create", "", "pods"),
        ("update", "mlplatform.dev", "mlmodels"),
        ("delete", "mlplatform.dev", "mlmodels"),
        ("create", "rbac.authorization.k8s.io", "clusterroles"),
    ],
)
def test_requests_outside_the_cluster_role_are_refused(
    control_plane: ControlPlane, operator_config: Path, verb: str, group: str, resource: str
) -> None:
    assert not can_i(control_plane, operator_config, verb, group, resource)


def test_a_refused_request_is_a_403_from_the_real_server(
    control_plane: ControlPlane, operator_config: Path
) -> None:
    done = control_plane.kubectl(
        "get", "secrets", "-n", "kube-system", kubeconfig=operator_config, check=False
    )
    assert done.returncode != 0
    assert "Forbidden" in done.stderr
    assert "system:serviceaccount:mlplatform-system:mlplatform-operator" in done.stderr


def test_a_permission_the_runner_lacks_is_the_models_reason_naming_it_until_granted(
    cluster: ClusterTest,
) -> None:
    """The operator under a role without Deployments: the real authorizer's 403 becomes
    Ready=False with reason Forbidden naming the verb, the resource and the ClusterRole (not
    a crash, not a silent retry); granted, the model comes up by itself."""
    plane, ns = cluster.plane, cluster.namespace
    account = f"limited-{ns}"
    shipped = plane.get("clusterrole", "", "mlplatform-operator")
    assert shipped is not None
    rules = [r for r in shipped["rules"] if "deployments" not in r.get("resources", [])]
    plane.apply(
        [
            {"apiVersion": "v1", "kind": "ServiceAccount",
             "metadata": {"name": account, "namespace": OPERATOR_NAMESPACE}},
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
             "metadata": {"name": account}, "rules": rules},
            _binding(account, account),
        ]
    )  # fmt: skip
    config = plane.operator_kubeconfig(cluster.folder / "limited.kubeconfig", account=account)
    try:
        cluster.operator(RUNNER_ENV, kubeconfig=config)
        cluster.transient_refusals = True  # the refusals are the point of this test
        container = {"image": "registry.example.com/iris:1.0", "ports": [8080]}
        body = {"id": "iris:1", "runner": "kubernetes", "container": container}
        plane.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(mlmodel("iris", ns, body)))
        refused = plane.wait_for(
            "mlmodel", ns, "iris",
            lambda o: condition(o, "Ready").get("reason") == "Forbidden", timeout=60,
        )  # fmt: skip
        message = condition(refused, "Ready")["message"]
        assert "deployments (apps)" in message and f"namespace {ns}" in message, message
        assert "ClusterRole mlplatform-operator" in message, message
        assert refused["status"].get("consecutiveFailures", 0) == 0  # not the model's failure
        warned = [e for e in plane.events(ns, "iris") if e["reason"] == "Forbidden"]
        assert len(warned) == 1, warned

        plane.apply([_binding(f"{account}-granted", account, role="mlplatform-operator")])
        plane.wait_for("mlmodel", ns, "iris", is_ready, timeout=90)
    finally:
        for kind, name in (("clusterrolebinding", account), ("clusterrolebinding",
                           f"{account}-granted"), ("clusterrole", account)):  # fmt: skip
            plane.kubectl("delete", kind, name, "--ignore-not-found", check=False)
        plane.kubectl("delete", "serviceaccount", account, "-n", OPERATOR_NAMESPACE,
                      "--ignore-not-found", check=False)  # fmt: skip


def _binding(name: str, account: str, *, role: str | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                    "name": role or name},
        "subjects": [{"kind": "ServiceAccount", "name": account,
                      "namespace": OPERATOR_NAMESPACE}],
    }  # fmt: skip
