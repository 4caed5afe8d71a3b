"""One bench run's private corner of the Docker engine, its processes and its cleanup.

Everything the bench makes is uniquely named and labelled with the run's token: the network
``mlpt-bench-<token>``, floor containers labelled ``dev.mlplatform.bench.run=<token>``,
model containers owned by controller ``bench-<token>``. ``cleanup()`` removes exactly those
(and stops the processes the bench started, by their own process group); nothing else on
the engine is touched.

The counting proxy (``docker_proxy.py``) runs as its own process; the system under test and
the floor's docker-py client talk to the engine through it (same path, same overhead), while
the bench's observers (events, inspect) use the engine's socket directly and are not counted.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import docker
import docker.errors
from tests.support.confinement import Confined

from mlplatform.runners.base import LABEL_CONTROLLER

BENCH_LABEL = "dev.mlplatform.bench.run"
REPO = Path(__file__).resolve().parent.parent
PYTHON = REPO / ".venv" / "bin" / "python"
MLPLATFORM = REPO / ".venv" / "bin" / "mlplatform"
ENGINE_SOCKET = "/var/run/docker.sock"


def wait_until(
    check: Callable[[], bool], *, timeout: float, interval: float = 0.02, what: str = ""
) -> None:
    """Poll ``check`` until it is true; ``TimeoutError`` naming ``what`` otherwise."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"not within {timeout}s: {what}")
        time.sleep(interval)


@dataclass
class Process:
    """A subprocess the bench started, in its own process group."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, timeout: float = 15.0) -> None:
        if self.popen.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGTERM)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(5)

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@dataclass
class BenchEnv(Confined):
    """Names, folders, proxy and cleanup of one bench run (lives as long as the run)."""

    token: str
    root: Path
    processes: list[Process] = field(default_factory=list)
    _clients: list[docker.DockerClient] = field(default_factory=list)

    @classmethod
    def create(cls) -> BenchEnv:
        token = secrets.token_hex(3)
        root = Path(tempfile.mkdtemp(prefix=f"mlpt-bench-{token}-"))
        env = cls(token=token, root=root)
        env.make_folders()
        return env

    # --- names --------------------------------------------------------------------------

    @property
    def network(self) -> str:
        return f"mlpt-bench-{self.token}"

    @property
    def controller(self) -> str:
        return f"bench-{self.token}"

    @property
    def proxy_socket(self) -> Path:
        return self.root / "docker.sock"

    @property
    def proxy_log(self) -> Path:
        return self.root / "docker-requests.log"

    def model_id(self, tag: str, index: int) -> str:
        """``mlpt-b<token>-<tag><index>:1`` → container ``mlpt-b<token>-<tag><index>-1``."""
        return f"mlpt-b{self.token}-{tag}{index}:1"

    # --- clients and processes ----------------------------------------------------------

    def direct_client(self) -> docker.DockerClient:
        """A client on the engine's own socket (observers; not counted)."""
        client = docker.DockerClient(base_url=f"unix://{ENGINE_SOCKET}", timeout=60)
        self._clients.append(client)
        return client

    def proxied_client(self) -> docker.DockerClient:
        """A client through the counting proxy (the floor, like the system under test)."""
        client = docker.DockerClient(
            base_url=f"unix://{self.proxy_socket}", timeout=60, max_pool_size=64
        )
        self._clients.append(client)
        return client

    def sut_environ(self) -> dict[str, str]:
        """The environment of an mlplatform process confined to this run."""
        environ = {k: v for k, v in os.environ.items() if not k.startswith("RUNNERS_")}
        environ.update(
            {
                **self.confined_environ(),
                "DOCKER_HOST": f"unix://{self.proxy_socket}",
                "ENVIRONMENT": "production",
                "PYTHONUNBUFFERED": "1",
            }
        )
        return environ

    def spawn(self, name: str, argv: list[str], environ: dict[str, str] | None = None) -> Process:
        log = self.root / f"{name}.log"
        with log.open("ab") as out:
            popen = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=environ,
                cwd=self.root,
                start_new_session=True,
            )
        process = Process(name=name, popen=popen, log=log)
        self.processes.append(process)
        return process

    def start_proxy(self) -> Process:
        proxy = self.spawn(
            "docker-proxy",
            [
                str(PYTHON),
                str(REPO / "bench" / "docker_proxy.py"),
                "--listen",
                str(self.proxy_socket),
                "--log",
                str(self.proxy_log),
            ],
        )
        wait_until(self.proxy_socket.exists, timeout=10, what="the counting proxy's socket")
        return proxy

    def requests_between(self, start: float, end: float) -> list[tuple[float, str, str]]:
        """(unix time, method, path) of every proxied request with ``start <= time < end``."""
        found = []
        try:
            lines = self.proxy_log.read_text().splitlines()
        except FileNotFoundError:
            return []
        for line in lines:
            stamp, _, rest = line.partition(" ")
            if start <= float(stamp) < end:
                method, _, path = rest.partition(" ")
                found.append((float(stamp), method, path))
        return found

    def ensure_network(self, client: docker.DockerClient) -> None:
        if not client.networks.list(names=[self.network]):
            client.networks.create(self.network, driver="bridge", labels={BENCH_LABEL: self.token})

    # --- cleanup ------------------------------------------------------------------------

    def run_containers(self, client: docker.DockerClient, *, models: bool = True) -> list[str]:
        """Ids of this run's containers: the floor's, and the models' unless ``models=False``."""
        ids: set[str] = set()
        labels = [f"{BENCH_LABEL}={self.token}"]
        if models:
            labels.append(f"{LABEL_CONTROLLER}={self.controller}")
        for label in labels:
            for container in client.containers.list(
                all=True, ignore_removed=True, filters={"label": label}
            ):
                ids.add(str(container.id))
        return sorted(ids)

    def remove_containers(
        self, client: docker.DockerClient, *, models: bool = True, threads: int = 8
    ) -> None:
        """Remove this run's containers (several at a time); see ``run_containers``."""
        ids = self.run_containers(client, models=models)
        chunks = [ids[i::threads] for i in range(threads)]

        def remove(chunk: list[str]) -> None:
            for container_id in chunk:
                with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                    client.api.remove_container(container_id, force=True)

        workers = [threading.Thread(target=remove, args=(c,)) for c in chunks if c]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()

    def cleanup(self) -> None:
        """Stop this run's processes, remove its containers and network; nothing else."""
        for process in reversed(self.processes):
            if process.name != "docker-proxy":
                process.stop()
        client = docker.DockerClient(base_url=f"unix://{ENGINE_SOCKET}", timeout=60)
        try:
            self.remove_containers(client)
            for network in client.networks.list(names=[self.network]):
                if network.name == self.network:
                    with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                        network.remove()
        finally:
            client.close()
        for process in self.processes:
            process.stop()
        for client in self._clients:
            with contextlib.suppress(Exception):
                client.close()
        print(f"bench: cleaned up run {self.token} (logs kept in {self.root})", file=sys.stderr)
