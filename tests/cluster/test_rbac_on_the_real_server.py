"""The shipped ClusterRole, enforced by the real RBAC authorizer on the operator's token.

Every other test of this folder already runs the operator as its ServiceAccount; these ask
the authorizer directly: each request the code declares is allowed, and requests outside the
ClusterRole (Secrets, ConfigMaps, Nodes, other verbs) are refused.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mlplatform.kube import api as kube_api
from mlplatform.runners.kubernetes import api as runner_api
from tests.support.control_plane import ControlPlane

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
