"""Every managed container, as the engine reports it, keeps a model author away from the host.

Models are started by ``mlplatform local --once`` (the real CLI, runner and engine); then
``docker inspect`` of each container is checked against the promises of docs/design.md
(Security defaults): no privileged mode, no host network/PID/IPC, no devices, no added
capabilities, ``no-new-privileges``, bind mounts only from ``DATA_DIR``/``MLMODELS_DIR``
(read-only) and ``STORAGE_DIR/services-ml/<name>/<version>``, debug ports on 127.0.0.1.
Writes are tried from inside with ``docker exec``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from docker.models.containers import Container

from mlplatform.models.spec import split_id
from mlplatform.runners.base import LABEL_MODEL_ID
from tests.reliability import figures
from tests.support.docker_env import DockerEnv
from tests.support.kube_cluster import free_port
from tests.support.local_cli import LocalCli

pytestmark = pytest.mark.docker


def _sh(container: Container, script: str) -> tuple[int, str]:
    result = container.exec_run(["sh", "-c", script])
    output = result.output
    assert isinstance(output, bytes) and result.exit_code is not None
    return int(result.exit_code), output.decode(errors="replace")


def assert_confined(container: Container, env: DockerEnv) -> None:
    """The inspect output of one managed container keeps it off the host."""
    container.reload()
    host = container.attrs["HostConfig"]
    name = container.name
    assert host["Privileged"] is False, name
    assert host["NetworkMode"] not in ("host",) and not host["NetworkMode"].startswith("container:")
    assert host.get("PidMode", "") in ("", "private"), name
    assert host.get("IpcMode", "") not in ("host",) and not host.get("IpcMode", "").startswith(
        "container:"
    )
    assert host.get("UTSMode", "") != "host", name
    assert not host.get("Devices"), name
    assert not host.get("DeviceRequests"), name
    assert not host.get("CapAdd"), name
    assert "no-new-privileges" in (host.get("SecurityOpt") or []), name
    assert not host.get("VolumesFrom"), name
    model_id = container.labels[LABEL_MODEL_ID]
    model_name, version = split_id(model_id)
    storage = env.storage_dir / "services-ml" / model_name / version
    for mount in container.attrs["Mounts"]:
        assert mount["Type"] == "bind", (name, mount)  # no anonymous or named volumes
        source = Path(mount["Source"])
        if mount["Destination"] in ("/data", "/models"):
            root = env.data_dir if mount["Destination"] == "/data" else env.mlmodels_dir
            assert source == root.resolve(), (name, mount)
            assert mount["RW"] is False, (name, mount)
        else:
            assert source.parent == storage.resolve(), (name, mount)
    for binding in (host.get("PortBindings") or {}).values():
        for entry in binding or []:
            assert entry["HostIp"] == "127.0.0.1", (name, entry)


def test_model_containers_are_confined_and_read_only_where_promised(
    local: LocalCli, docker_env: DockerEnv
) -> None:
    debug_port = free_port()
    local.extra_env["RUNNERS_DOCKER_HOST_PORT_DEBUG"] = str(debug_port)
    everything = ["/storage", "/logs", "/data", "/models"]
    local.write("sec-a", debug=True, container={"volumes": everything})
    local.write("sec-b", container={"volumes": ["/storage"]})
    (docker_env.data_dir / "dataset.csv").write_text("x\n")
    result = local.run("--once", "--timeout", "60")
    assert result.returncode == 0, result.stdout + result.stderr

    containers = {c.labels[LABEL_MODEL_ID]: c for c in local.managed(running=True)}
    a = containers[docker_env.model_id("sec-a")]
    b = containers[docker_env.model_id("sec-b")]
    for container in containers.values():
        assert_confined(container, docker_env)
        figures.add("managed containers inspected for confinement")

    # Debug ports are published, and only on the loopback address.
    bindings = a.attrs["HostConfig"]["PortBindings"]["8080/tcp"]
    assert bindings == [{"HostIp": "127.0.0.1", "HostPort": str(debug_port)}]

    # /data and /models are read-only inside; /storage is writable and lands on the host.
    assert _sh(a, "cat /data/dataset.csv")[0] == 0
    for path in ("/data/x", "/models/x"):
        code, output = _sh(a, f"touch {path}")
        assert code != 0, f"{path} is writable: {output}"
    assert not (docker_env.data_dir / "x").exists()
    assert _sh(a, "echo a > /storage/own && echo a > /logs/own")[0] == 0
    name_a, version_a = split_id(docker_env.model_id("sec-a"))
    assert (
        docker_env.storage_dir / "services-ml" / name_a / version_a / "storage" / "own"
    ).exists()

    # One model's storage is not reachable from another model's container.
    assert _sh(b, "echo secret-of-b > /storage/secret-of-b")[0] == 0
    code, listing = _sh(a, "ls -laR /storage /logs /data /models 2>&1; ls / 2>&1")
    assert "secret-of-b" not in listing
    name_b, version_b = split_id(docker_env.model_id("sec-b"))
    b_storage = (docker_env.storage_dir / "services-ml" / name_b / version_b).resolve()
    for mount in a.attrs["Mounts"]:
        source = Path(mount["Source"])
        assert not (source == b_storage or b_storage.is_relative_to(source)), mount
