"""A second, private Docker engine that a test may stop and start (the shared one never is).

Other test sessions use the machine's engine at the same time, so engine-outage tests get a
``dockerd`` of their own: its own socket, data root, exec root and pid file under /tmp, a
default bridge of its own and no iptables rules (models use a user-defined network, which
works without them). Not ``--bridge none``: a dockerd started so deletes the host's
``docker0``, the shared engine's default bridge, which ``docker build`` needs. Images are
copied in with ``docker save | docker load``. ``close`` removes its containers and
networks, stops it and deletes its folders and bridges.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import docker
import docker.errors

from tests.support.docker_env import wait_until


def available() -> str | None:
    """Why a private engine cannot run here, or None."""
    if shutil.which("dockerd") is None:
        return "no dockerd binary"
    if os.geteuid() != 0:
        return "dockerd needs root"
    return None


@dataclass
class PrivateEngine:
    token: str = field(default_factory=lambda: secrets.token_hex(4))
    process: subprocess.Popen[bytes] | None = None
    bridges: set[str] = field(default_factory=set)

    @property
    def socket(self) -> Path:
        return Path(f"/tmp/mlpt-dockerd-{self.token}.sock")

    @property
    def host(self) -> str:
        return f"unix://{self.socket}"

    @property
    def folders(self) -> list[Path]:
        return [Path(f"/tmp/mlpt-docker-{self.token}"), Path(f"/tmp/mlpt-exec-{self.token}")]

    @property
    def default_bridge(self) -> str:
        return f"mlpt-{self.token}"  # an interface name: at most 15 characters

    @property
    def log_path(self) -> Path:
        return Path(f"/tmp/mlpt-dockerd-{self.token}.log")

    def client(self) -> docker.DockerClient:
        return docker.DockerClient(base_url=self.host, timeout=30)

    def start(self) -> None:
        for folder in self.folders:
            folder.mkdir(parents=True, exist_ok=True)
        data_root, exec_root = self.folders
        bridge = self.default_bridge
        if bridge not in self.bridges:  # made once; a restarted engine finds it again
            subprocess.run(["ip", "link", "add", "name", bridge, "type", "bridge"], check=True)
            self.bridges.add(bridge)
            subprocess.run(["ip", "link", "set", bridge, "up"], check=True)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                "dockerd",
                "--host",
                self.host,
                "--data-root",
                str(data_root),
                "--exec-root",
                str(exec_root),
                "--pidfile",
                f"/tmp/mlpt-dockerd-{self.token}.pid",
                "--bridge",
                bridge,
                "--iptables=false",
                "--ip-masq=false",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        wait_until(self._answers, timeout=60, interval=0.2)

    def _answers(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"dockerd exited: {self.log_path.read_text()[-2000:]}")
        try:
            with contextlib.closing(self.client()) as client:
                return bool(client.ping())
        except (docker.errors.DockerException, OSError):
            return False

    def stop(self) -> None:
        """Stop the engine as a service manager would (SIGTERM; containers stop with it)."""
        if self.process is None or self.process.poll() is not None:
            return
        self._remember_bridges()
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)

    def load_images(self, *names: str) -> None:
        save = subprocess.Popen(["docker", "save", *names], stdout=subprocess.PIPE)
        subprocess.run(
            ["docker", "-H", self.host, "load"],
            stdin=save.stdout,
            check=True,
            capture_output=True,
            timeout=120,
        )
        save.wait(60)

    def _remember_bridges(self) -> None:
        with (
            contextlib.suppress(docker.errors.DockerException, OSError),
            contextlib.closing(self.client()) as client,
        ):
            for network in client.networks.list():
                if network.attrs.get("Driver") == "bridge":
                    self.bridges.add(f"br-{str(network.id)[:12]}")

    def close(self) -> None:
        """Remove what it holds, stop it, delete its folders and bridges."""
        if self.process is not None and self.process.poll() is None:
            with (
                contextlib.suppress(docker.errors.DockerException, OSError),
                contextlib.closing(self.client()) as client,
            ):
                for container in client.containers.list(all=True, ignore_removed=True):
                    container.remove(force=True)
                self._remember_bridges()
                for network in client.networks.list():
                    if network.name not in ("none", "host", "bridge"):
                        network.remove()
        self.stop()
        for bridge in self.bridges:
            subprocess.run(["ip", "link", "delete", bridge], capture_output=True, check=False)
        for folder in self.folders:
            shutil.rmtree(folder, ignore_errors=True)
        for suffix in ("sock", "pid", "log"):
            Path(f"/tmp/mlpt-dockerd-{self.token}.{suffix}").unlink(missing_ok=True)
