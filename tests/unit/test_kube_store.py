"""The operator's desired-state source: which watch events wake the controller, and what a
key stands for (the emulated API server is exercised end to end in tests/integration)."""

from __future__ import annotations

import copy
from typing import Any

from mlplatform.core.controller import Deleting, Desired, Refused
from mlplatform.kube.api import KubeApi
from mlplatform.kube.store import ModelStore, held_by_finalizer, plain_namespaces
from mlplatform.models.status import MLModelStatus, Phase
from mlplatform.runners.base import OwnedWorkload, Owner, State


def body(generation: int = 1, uid: str = "u1", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "mlplatform.dev/v1alpha1",
        "kind": "MLModel",
        "metadata": {"name": "iris", "namespace": "models", "uid": uid, "generation": generation},
        "spec": {"id": "iris:1.0", "container": {"image": "iris:1", "ports": [8080]}, **spec},
    }


def store(**options: Any) -> ModelStore:
    # Never called here: the API is only listed by a resync.
    return ModelStore(KubeApi.for_server("http://127.0.0.1:9"), **options)


def test_a_new_object_wakes_the_controller_and_is_desired_with_its_generation() -> None:
    models = store()
    assert models.observe(body(generation=4)) == "models/iris"
    found = models.get("models/iris")
    assert isinstance(found, Desired)
    assert (found.generation, found.owner.uid, found.status) == (4, "u1", None)


def test_the_operators_own_status_writes_do_not_wake_the_controller() -> None:
    models = store()
    first = body()
    models.observe(first)
    models.keep_written("models/iris", {"phase": "Running"})  # the server's answer
    written = copy.deepcopy(first)
    written["status"] = {"phase": "Running"}
    written["metadata"]["finalizers"] = ["mlplatform.dev/finalizer"]
    assert models.observe(written) is None


def test_a_status_someone_else_wrote_wakes_the_model_and_is_what_the_next_patch_undoes() -> None:
    models = store()
    first = body()
    models.observe(first)
    models.keep_written("models/iris", {"phase": "Running"})
    edited = copy.deepcopy(first)
    edited["status"] = {"phase": "Failed", "message": "set by hand"}
    assert models.observe(edited) == "models/iris"
    entry = models.entry("models/iris")
    assert entry is not None and entry.written == {"phase": "Failed", "message": "set by hand"}
    assert models.observe(edited) is None  # seen once: the same event again wakes nothing


def test_a_new_generation_wakes_it_and_keeps_the_status_last_written() -> None:
    models = store()
    models.observe(body(generation=1))
    models.keep_status("models/iris", MLModelStatus(phase=Phase.RUNNING, restart_count=2))
    assert models.observe(body(generation=2, suspend=True)) == "models/iris"
    found = models.get("models/iris")
    assert isinstance(found, Desired)
    assert found.generation == 2 and found.workload.spec.suspend
    assert found.status is not None and found.status.restart_count == 2


def test_the_status_on_the_object_is_read_once_when_it_is_first_seen() -> None:
    models = store()
    seen = body()
    seen["status"] = {"phase": "Running", "restartCount": 3, "consecutiveFailures": 1}
    models.observe(seen)
    found = models.get("models/iris")
    assert isinstance(found, Desired) and found.status is not None
    assert (found.status.restart_count, found.status.consecutive_failures) == (3, 1)


def test_an_invalid_spec_is_refused_with_its_problems() -> None:
    models = store()
    models.observe(body(id="not an id"))
    found = models.get("models/iris")
    assert isinstance(found, Refused)
    assert any("spec.id" in problem for problem in found.problems)


def test_a_deletion_mark_makes_it_deleting_with_the_timeout_plus_the_grace_period() -> None:
    models = store(delete_timeout=7.0)
    container = {"image": "iris:1", "ports": [8080], "terminationGracePeriodSeconds": 25}
    models.observe(body(container=container))
    marked = body(container=container)
    marked["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    assert models.observe(marked) == "models/iris"
    found = models.get("models/iris")
    assert isinstance(found, Deleting)
    # The grace period is the container's to spend; the front end's bound comes on top.
    assert found.timeout == 7.0 + 25 and found.workload is not None


def test_a_never_valid_object_marked_for_deletion_gets_the_front_ends_timeout() -> None:
    models = store(delete_timeout=7.0)
    marked = body(id="not an id")
    marked["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    models.observe(marked)
    found = models.get("models/iris")
    assert isinstance(found, Deleting)
    assert found.timeout == 7.0 and found.workload is None


def test_a_deleted_object_is_forgotten_but_not_a_newer_one_of_the_same_name() -> None:
    models = store()
    models.observe(body(uid="old"))
    models.observe(body(uid="new"))
    assert models.forget(body(uid="old")) is None
    assert isinstance(models.get("models/iris"), Desired)
    assert models.forget(body(uid="new")) == "models/iris"
    assert models.get("models/iris") is None


def test_a_kubernetes_runner_model_gone_from_the_api_is_deleting_until_released() -> None:
    models = store(delete_timeout=4.0)
    models.observe(body(runner="kubernetes"))
    assert models.forget(body(runner="kubernetes")) == "models/iris"
    found = models.get("models/iris")
    # No finalizer held it: the store keeps it until the controller deleted its objects.
    assert isinstance(found, Deleting) and found.workload is not None
    assert found.timeout == 4.0 + 10  # the default grace period on top
    models.release("models/iris")
    assert models.get("models/iris") is None


def test_release_leaves_a_model_that_is_not_gone_and_a_new_one_of_the_name() -> None:
    models = store()
    models.observe(body(runner="kubernetes"))
    models.release("models/iris")  # a suspend, say: released, but the object is still there
    assert isinstance(models.get("models/iris"), Desired)
    models.forget(body(runner="kubernetes"))
    models.observe(body(uid="u2", runner="kubernetes"))  # created again meanwhile
    models.release("models/iris")
    found = models.get("models/iris")
    assert isinstance(found, Desired) and found.owner.uid == "u2"


def test_only_models_with_a_workload_outside_the_cluster_are_held_by_a_finalizer() -> None:
    assert held_by_finalizer({"runner": "docker"})
    assert held_by_finalizer({})  # the default runner is docker
    assert held_by_finalizer(None)  # no spec to judge: hold it, removal is then certain
    assert not held_by_finalizer({"runner": "kubernetes"})


def test_namespace_patterns_list_everywhere_plain_names_one_by_one() -> None:
    assert plain_namespaces(["models", "team-a"]) == ("models", "team-a")
    assert plain_namespaces(["models", "team-*"]) == ()
    assert plain_namespaces([]) == ()


def test_namespace_patterns_scope_garbage_collection() -> None:
    models = store(namespaces=["team-*"])
    assert models.in_scope(_owned(Owner("team-a", "x", "u")))
    assert not models.in_scope(_owned(Owner("other", "x", "u")))


def _owned(owner: Owner) -> OwnedWorkload:
    return OwnedWorkload(owner, "iris:1", "c1", "iris-1", "rev", State.RUNNING)
