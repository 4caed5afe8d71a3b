from mlplatform.models.resource import validate_object


def _manifest(**spec: object) -> dict[str, object]:
    container = {"image": "iris:1", "ports": [8080]}
    return {
        "apiVersion": "mlplatform.dev/v1alpha1",
        "kind": "MLModel",
        "metadata": {"name": "iris"},
        "spec": {"id": "iris:1.0", "container": container, **spec},
    }


def test_defaults_are_filled_in_one_place() -> None:
    model, problems = validate_object(_manifest())
    assert problems == []
    assert model is not None
    wire = model.spec.to_wire()
    assert (wire["runner"], wire["suspend"], wire["debug"]) == ("docker", False, False)
    assert wire["container"]["imagePullPolicy"] == "IfNotPresent"
    assert wire["container"]["terminationGracePeriodSeconds"] == 10  # Docker's stop default


def test_a_string_is_not_a_boolean() -> None:
    _, problems = validate_object(_manifest(suspend="true"))
    assert [str(p) for p in problems] == [
        'spec.suspend: must be a boolean (true or false), got string "true"'
    ]
