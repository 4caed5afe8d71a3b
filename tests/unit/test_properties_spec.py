"""Properties of validation over arbitrary specs (hypothesis).

Whatever a manifest holds, validation returns a verdict (never another exception), and an
accepted id or volume never leaves its folder: ``STORAGE/services-ml/<name>/<version>/<base>``.
The CRD layer (schema + CEL, offline) is held to the same promise, because with no webhook
running the API server is the only gate, and it must agree with the spec model on ids and
volumes.
"""

from __future__ import annotations

import os
import posixpath
import re
from typing import Any

from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st

from mlplatform.models.resource import validate_object
from mlplatform.models.spec import container_name, split_id, volume_basename
from tests.support import cel_harness

STORAGE = "/srv/storage"
SERVICES = posixpath.join(STORAGE, "services-ml")
DOCKER_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+")
CRD = cel_harness.load_crd()
BUDGET = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

_TRICKY = "aZ09.:/-_ \\\x00\n%~é"
ids = st.one_of(
    st.text(max_size=80),
    st.text(alphabet=_TRICKY, max_size=20),
    st.from_regex(r"[a-z0-9.\-]{1,12}:[a-z0-9.\-]{1,12}", fullmatch=True),
    st.from_regex(r"[a-z0-9]{1,40}:[a-z0-9.]{1,40}", fullmatch=True),
    st.sampled_from(["iris:1.0", "a:..", "..:1", "a:.", "a:1/..", "a:1:2", "a/b:1", "a:1\n"]),
)
volumes = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=_TRICKY, max_size=16),
    st.from_regex(r"(/[A-Za-z0-9_.\-]{0,6}){1,3}/?", fullmatch=True),
    st.sampled_from(["/", "/..", "/.", "/a/..", "/a:/b", "//a", "/a/", "/storage", "/logs"]),
    st.from_regex(r"(/[a-z]{1,3}){1,2}", fullmatch=True),
)
# Valid by construction (single segments, distinct, so distinct base names): keeps accepted
# specs with several volumes common, so the escape property is exercised on them.
valid_volume_lists = st.lists(
    st.from_regex(r"/[a-z][a-z0-9_.-]{0,7}", fullmatch=True), min_size=2, max_size=4, unique=True
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)
ports = st.lists(st.one_of(st.integers(min_value=-2, max_value=70000), json_values), max_size=4)


@st.composite
def manifests(draw: st.DrawFn) -> Any:
    container: dict[str, Any] = {
        "image": draw(st.sampled_from(["iris:1", "registry.example.com/a/b:2", "Bad Image"])),
        "ports": draw(st.one_of(st.just([8080]), ports)),
        "volumes": draw(st.one_of(st.lists(volumes, max_size=4), valid_volume_lists)),
    }
    if draw(st.integers(0, 3)) == 0:
        container["env"] = draw(
            st.lists(st.fixed_dictionaries({"name": st.text(max_size=6), "value": json_values}))
        )
    if draw(st.integers(0, 3)) == 0:
        container["resources"] = draw(
            st.dictionaries(st.sampled_from(["cpu", "memory"]), json_values)
        )
    spec: dict[str, Any] = {"id": draw(ids), "container": container}
    if draw(st.integers(0, 2)) == 0:
        spec[draw(st.sampled_from(["suspend", "debug", "runner", "extra"]))] = draw(json_values)
    obj: dict[str, Any] = {
        "apiVersion": "mlplatform.dev/v1alpha1",
        "kind": "MLModel",
        "metadata": {"name": "m"},
        "spec": draw(st.one_of(st.just(spec), st.just(spec), json_values)),
    }
    return obj


def _inside(path: str, folder: str) -> bool:
    return os.path.normpath(path).startswith(folder.rstrip("/") + "/")


def _assert_stays_in_its_folder(model_id: str, volume_paths: list[str]) -> None:
    name, version = split_id(model_id)
    folder = os.path.normpath(posixpath.join(SERVICES, name, version))
    assert folder == posixpath.join(SERVICES, name, version)  # nothing to normalise away
    assert posixpath.dirname(posixpath.dirname(folder)) == SERVICES
    assert DOCKER_NAME.fullmatch(container_name(model_id))
    for volume in volume_paths:
        base = volume_basename(volume)
        assert base not in {"", ".", ".."}
        stored = os.path.normpath(posixpath.join(folder, base))
        assert _inside(stored, folder) and posixpath.dirname(stored) == folder


@BUDGET
@given(manifests())
def test_validation_returns_a_verdict_and_never_lets_an_id_or_volume_escape(obj: Any) -> None:
    model, problems = validate_object(obj)
    assert (model is None) == bool(problems)
    if model is not None:
        _assert_stays_in_its_folder(model.spec.id, list(model.spec.container.volumes))


@BUDGET
@given(st.one_of(json_values, manifests()))
def test_validation_of_any_document_returns_a_verdict(obj: Any) -> None:
    model, problems = validate_object(obj)
    assert all(isinstance(p.field, str) and p.message for p in problems)
    assert (model is None) == bool(problems)


def _with(model_id: object, volume_paths: list[str]) -> dict[str, Any]:
    return {
        "apiVersion": "mlplatform.dev/v1alpha1",
        "kind": "MLModel",
        "metadata": {"name": "m"},
        "spec": {
            "id": model_id,
            "container": {"image": "iris:1", "ports": [8080], "volumes": volume_paths},
        },
    }


@BUDGET
@given(ids, st.lists(volumes, max_size=3))
def test_the_crd_and_the_spec_model_agree_on_ids_and_volumes(
    model_id: str, volume_paths: list[str]
) -> None:
    obj = _with(model_id, volume_paths)
    crd_accepts = cel_harness.validate(obj, CRD) == []
    model, problems = validate_object(obj)
    assert crd_accepts == (model is not None), (cel_harness.validate(obj, CRD), problems)
    if crd_accepts:
        _assert_stays_in_its_folder(model_id, volume_paths)


def test_the_generators_reach_accepted_specs_so_the_properties_are_not_vacuous() -> None:
    found = find(
        manifests(),
        lambda obj: (
            validate_object(obj)[0] is not None and len(obj["spec"]["container"]["volumes"]) > 1
        ),
        # Derandomized: the search is the same on every run, so it cannot pass by luck or fail
        # by chance on a fresh example database.
        settings=settings(max_examples=2000, deadline=None, derandomize=True, database=None),
    )
    assert validate_object(found)[0] is not None
