"""Storage layout: storage folders on the host, read-only /data and /models (real engine)."""

from __future__ import annotations

from docker.models.containers import Container

from mlplatform.runners.base import State
from mlplatform.runners.docker_runner import DockerRunner
from tests.support.docker_env import DockerEnv, applied_until_replaced, wait_until
from tests.support.images import TestImages


def _exec(env: DockerEnv, container_id: str | None, script: str) -> tuple[int, str]:
    container: Container = env.client.containers.get(str(container_id))
    code, output = container.exec_run(["sh", "-c", script])
    assert code is not None and isinstance(output, bytes)
    return code, output.decode(errors="replace")


def test_files_written_in_volumes_land_in_the_storage_folder_and_survive_replace_and_delete(
    docker_env: DockerEnv, docker_runner: DockerRunner, test_images: TestImages
) -> None:
    volumes = ["/storage", "/var/log/model"]
    workload = docker_env.workload("store", test_images.http, volumes=volumes)
    first = docker_runner.apply(workload)
    assert _exec(docker_env, first.workload_id, "echo kept > /storage/a.txt")[0] == 0
    assert _exec(docker_env, first.workload_id, "echo line > /var/log/model/b.log")[0] == 0

    folder = docker_env.storage_dir / "services-ml" / f"mlpt-store-{docker_env.token}" / "1"
    assert (folder / "storage" / "a.txt").read_text() == "kept\n"
    assert (folder / "model" / "b.log").read_text() == "line\n"

    changed = docker_env.workload(
        "store", test_images.http, volumes=volumes, env=[{"name": "CHANGED", "value": "1"}]
    )
    second = applied_until_replaced(docker_runner, changed)
    assert second.workload_id != first.workload_id
    assert _exec(docker_env, second.workload_id, "cat /storage/a.txt") == (0, "kept\n")

    assert docker_runner.delete(changed).state is State.REMOVED
    assert (folder / "storage" / "a.txt").read_text() == "kept\n"
    assert (folder / "model" / "b.log").read_text() == "line\n"


def test_data_and_models_are_mounted_read_only_from_their_folders(
    docker_env: DockerEnv, docker_runner: DockerRunner, test_images: TestImages
) -> None:
    (docker_env.data_dir / "train.csv").write_text("x,y\n")
    (docker_env.mlmodels_dir / "model.bin").write_text("weights\n")
    workload = docker_env.workload("ro", test_images.http, volumes=["/data", "/models"])
    status = docker_runner.apply(workload)

    assert _exec(docker_env, status.workload_id, "cat /data/train.csv") == (0, "x,y\n")
    assert _exec(docker_env, status.workload_id, "cat /models/model.bin") == (0, "weights\n")
    code, output = _exec(docker_env, status.workload_id, "echo no > /data/new.txt")
    assert code != 0, output
    assert "Read-only file system" in output
    code, output = _exec(docker_env, status.workload_id, "touch /models/model.bin")
    assert code != 0, output
    assert not (docker_env.data_dir / "new.txt").exists()


def test_missing_data_and_models_folders_are_created(
    docker_env: DockerEnv, test_images: TestImages
) -> None:
    data, models = docker_env.root / "new" / "data", docker_env.root / "new" / "models"
    runner = DockerRunner(docker_env.settings(data_dir=data, mlmodels_dir=models))
    try:
        workload = docker_env.workload("mk", test_images.http, volumes=["/data", "/models"])
        status = runner.apply(workload)
        assert data.is_dir()
        assert models.is_dir()
        wait_until(lambda: runner.observe(workload).state is State.RUNNING)
        assert status.workload_id is not None
    finally:
        runner.close()
