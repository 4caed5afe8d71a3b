"""The offline API-server stand-in: Kubernetes' CEL string functions and strict field checks."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from mlplatform.models.resource import validate_object
from tests.support import cel_harness

CRD = cel_harness.load_crd()
BASE: dict[str, Any] = {
    "apiVersion": "mlplatform.dev/v1alpha1",
    "kind": "MLModel",
    "metadata": {"name": "iris"},
    "spec": {"id": "iris:1.0", "container": {"image": "iris:1", "ports": [8080]}},
}


def _with_container(**fields: Any) -> dict[str, Any]:
    obj = copy.deepcopy(BASE)
    obj["spec"]["container"].update(fields)
    return obj


@pytest.mark.parametrize(
    ("rule", "value", "expected"),
    [
        ("self.lastIndexOf('/') == 8", "/storage/logs", True),
        ("self.lastIndexOf('x') == -1", "/logs", True),
        ("self.lastIndexOf('') == 5", "/logs", True),
        ("self.indexOf('/', 1) == 8", "/storage/logs", True),
        ("self.substring(self.lastIndexOf('/') + 1) == 'logs'", "/storage/logs", True),
        ("self.substring(1, 3) == 'st'", "/storage", True),
        ("self.split('/') == ['', 'a', 'b']", "/a/b", True),
        ("self.split('/', 2) == ['', 'a/b']", "/a/b", True),
        ("self.lowerAscii() == 'abc'", "ABC", True),
        ("self.upperAscii() == 'ÄBC'", "Äbc", True),
        ("self.trim() == 'a'", "  a ", True),
        ("self.substring(1) == 'ñu'", "üñu", True),
    ],
)
def test_kubernetes_string_functions_behave_like_cel_go(
    rule: str, value: str, expected: bool
) -> None:
    assert cel_harness.evaluate_rule(rule, value) is expected


@pytest.mark.parametrize("rule", ["self.substring(9) == ''", "self.substring(3, 2) == ''"])
def test_substring_out_of_range_is_an_error_not_a_clamp(rule: str) -> None:
    verdict = cel_harness.evaluate_rule(rule, "/storage")
    assert isinstance(verdict, str)
    assert "out of range" in verdict


def test_a_rule_that_fails_to_evaluate_is_reported_not_passed() -> None:
    schema_rule = {"type": "string", "x-kubernetes-validations": [{"rule": "self.nope() == 1"}]}
    crd = copy.deepcopy(CRD)
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"][
        "id"
    ] = schema_rule
    [message] = cel_harness.validate(BASE, crd)
    assert message.startswith("spec.id: Internal error: rule evaluation failed")


def test_unknown_fields_are_refused_as_strict_field_validation_does() -> None:
    messages = cel_harness.validate(_with_container(privileged=True, hostPID=True), CRD)
    assert messages == [
        'unknown field "spec.container.privileged"',
        'unknown field "spec.container.hostPID"',
    ]


def test_kopf_may_keep_its_own_fields_in_the_status() -> None:
    obj = copy.deepcopy(BASE)
    obj["status"] = {"phase": "Running", "kopf": {"progress": {}}, "create_fn": {"ok": True}}
    assert cel_harness.validate(obj, CRD) == []


def test_defaults_are_applied_before_cel_rules_run() -> None:
    # The probe's path defaults to "/", which must then pass the path rule.
    obj = _with_container(readinessProbe={"httpGet": {"port": 8080}})
    assert cel_harness.validate(obj, CRD) == []


def test_cel_rules_are_skipped_on_a_value_of_the_wrong_type() -> None:
    obj = copy.deepcopy(BASE)
    obj["spec"]["id"] = 10
    assert cel_harness.validate(obj, CRD) == [
        'spec.id: Invalid value: "integer": spec.id in body must be of type string: "integer"'
    ]


@pytest.mark.parametrize(
    ("volumes", "accepted"),
    [
        (["/storage", "/logs", "/data", "/models"], True),
        (["/storage/logs", "/logs"], False),
        (["/a/x", "/b/x"], False),
        (["/a/x", "/b/y", "/x/z"], True),
    ],
)
def test_the_s3_cel_rule_compares_base_names(volumes: list[str], accepted: bool) -> None:
    messages = cel_harness.validate(_with_container(volumes=volumes), CRD)
    assert (messages == []) is accepted, messages


@pytest.mark.parametrize(
    ("cpu", "accepted"),
    [("250m", True), ("0.5", True), (2, True), ("0", False), ("000m", False), (0, False)],
)
def test_the_cpu_cel_rule_refuses_zero_as_the_spec_model_does(cpu: object, accepted: bool) -> None:
    messages = cel_harness.validate(_with_container(resources={"cpu": cpu}), CRD)
    assert (messages == []) is accepted, messages


@pytest.mark.parametrize(
    "memory",
    [
        "1Ki",
        "1Mi",
        "5.9Mi",
        "6Mi",
        "6291455",
        6291455,
        6291456,
        "6291456",
        "7M",
        "6M",
        "512Mi",
        "1Gi",
        "1.5Gi",
        "1024Ti",
        "1025Ti",
        "1126T",
        "1125.8T",
        "2000Ti",
        2**50,
        2**50 + 1,
    ],
)
def test_the_memory_cel_rules_agree_with_the_spec_model(memory: object) -> None:
    obj = _with_container(resources={"memory": memory})
    accepted_by_cel = cel_harness.validate(obj, CRD) == []
    _, problems = validate_object(obj)
    assert accepted_by_cel is (problems == []), (memory, problems)


@pytest.mark.parametrize(
    "cpu",
    [
        "1",
        "0.5",
        "250m",
        1024,
        1025,
        "1024",
        "1024.0",
        "1024.001",
        "1025",
        "1024000m",
        "1024001m",
        "2000",
        "0.001",
        "1m",
    ],
)
def test_the_cpu_cel_rules_agree_with_the_spec_model(cpu: object) -> None:
    obj = _with_container(resources={"cpu": cpu})
    accepted_by_cel = cel_harness.validate(obj, CRD) == []
    _, problems = validate_object(obj)
    assert accepted_by_cel is (problems == []), (cpu, problems)
