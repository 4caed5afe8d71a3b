"""RBAC in ``manifests/`` grants exactly what the operator uses: no more, no less.

What the operator needs comes from two places:

- the Kubernetes client calls in ``mlplatform/kube/`` (found by walking the AST: each
  ``CustomObjectsApi``/``CoreV1Api`` method called maps to one verb on one resource), so a new
  call without a table entry here fails this test until someone decides its RBAC;
- the rules the plain-JSON requests (``runners/kubernetes/rest.py``) are limited to: the
  Kubernetes runner's ``api.RULES`` and the status write's ``kube.api.RULES`` (a ``Rest``
  refuses a request outside the rules it was made with, so these are all it can call), and
  no typed ``AppsV1Api``/``CoreV1Api`` call of the runner's around them;
- kopf's own needs for what the code registers (kopf's documentation, "Deployment > RBAC"):
  list/watch/patch of the watched resource (handlers, finalizers, progress annotations),
  create of Events, list/watch of CRDs and namespaces, and the peering objects when peering
  is on.

The rendered ``ClusterRole``(s) (``kubectl kustomize manifests``) must grant exactly that set.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlplatform.kube import api as kube_api
from mlplatform.runners.kubernetes import api as runner_api
from mlplatform.runners.kubernetes.rest import NotDeclared, Rest
from tests.support import installs

ROOT = Path(__file__).resolve().parents[2]
KUBE = ROOT / "operator" / "mlplatform" / "kube"
RUNNER = ROOT / "operator" / "mlplatform" / "runners" / "kubernetes"
MANIFESTS = ROOT / "manifests"

Rule = tuple[str, str, str]  # (apiGroup, resource, verb)

# The client methods the code may call, and the (group, resource, verb) each one needs.
# The resource of a custom-object call is read from the call's literal arguments.
CLIENT_METHODS: dict[str, str] = {
    "patch_namespaced_custom_object_status": "patch",
    "patch_cluster_custom_object_status": "patch",
    "patch_namespaced_custom_object": "patch",
    "list_namespaced_custom_object": "list",
    "list_cluster_custom_object": "list",
    "get_namespaced_custom_object": "get",
    "get_cluster_custom_object": "get",
    "create_namespaced_custom_object": "create",
    "create_cluster_custom_object": "create",
}
KNOWN_PLURALS = {
    "mlmodels": "mlplatform.dev",
    "kopfpeerings": "kopf.dev",
    "clusterkopfpeerings": "kopf.dev",
}

# kopf's own needs for what mlplatform registers (watching mlmodels, posting Events,
# discovering CRDs and namespaces, peering).
KOPF_NEEDS: set[Rule] = {
    ("mlplatform.dev", "mlmodels", "list"),
    ("mlplatform.dev", "mlmodels", "watch"),
    ("mlplatform.dev", "mlmodels", "patch"),
    ("mlplatform.dev", "mlmodels/status", "patch"),
    ("", "events", "create"),
    ("events.k8s.io", "events", "create"),
    ("apiextensions.k8s.io", "customresourcedefinitions", "list"),
    ("apiextensions.k8s.io", "customresourcedefinitions", "watch"),
    ("", "namespaces", "list"),
    ("", "namespaces", "watch"),
    # kopf's documented peering rules (docs/deployment-rbac.yaml: list, watch, patch, get).
    ("kopf.dev", "clusterkopfpeerings", "list"),
    ("kopf.dev", "clusterkopfpeerings", "watch"),
    ("kopf.dev", "clusterkopfpeerings", "patch"),
    ("kopf.dev", "clusterkopfpeerings", "get"),
    ("kopf.dev", "kopfpeerings", "list"),
    ("kopf.dev", "kopfpeerings", "watch"),
    ("kopf.dev", "kopfpeerings", "patch"),
    ("kopf.dev", "kopfpeerings", "get"),
}


def calls_in_code() -> set[Rule]:
    """The rules the client calls in ``mlplatform/kube/`` need (unknown methods fail)."""
    found: set[Rule] = set()
    for path in sorted(KUBE.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            method = node.func.attr
            if "custom_object" not in method and not method.startswith(
                ("list_namespace", "read_namespace", "create_namespaced_event")
            ):
                continue
            assert method in CLIENT_METHODS, f"{path.name}: {method} has no RBAC decision here"
            verb = CLIENT_METHODS[method]
            plurals = [
                arg.value
                for arg in node.args
                if isinstance(arg, ast.Constant) and arg.value in KNOWN_PLURALS
            ]
            # A call whose plural is a variable is the MLModel API (api.py passes PLURAL).
            plural = plurals[0] if plurals else "mlmodels"
            resource = f"{plural}/status" if method.endswith("_status") else plural
            found.add((KNOWN_PLURALS[plural], resource, verb))
    return found


def runner_calls() -> set[Rule]:
    """The rules the plain-JSON requests are limited to (the runner's and the status write's);
    the runner uses no typed API class of the official client besides."""
    for path in sorted(RUNNER.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            name = node.attr if isinstance(node, ast.Attribute) else getattr(node, "id", "")
            assert not str(name).endswith("Api"), f"{path.name}: {name} outside rest.RULES"
    return set(runner_api.RULES) | set(kube_api.RULES)


def test_a_request_outside_the_declared_rules_is_refused_before_it_is_sent() -> None:
    rest = Rest(object(), runner_api.RULES)  # no client: a request that got out would fail
    with pytest.raises(NotDeclared, match="create pods"):
        rest.request("create", runner_api.RESOURCES[runner_api.POD], namespace="a", timeout=1)
    with pytest.raises(NotDeclared, match="patch mlmodels/status"):
        rest.request("patch", kube_api.MLMODEL_STATUS, namespace="a", name="m", timeout=1)


def granted() -> set[Rule] | None:
    """Every (group, resource, verb) of the ClusterRoles/Roles rendered from manifests/.

    ``None`` only without kubectl: manifests/ rendering no role at all must fail, not skip.
    """
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        return None
    rendered = subprocess.run(
        [kubectl, "kustomize", str(MANIFESTS)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    return rules_of(yaml.safe_load_all(rendered), kinds=("ClusterRole", "Role"))


def rules_of(docs: Iterable[Any], *, kinds: tuple[str, ...]) -> set[Rule]:
    """Every (group, resource, verb) the roles of ``kinds`` among ``docs`` grant."""
    roles = [doc for doc in docs if isinstance(doc, dict) and doc.get("kind") in kinds]
    rules: set[Rule] = set()
    for role in roles:
        for rule in role.get("rules") or []:
            assert "*" not in rule.get("verbs", []), f"{role['metadata']['name']}: verb *"
            assert "*" not in rule.get("resources", []), f"{role['metadata']['name']}: resource *"
            for group in rule.get("apiGroups") or [""]:
                for resource in rule.get("resources") or []:
                    for verb in rule.get("verbs") or []:
                        rules.add((group, resource, verb))
    return rules


def test_every_kubernetes_call_in_the_operator_has_a_known_rbac_rule() -> None:
    needed = calls_in_code() | kube_api.RULES
    assert ("mlplatform.dev", "mlmodels/status", "patch") in needed, needed
    assert needed <= KOPF_NEEDS | {
        ("mlplatform.dev", "mlmodels", "list"),
        ("kopf.dev", "kopfpeerings", "create"),
        ("kopf.dev", "clusterkopfpeerings", "create"),
        ("kopf.dev", "kopfpeerings", "get"),
        ("kopf.dev", "clusterkopfpeerings", "get"),
    }


def test_the_kubernetes_runner_needs_its_workload_kinds_and_only_reads_pods() -> None:
    needed = runner_calls()
    verbs = {"get", "list", "watch", "create", "patch", "delete"}
    for group, plural in (("apps", "deployments"), ("", "services")):
        assert {(group, plural, verb) for verb in verbs} <= needed, (plural, needed)
    assert {verb for group, plural, verb in needed if plural == "pods"} == {"list", "watch"}


def test_the_cluster_role_grants_exactly_what_the_code_and_kopf_use() -> None:
    rules = granted()
    if rules is None:
        pytest.skip("kubectl is not installed: it renders manifests/ offline")
    needed = calls_in_code() | runner_calls() | KOPF_NEEDS
    # Both Event APIs are acceptable for kopf's posting; one of them is enough.
    optional = {("events.k8s.io", "events", "create"), ("", "events", "create")}
    missing = needed - rules - optional
    extra = rules - needed
    assert not missing, f"the ClusterRole lacks {sorted(missing)}"
    assert rules & optional, "the ClusterRole does not let kopf post Events"
    assert not extra, f"the ClusterRole grants more than the code uses: {sorted(extra)}"


# What only a cluster-wide watch needs: kopf's scanning (off when the operator watches named
# namespaces: kube.handlers.configure) and the cluster-wide peering object.
CLUSTER_ONLY = {"customresourcedefinitions", "namespaces", "clusterkopfpeerings"}


def test_a_namespaced_install_grants_in_each_namespace_exactly_the_namespaced_needs() -> None:
    if installs.kubectl() is None:
        pytest.skip("kubectl is not installed: it renders manifests/ offline")
    docs = installs.render(("namespaced", "peering", "kubernetes-runner"))
    assert rules_of(docs, kinds=("ClusterRole",)) == set()
    roles = [doc for doc in docs if doc["kind"] == "Role"]
    assert roles, "the namespaced component renders no Role"
    needed = {
        rule
        for rule in calls_in_code() | runner_calls() | KOPF_NEEDS
        if rule[1].split("/")[0] not in CLUSTER_ONLY
    }
    optional = {("events.k8s.io", "events", "create"), ("", "events", "create")}
    for role in roles:
        rules = rules_of([role], kinds=("Role",))
        where = role["metadata"]["namespace"]
        assert not needed - rules - optional, f"{where}: lacks {sorted(needed - rules - optional)}"
        assert rules & optional, f"{where}: kopf cannot post Events"
        assert not rules - needed, f"{where}: grants more than the code uses: {rules - needed}"
