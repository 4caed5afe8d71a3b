"""The CRD and the admission webhook on the real API server, through ``kubectl``.

The corpus (``tests/corpus/invalid``, ``manifests/examples``) that the offline CEL harness and
the webhook's unit tests run is sent to kube-apiserver with ``kubectl apply
--dry-run=server``: the real OpenAPI validation, the real CEL evaluator within the real cost
budget, the real webhook call over TLS with the ``caBundle`` we register.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from tests.cluster.conftest import ClusterTest
from tests.support import corpus
from tests.support.control_plane import ControlPlane, wait_until

INVALID = corpus.invalid_cases()
VALID = corpus.valid_objects()


def dry_run(cluster: ClusterTest, obj: dict[str, Any]) -> tuple[bool, str]:
    """(accepted, the server's words) for ``kubectl apply --dry-run=server`` of ``obj``."""
    placed = copy.deepcopy(obj)
    if isinstance(placed.get("metadata"), dict):
        placed["metadata"]["namespace"] = cluster.namespace
    done = cluster.plane.kubectl(
        "apply", "--dry-run=server", "-f", "-", stdin=yaml.safe_dump(placed), check=False
    )
    return done.returncode == 0, (done.stdout + done.stderr).strip()


def test_the_crd_is_established_with_every_cel_rule_it_was_applied_with(
    control_plane: ControlPlane,
) -> None:
    served = control_plane.get("crd", "", "mlmodels.mlplatform.dev")
    assert served is not None
    conditions = {c["type"]: c["status"] for c in served["status"]["conditions"]}
    assert conditions["Established"] == "True"
    assert conditions["NamesAccepted"] == "True"
    shipped = yaml.safe_load((corpus.ROOT / "crds" / "mlmodels.mlplatform.dev.yaml").read_text())
    assert _rules(served) == _rules(shipped)
    assert len(_rules(served)) >= 10


def _rules(crd: dict[str, Any]) -> list[str]:
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            found.extend(rule["rule"] for rule in node.get("x-kubernetes-validations", []))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(crd["spec"]["versions"])
    return sorted(found)


@pytest.mark.parametrize("case", INVALID, ids=str)
def test_schema_and_cel_alone_refuse_each_invalid_manifest_naming_the_field(
    cluster: ClusterTest, case: corpus.Case
) -> None:
    accepted, words = dry_run(cluster, case.obj)
    if not case.crd_expressible:
        # Only the webhook and the offline validator can catch it (the case says why).
        assert accepted, words
        return
    assert not accepted, f"the real server accepted {case.name}"
    if not case.reaches_webhook:
        # Another kind or an unserved version: nothing serves it (kubectl's discovery says so).
        assert f'no matches for kind "{case.obj.get("kind")}"' in words, words
        return
    assert case.expect_crd is not None
    assert case.expect_crd in words, words


@pytest.mark.parametrize(("where", "obj"), VALID, ids=[where for where, _ in VALID])
def test_every_example_is_accepted_by_the_real_server(
    cluster: ClusterTest, where: str, obj: dict[str, Any]
) -> None:
    accepted, words = dry_run(cluster, obj)
    assert accepted, f"{where}: {words}"


def test_with_the_webhook_up_every_invalid_manifest_is_refused_with_the_validators_words(
    cluster: ClusterTest,
) -> None:
    cluster.operator({}, args=cluster.webhook())
    missed: list[str] = []
    for case in INVALID:
        accepted, words = dry_run(cluster, case.obj)
        if accepted:
            missed.append(f"{case.name}: accepted")
        elif case.reaches_webhook and not case.crd_expressible and case.expect not in words:
            missed.append(f"{case.name}: {words}")
    assert not missed, "\n".join(missed)


def test_the_real_server_calls_the_webhook_which_refuses_a_duplicate_id_naming_the_holder(
    cluster: ClusterTest,
) -> None:
    cluster.operator({}, args=cluster.webhook())
    spec = {"id": "dup:1", "runner": "kubernetes", "container": {"image": "x/y:1", "ports": [80]}}
    first = _model("first", cluster.namespace, spec)
    cluster.plane.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(first))
    # The webhook's index learns the holder from its watch: wait for the index to refuse.
    second = _model("second", cluster.namespace, spec)

    def refused() -> str | None:
        accepted, words = dry_run(cluster, second)
        return None if accepted else words

    words = wait_until(refused, timeout=30, what="the duplicate refused")
    assert "spec.id" in words and f"{cluster.namespace}/first" in words, words
    # The mutating webhook filled the defaults of the first one on its way in.
    stored = cluster.plane.get("mlmodel", cluster.namespace, "first")
    assert stored is not None
    assert stored["spec"]["container"]["imagePullPolicy"] == "IfNotPresent"


def _model(name: str, namespace: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "mlplatform.dev/v1alpha1",
        "kind": "MLModel",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def test_one_id_in_two_namespaces_is_admitted_for_kubernetes_and_refused_for_docker(
    cluster: ClusterTest,
) -> None:
    plane = cluster.plane
    with plane.namespace("u") as other:
        both = [cluster.namespace, other]
        cluster.operator({}, args=cluster.webhook(both), namespaces=both)

        def model(name: str, namespace: str, runner: str) -> dict[str, Any]:
            container = {"image": "x/y:1", "ports": [80]}
            return _model(name, namespace, {"id": f"shared-{runner}:1", "runner": runner,
                                            "container": container})  # fmt: skip

        def refused(obj: dict[str, Any]) -> str | None:
            accepted, words = dry_run_in(cluster, obj)
            return None if accepted else words

        for runner in ("docker", "kubernetes"):
            first = model(f"a-{runner}", other, runner)
            plane.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(first))
            # Once the index holds it, a second one in its own namespace is refused ...
            words = wait_until(lambda r=runner: refused(model("b", other, r)),  # type: ignore[misc]
                               timeout=30, what=f"the {runner} id indexed")  # fmt: skip
            assert f"{other}/a-{runner}" in words, words
        # ... and in the other namespace: refused for docker (one engine), not for kubernetes.
        words = refused(model("c", cluster.namespace, "docker")) or ""
        assert f"{other}/a-docker" in words and "unique across the cluster" in words, words
        assert refused(model("c", cluster.namespace, "kubernetes")) is None
        plane.kubectl("delete", "mlmodels", "--all", "-n", other, "--timeout=30s", check=False)


def dry_run_in(cluster: ClusterTest, obj: dict[str, Any]) -> tuple[bool, str]:
    """``dry_run`` keeping the object's own namespace."""
    done = cluster.plane.kubectl(
        "apply", "--dry-run=server", "-f", "-", stdin=yaml.safe_dump(obj), check=False
    )
    return done.returncode == 0, (done.stdout + done.stderr).strip()
