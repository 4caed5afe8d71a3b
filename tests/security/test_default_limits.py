"""A model that says nothing of resources still cannot take the host.

Its author wrote no ``resources``; the image floods the process table or eats memory. The
runner's defaults (``RUNNERS_DOCKER_DEFAULT_MEMORY``, ``RUNNERS_DOCKER_PIDS_LIMIT``, set small
here so the attack ends quickly) contain it, and a model beside it keeps serving.
"""

from __future__ import annotations

import pytest

from mlplatform.runners.base import State
from mlplatform.runners.docker_runner import DockerRunner
from tests.support.docker_env import DockerEnv, wait_until
from tests.support.images import TestImages

pytestmark = pytest.mark.docker

# Three hundred sleeping children: far past the limit, harmless if the limit holds.
FLOOD = ["sh", "-c", "i=0; while [ $i -lt 300 ]; do sleep 300 & i=$((i+1)); done; wait"]


def test_a_process_flood_and_a_memory_hog_without_resources_are_contained(
    docker_env: DockerEnv, test_images: TestImages
) -> None:
    settings = docker_env.settings(
        runners_docker_pids_limit=32, runners_docker_default_memory="32Mi"
    )
    runner = DockerRunner(settings)
    try:
        bystander = docker_env.workload("bystander", test_images.http)
        runner.apply(bystander)
        flood = docker_env.workload("flood", test_images.client, command=FLOOD)
        runner.apply(flood)
        hog = docker_env.workload("hog", test_images.oom)  # no resources
        runner.apply(hog)

        (flooded,) = docker_env.client.containers.list(
            all=True, filters={"name": f"mlpt-flood-{docker_env.token}"}
        )
        assert flooded.attrs["HostConfig"]["PidsLimit"] == 32
        # The kernel refused the 32nd process (busybox sh then gives up and exits).
        wait_until(lambda: "can't fork" in flooded.logs().decode(errors="replace"), timeout=30)

        ended = wait_until(
            lambda: ((s := runner.observe(hog)).state is State.EXITED and s) or None, timeout=60
        )
        assert ended.termination is not None and ended.termination.oom_killed

        assert runner.observe(bystander).state is State.RUNNING
        name = f"mlpt-bystander-{docker_env.token}-1"
        code, output = docker_env.client_run(
            test_images.http, ["wget", "-qO-", f"http://{name}:8080/health"]
        )
        assert (code, output.strip()) == (0, "ok"), output
    finally:
        runner.close()
