"""RBAC in ``manifests/`` grants exactly what the operator uses: no more, no less.

What the operator needs comes from two places:

- the Kubernetes client calls in ``mlplatform/kube/`` (found by walking the AST: each
  ``CustomObjectsApi``/``CoreV1Api`` method called maps to one verb on one resource), so a new
  call without a table entry here fails this test until someone decides its RBAC;
- the client methods the Kubernetes runner (``mlplatform/runners/kubernetes/``) uses: every
  ``AppsV1Api``/``CoreV1Api`` method it names (called, or passed to its error wrapper) maps
  to its verbs in ``RUNNER_METHODS``; a cluster-wide list method is also its watch;
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
from pathlib import Path

import pytest
import yaml

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
# The Kubernetes runner's typed client methods and the rules each needs.
_RUNNER_KINDS = {
    "deployment": ("apps", "deployments"),
    "service": ("", "services"),
    "persistent_volume_claim": ("", "persistentvolumeclaims"),
    "pod": ("", "pods"),
}
RUNNER_METHODS: dict[str, set[Rule]] = {}
for _kind, (_group, _plural) in _RUNNER_KINDS.items():
    RUNNER_METHODS[f"read_namespaced_{_kind}"] = {(_group, _plural, "get")}
    RUNNER_METHODS[f"create_namespaced_{_kind}"] = {(_group, _plural, "create")}
    RUNNER_METHODS[f"patch_namespaced_{_kind}"] = {(_group, _plural, "patch")}
    RUNNER_METHODS[f"delete_namespaced_{_kind}"] = {(_group, _plural, "delete")}
    RUNNER_METHODS[f"list_namespaced_{_kind}"] = {(_group, _plural, "list")}
    RUNNER_METHODS[f"list_{_kind}_for_all_namespaces"] = {
        (_group, _plural, "list"),
        (_group, _plural, "watch"),
    }
_CLIENT_VERBS = ("read_", "create_", "patch_", "delete_", "list_", "replace_", "watch_")
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
    """The rules the Kubernetes runner's client methods need (unknown methods fail)."""
    found: set[Rule] = set()
    for path in sorted(RUNNER.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Attribute) or not node.attr.startswith(_CLIENT_VERBS):
                continue
            base = node.value
            if not (isinstance(base, ast.Attribute) and base.attr in {"_apps", "_core"}):
                continue
            assert node.attr in RUNNER_METHODS, f"{path.name}: {node.attr} has no RBAC decision"
            found |= RUNNER_METHODS[node.attr]
    return found


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
    roles = [
        doc
        for doc in yaml.safe_load_all(rendered)
        if isinstance(doc, dict) and doc.get("kind") in ("ClusterRole", "Role")
    ]
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
    needed = calls_in_code()
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
