"""Security defaults and the spec's env/command/args/resources, read back from inspect."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlplatform.runners import docker_plan
from mlplatform.runners.docker_runner import DockerRunner
from tests.support.docker_env import DockerEnv
from tests.support.images import TestImages


def test_security_defaults_are_in_the_inspected_container(
    docker_env: DockerEnv, docker_runner: DockerRunner, test_images: TestImages
) -> None:
    volumes = ["/storage", "/data", "/models"]
    status = docker_runner.apply(docker_env.workload("sec", test_images.http, volumes=volumes))
    host = docker_env.client.containers.get(str(status.workload_id)).attrs["HostConfig"]

    assert host["Privileged"] is False
    assert host["NetworkMode"] == docker_env.network
    assert "no-new-privileges" in host["SecurityOpt"]
    assert {"NET_RAW", "MKNOD", "SYS_CHROOT"} <= set(host["CapDrop"])
    assert not host.get("CapAdd")
    assert not host.get("Devices")
    assert host["PidMode"] == "" and host["IpcMode"] != "host"
    roots = [docker_env.data_dir, docker_env.mlmodels_dir, docker_env.storage_dir]
    binds = {bind.split(":")[1]: bind for bind in host["Binds"]}
    assert sorted(binds) == ["/data", "/models", "/storage"]
    for bind in binds.values():
        source = Path(bind.split(":")[0])
        assert any(source == root or root in source.parents for root in roots), bind
    assert binds["/data"].endswith(":ro") and binds["/models"].endswith(":ro")
    assert binds["/storage"].endswith(":rw")


def test_env_command_args_resources_and_labels_are_applied(
    docker_env: DockerEnv, docker_runner: DockerRunner, test_images: TestImages
) -> None:
    workload = docker_env.workload(
        "args",
        test_images.http,
        ports=[8081],
        env=[{"name": "MODEL_NAME", "value": "iris"}],
        command=["/bin/sh", "/entrypoint.sh"],
        args=["8081"],
        resources={"cpu": "500m", "memory": "64Mi"},
    )
    status = docker_runner.apply(workload)
    attrs = docker_env.client.containers.get(str(status.workload_id)).attrs

    assert "MODEL_NAME=iris" in attrs["Config"]["Env"]
    assert attrs["Config"]["Entrypoint"] == ["/bin/sh", "/entrypoint.sh"]
    assert attrs["Config"]["Cmd"] == ["8081"]
    assert attrs["HostConfig"]["NanoCpus"] == 500_000_000
    assert attrs["HostConfig"]["Memory"] == 64 * 2**20
    assert attrs["HostConfig"]["MemorySwap"] == 64 * 2**20  # no swap beyond the limit
    labels = attrs["Config"]["Labels"]
    assert labels["mlplatform.dev/managed-by"] == "mlplatform"
    assert labels["mlplatform.dev/model-id"] == workload.spec.id
    assert labels["mlplatform.dev/controller"] == docker_env.controller
    owner = workload.owner
    assert labels["mlplatform.dev/owner-namespace"] == owner.namespace
    assert labels["mlplatform.dev/owner-name"] == owner.name
    assert labels["mlplatform.dev/owner-uid"] == owner.uid
    assert len(labels["mlplatform.dev/spec-hash"]) == 32
    assert attrs["Name"] == f"/mlpt-args-{docker_env.token}-1"


def test_the_spec_hash_changes_with_the_container_and_not_with_suspend(
    docker_env: DockerEnv, docker_runner: DockerRunner, test_images: TestImages
) -> None:
    def spec_hash(**fields: Any) -> str:
        # The revision the runner reports: the serving container's, or the one it is
        # bringing up behind it.
        status = docker_runner.apply(docker_env.workload("hash", test_images.http, **fields))
        container_id = status.rollout.workload_id if status.rollout else status.workload_id
        labels = docker_env.client.containers.get(str(container_id)).labels
        return str(labels["mlplatform.dev/spec-hash"])

    plain = spec_hash()
    assert spec_hash() == plain
    assert spec_hash(env=[{"name": "X", "value": "1"}]) != plain
    settings = docker_env.settings()
    suspended = docker_env.workload("hash", test_images.http, suspend=True)
    assert docker_plan.plan(suspended, settings, debug_base=None).spec_hash == plain
    assert docker_plan.plan(suspended, settings, debug_base=7000).spec_hash != plain
