"""The stable alias, takeovers cut short, and the grace period (real engine, runner level)."""

from __future__ import annotations

import pytest

from mlplatform import errors
from mlplatform.models.spec import container_name
from mlplatform.runners import docker_plan
from mlplatform.runners.base import Action, Workload
from mlplatform.runners.docker_runner import DockerRunner
from tests.support.docker_env import DockerEnv, applied_until_replaced, wait_until
from tests.support.images import TestImages


def _started_behind(runner: DockerRunner, workload: Workload) -> str:
    """Apply a changed spec once: the new revision's container id (not yet serving)."""
    status = runner.apply(workload)
    assert status.rollout is not None and status.rollout.workload_id
    return status.rollout.workload_id


def _aliases(env: DockerEnv, container_id: str) -> list[str]:
    attrs = env.client.containers.get(container_id).attrs
    return list(attrs["NetworkSettings"]["Networks"][env.network]["Aliases"] or [])


def test_a_takeover_cut_short_is_finished_by_the_next_apply(
    docker_env: DockerEnv, test_images: TestImages
) -> None:
    # A long minimum ready time: the new revision stays behind until the test moves it.
    first_runner = DockerRunner(docker_env.settings(), min_ready=60.0)
    workload = docker_env.workload("cut", test_images.http)
    old = first_runner.apply(workload)
    changed = docker_env.workload("cut", test_images.http, env=[{"name": "V", "value": "2"}])
    new_id = _started_behind(first_runner, changed)
    # The process dies right after the new container joined under the stable alias: both
    # answer on it, the old one still holds the contract name, the new one a temporary one.
    alias = docker_plan.stable_alias(changed.owner)
    network = docker_env.client.networks.get(docker_env.network)
    new = docker_env.client.containers.get(new_id)
    network.disconnect(new)
    network.connect(new, aliases=[alias, container_name(changed.spec.id)])
    first_runner.close()

    restarted = DockerRunner(docker_env.settings(), min_ready=0.0)
    try:
        done = restarted.apply(changed)
    finally:
        restarted.close()

    assert (done.action, done.workload_id) == (Action.REPLACED, new_id)
    (only,) = docker_env.session_containers()
    assert (only.id, only.name) == (new_id, container_name(changed.spec.id))
    assert alias in _aliases(docker_env, new_id)
    assert old.workload_id not in {c.id for c in docker_env.session_containers()}


def test_a_new_container_left_under_its_temporary_name_takes_over_when_nothing_serves(
    docker_env: DockerEnv, test_images: TestImages
) -> None:
    runner = DockerRunner(docker_env.settings(), min_ready=60.0)
    try:
        old = runner.apply(docker_env.workload("left", test_images.http))
        changed = docker_env.workload("left", test_images.http, env=[{"name": "V", "value": "2"}])
        new_id = _started_behind(runner, changed)
        # Killed after the old container went, before the rename.
        docker_env.client.containers.get(str(old.workload_id)).remove(force=True)

        done = runner.apply(changed)
    finally:
        runner.close()
    assert (done.action, done.workload_id) == (Action.REPLACED, new_id)
    (only,) = docker_env.session_containers()
    assert only.name == container_name(changed.spec.id)
    assert docker_plan.stable_alias(changed.owner) in _aliases(docker_env, new_id)


def test_going_back_to_the_serving_spec_removes_the_new_revision(
    docker_env: DockerEnv, test_images: TestImages
) -> None:
    runner = DockerRunner(docker_env.settings())
    try:
        workload = docker_env.workload("back", test_images.http)
        old = runner.apply(workload)
        changed = docker_env.workload("back", test_images.http, env=[{"name": "V", "value": "2"}])
        _started_behind(runner, changed)

        again = runner.apply(workload)
    finally:
        runner.close()
    assert (again.action, again.workload_id, again.rollout) == (Action.NONE, old.workload_id, None)
    assert [c.id for c in docker_env.session_containers()] == [old.workload_id]


def test_two_models_cannot_hold_the_same_stable_alias(
    docker_env: DockerEnv, test_images: TestImages
) -> None:
    # Two controllers (say local mode and an operator) on one network, each with an object
    # named test/same: the second cannot take the alias "same.test".
    ours = DockerRunner(docker_env.settings())
    theirs = DockerRunner(docker_env.settings(controller=f"{docker_env.controller}-other"))
    first = docker_env.workload("same", test_images.http)
    second = Workload(
        owner=first.owner.__class__(namespace="test", name="same", uid="another-uid"),
        spec=docker_env.workload("other", test_images.http).spec,
    )
    try:
        ours.apply(first)
        with pytest.raises(errors.ContainerConflict, match=r'"same\.test" is held by'):
            theirs.apply(second)
        assert [c.name for c in docker_env.session_containers()] == [container_name(first.spec.id)]
    finally:
        ours.close()
        theirs.close()


def test_the_grace_period_is_the_containers_own_stop_timeout(
    docker_env: DockerEnv, docker_runner: DockerRunner, test_images: TestImages
) -> None:
    workload = docker_env.workload("grace", test_images.http, terminationGracePeriodSeconds=7)
    status = docker_runner.apply(workload)
    attrs = docker_env.client.containers.get(str(status.workload_id)).attrs
    assert attrs["Config"]["StopTimeout"] == 7

    # A new grace period is a new revision, rolled out like any other change.
    shorter = docker_env.workload("grace", test_images.http, terminationGracePeriodSeconds=1)
    wait_until(lambda: docker_runner.observe(workload).started_at)
    replaced = applied_until_replaced(docker_runner, shorter)
    attrs = docker_env.client.containers.get(str(replaced.workload_id)).attrs
    assert attrs["Config"]["StopTimeout"] == 1
