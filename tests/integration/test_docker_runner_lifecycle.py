"""Idempotence, replacement, ownership and how containers end (real engine)."""

from __future__ import annotations

import contextlib
import threading
import time

import docker.errors
import pytest
from docker.models.containers import Container

from mlplatform import errors
from mlplatform.models.spec import container_name
from mlplatform.runners import docker_plan
from mlplatform.runners.base import Action, RunnerStatus, State, Workload
from mlplatform.runners.docker_containers import Containers
from mlplatform.runners.docker_engine import Engine
from mlplatform.runners.docker_network import ModelsNetwork
from mlplatform.runners.docker_runner import DockerRunner
from tests.support.docker_env import DockerEnv, applied_until_replaced, wait_until
from tests.support.images import TestImages


def test_reapplying_an_unchanged_model_keeps_the_container_and_writes_nothing(
    docker_env: DockerEnv, docker_runner: DockerRunner, test_images: TestImages
) -> None:
    workload = docker_env.workload("same", test_images.http, volumes=["/storage"])
    first = docker_runner.apply(workload)
    assert first.action is Action.CREATED
    before = _engine_containers(docker_env)
    since = f"{time.time():.9f}"  # the engine takes sub-second timestamps as strings

    again = [docker_runner.apply(workload) for _ in range(3)]

    until = f"{time.time():.9f}"
    assert {s.workload_id for s in again} == {first.workload_id}
    assert {s.action for s in again} == {Action.NONE}
    assert _engine_containers(docker_env) == before
    events = docker_env.client.api.events(  # type: ignore[call-overload]
        since=since, until=until, decode=True, filters={"container": str(first.workload_id)}
    )
    assert [e["Action"] for e in events] == []  # no create, start, stop, destroy, rename...


def _engine_containers(env: DockerEnv) -> list[tuple[str, str, str]]:
    return sorted(
        (str(c.id), c.status, c.attrs["State"]["StartedAt"]) for c in env.session_containers()
    )


def test_a_changed_spec_replaces_the_container_behind_the_serving_one(
    docker_env: DockerEnv, docker_runner: DockerRunner, test_images: TestImages
) -> None:
    first = docker_runner.apply(docker_env.workload("chg", test_images.http))
    changed = docker_env.workload("chg", test_images.http, env=[{"name": "A", "value": "1"}])

    behind = docker_runner.apply(changed)
    # The old container still serves; the new revision starts under a temporary name.
    assert (behind.action, behind.workload_id) == (Action.NONE, first.workload_id)
    assert behind.rollout is not None
    assert behind.rollout.workload_name == docker_plan.candidate_name(
        container_name(changed.spec.id), str(behind.rollout.revision)
    )
    assert behind.rollout.revision != first.revision

    replaced = applied_until_replaced(docker_runner, changed)
    assert replaced.workload_id == behind.rollout.workload_id
    assert replaced.rollout is None
    names = [c.name for c in docker_env.session_containers()]
    assert names == [container_name(changed.spec.id)]
    assert "without a gap" in replaced.message


def test_a_foreign_container_with_the_model_name_is_a_conflict_and_left_untouched(
    docker_env: DockerEnv, docker_runner: DockerRunner, test_images: TestImages
) -> None:
    workload = docker_env.workload("clash", test_images.http)
    foreign = docker_env.run_helper(test_images.http, name=container_name(workload.spec.id))
    before = docker_env.client.containers.get(str(foreign.id)).attrs

    for call in (docker_runner.apply, docker_runner.observe, docker_runner.delete):
        with pytest.raises(errors.ContainerConflict) as raised:
            call(workload)
        assert "not managed by mlplatform" in raised.value.message

    after = docker_env.client.containers.get(str(foreign.id)).attrs
    assert after["State"] == before["State"]
    assert after["Config"]["Labels"] == before["Config"]["Labels"]


def test_a_create_refused_for_the_name_is_a_conflict_only_when_the_holder_is_a_stranger(
    docker_env: DockerEnv, docker_runner: DockerRunner, test_images: TestImages
) -> None:
    # The engine's 409 at create does not say whose container holds the name: `docker rm -f`
    # of our own container racing an apply gives the same answer as a stranger's container.
    # The window cannot be hit on demand, so the classification is driven directly, against
    # real containers holding the name.
    refused = errors.ContainerConflict("create container: Conflict. The name is already in use")
    settings = docker_env.settings()
    engine = Engine(settings)
    containers = Containers(engine, settings, ModelsNetwork(engine, settings))
    ours = docker_env.workload("held", test_images.http)
    docker_runner.apply(ours)
    try:
        with pytest.raises(errors.StartFailed, match="will retry") as transient:
            containers.name_taken(docker_env.client, ours, refused)
        assert transient.value.__cause__ is refused

        stranger = docker_env.workload("taken", test_images.http)
        docker_env.run_helper(test_images.http, name=container_name(stranger.spec.id))
        with pytest.raises(errors.ContainerConflict, match="not managed by mlplatform"):
            containers.name_taken(docker_env.client, stranger, refused)
    finally:
        engine.close()


def test_a_removal_that_races_another_frees_the_name_before_it_returns(
    docker_env: DockerEnv, test_images: TestImages
) -> None:
    # Two removers at once (a resync's garbage collection and a rollout, or `docker rm -f`):
    # the engine answers the second "removal already in progress" (409) while the name is
    # still held. ``remove`` returns only once it is free, so a create of the same name right
    # after succeeds (it met a Conflict in about half of such races before). The race is
    # the engine's, so it is run a number of times.
    settings = docker_env.settings()
    engine = Engine(settings)
    containers = Containers(engine, settings, ModelsNetwork(engine, settings))
    try:
        for attempt in range(12):
            name = docker_env.helper_name(f"race{attempt}")
            held = docker_env.run_helper(test_images.http, name=name)
            outside = threading.Thread(target=_remove_quietly, args=(held,))
            outside.start()
            containers.remove(held)
            again = docker_env.run_helper(test_images.http, name=name)
            outside.join(30)
            again.remove(force=True)
    finally:
        engine.close()


def _remove_quietly(container: Container) -> None:
    with contextlib.suppress(docker.errors.APIError):  # the other remover came first: 409/404
        container.remove(force=True)


def test_a_container_of_another_controller_is_a_conflict(
    docker_env: DockerEnv, test_images: TestImages
) -> None:
    workload = docker_env.workload("ctl", test_images.http)
    ours = DockerRunner(docker_env.settings())
    theirs = DockerRunner(docker_env.settings(controller=f"{docker_env.controller}-other"))
    try:
        ours.apply(workload)
        with pytest.raises(errors.ContainerConflict, match=docker_env.controller):
            theirs.apply(workload)
        assert ours.observe(workload).state in (State.RUNNING, State.STARTING)
    finally:
        ours.close()
        theirs.close()


def test_the_exit_code_is_observed_and_the_next_apply_replaces_the_stopped_container(
    docker_env: DockerEnv, docker_runner: DockerRunner, test_images: TestImages
) -> None:
    workload = docker_env.workload(
        "exit", test_images.exit, env=[{"name": "EXIT_CODE", "value": "3"}]
    )
    started = docker_runner.apply(workload)
    ended = wait_until(lambda: _ended(docker_runner, workload))
    assert ended.state is State.EXITED and ended.termination is not None
    assert (ended.termination.exit_code, ended.termination.oom_killed) == (3, False)
    assert ended.termination.reason == "Error"
    assert ended.workload_id == started.workload_id
    assert ended.termination.finished_at is not None
    assert "exited with code 3" in ended.message

    again = docker_runner.apply(workload)
    assert again.action is Action.REPLACED
    assert "exited with code 3" in again.message
    ids = {c.id for c in docker_env.session_containers()}
    assert started.workload_id not in ids


def test_an_oom_kill_is_observed(
    docker_env: DockerEnv, docker_runner: DockerRunner, test_images: TestImages
) -> None:
    workload = docker_env.workload("oom", test_images.oom, resources={"memory": "16Mi"})
    docker_runner.apply(workload)
    ended = wait_until(lambda: _ended(docker_runner, workload))
    assert ended.state is State.EXITED
    assert ended.termination is not None and ended.termination.oom_killed
    assert (ended.termination.exit_code, ended.termination.reason) == (137, "OOMKilled")
    assert "OOM-killed" in ended.message


def test_a_command_that_cannot_start_is_reported_as_exited_with_its_code(
    docker_env: DockerEnv, docker_runner: DockerRunner, test_images: TestImages
) -> None:
    workload = docker_env.workload("badcmd", test_images.http, command=["/no/such/server"])
    status = docker_runner.apply(workload)
    assert status.state is State.EXITED
    assert status.termination is not None and status.termination.exit_code == 127
    assert "/no/such/server" in status.message
    observed = docker_runner.observe(workload).termination
    assert observed is not None and observed.exit_code == 127


def test_deleting_a_missing_model_is_fine(
    docker_env: DockerEnv, docker_runner: DockerRunner, test_images: TestImages
) -> None:
    status = docker_runner.delete(docker_env.workload("gone", test_images.http))
    assert (status.state, status.action) == (State.REMOVED, Action.NONE)
    assert docker_runner.observe(docker_env.workload("gone", test_images.http)).state is (
        State.MISSING
    )


def test_a_suspended_model_has_its_container_removed(
    docker_env: DockerEnv, docker_runner: DockerRunner, test_images: TestImages
) -> None:
    docker_runner.apply(docker_env.workload("susp", test_images.http))
    status = docker_runner.apply(docker_env.workload("susp", test_images.http, suspend=True))
    assert (status.state, status.action) == (State.REMOVED, Action.REMOVED)
    assert docker_runner.observe(docker_env.workload("susp", test_images.http)).state is (
        State.MISSING
    )


def test_owned_containers_are_listed_and_removed_by_labels_of_this_controller_only(
    docker_env: DockerEnv, docker_runner: DockerRunner, test_images: TestImages
) -> None:
    workload = docker_env.workload("own", test_images.http)
    status = docker_runner.apply(workload)
    stranger = docker_env.run_helper(
        test_images.http,
        labels={
            "mlplatform.dev/managed-by": "mlplatform",
            "mlplatform.dev/controller": f"{docker_env.controller}-other",
            "mlplatform.dev/model-id": docker_env.model_id("stranger"),
        },
    )
    (owned,) = docker_runner.list_owned()
    assert (owned.model_id, owned.workload_id) == (workload.spec.id, status.workload_id)
    assert (owned.workload_name, owned.revision) == (status.workload_name, status.revision)
    assert owned.revision and owned.state is State.RUNNING
    assert owned.owner == workload.owner

    docker_runner.remove_owned(owned)
    assert docker_runner.list_owned() == []
    assert docker_env.client.containers.get(str(stranger.id)).status == "running"


def _ended(runner: DockerRunner, workload: Workload) -> RunnerStatus | None:
    status = runner.observe(workload)
    return status if status.termination is not None else None
