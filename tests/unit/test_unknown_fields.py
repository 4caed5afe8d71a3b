"""An unknown field is refused naming it, and a near miss of a known one says which."""

from __future__ import annotations

from typing import Any

import pytest

from mlplatform.models.resource import validate_object


def _manifest(container: dict[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "mlplatform.dev/v1alpha1",
        "kind": "MLModel",
        "metadata": {"name": "iris"},
        "spec": {
            "id": "iris:1",
            "container": {"image": "iris:1", "ports": [8080], **(container or {})},
            **spec,
        },
    }


@pytest.mark.parametrize(
    ("manifest", "line"),
    [
        (
            _manifest({"imagePulPolicy": "Never"}),
            'spec.container.imagePulPolicy: unknown field "imagePulPolicy" is not part of the '
            'MLModel API (did you mean "imagePullPolicy"?)',
        ),
        (
            _manifest(debg=True),
            'spec.debg: unknown field "debg" is not part of the MLModel API '
            '(did you mean "debug"?)',
        ),
        (
            _manifest({"env": [{"name": "A", "vaule": "b"}]}),
            'spec.container.env[0].vaule: unknown field "vaule" is not part of the MLModel API '
            '(did you mean "value"?)',
        ),
        (
            _manifest({"readinessProbe": {"httpGet": {"pth": "/h", "port": 8080}}}),
            'spec.container.readinessProbe.httpGet.pth: unknown field "pth" is not part of the '
            'MLModel API (did you mean "path"?)',
        ),
        (
            _manifest({"Ports": [8080]}),
            'spec.container.Ports: unknown field "Ports" is not part of the MLModel API '
            '(did you mean "ports"?)',
        ),
        (
            {**_manifest(), "specs": {}},
            'specs: unknown field "specs" is not part of the MLModel API (did you mean "spec"?)',
        ),
    ],
    ids=["pull-policy", "debug", "env-value", "probe-path", "case", "top-level"],
)
def test_a_near_miss_of_a_known_field_suggests_it(manifest: dict[str, Any], line: str) -> None:
    model, problems = validate_object(manifest)
    assert model is None
    assert line in [str(p) for p in problems]


def test_a_field_far_from_any_known_one_suggests_nothing() -> None:
    # No field for privileged mode: nothing close is offered in its place.
    _, problems = validate_object(_manifest({"privileged": True}))
    assert [str(p) for p in problems] == [
        'spec.container.privileged: unknown field "privileged" is not part of the MLModel API'
    ]
