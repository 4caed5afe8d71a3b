"""A client under load on the models' network: how many requests failed while something changed.

``LoadClient`` runs the client test image (``tests/support/images.py``) on a session's
network, where the models' names and aliases resolve through Docker's DNS, as they do for
any consumer of a model. It sends ``GET PATH`` to ``HOST:PORT`` 20 times a second, each
request a fresh DNS lookup and a fresh connection (no client-side caching hides a moved or
missing address), and prints one line per request, which ``tally`` counts::

    with LoadClient.on(env, images.client, "iris.test", 8080, "/health") as load:
        load.wait_serving()          # at least one answer before the change starts
        ...change the model...
        result = load.stop()         # Tally(ok=..., failed=..., failures=[...])
    assert result.failed == 0 and result.ok >= 20

A request fails when the answer's first line is not ``HTTP/1.x 200`` within 5 s (refused,
unresolvable, reset, timed out, an error status).

How the client connects (``mode``). ``each`` (the default) looks the name up and tries its
addresses in turn, moving on to the next only when no connection can be made — what curl,
Go's ``net.Dial``, Python's ``socket.create_connection`` and Java do with a name that has
several addresses. ``first`` uses the first address only (busybox ``nc``/``wget``). The
difference matters for one moment of an update: when the old container leaves the network
to join again out of the alias (``docker_network.ModelsNetwork.retire``), Docker 20.10
removes its interface some 20-100 ms before its DNS record (measured), so a lookup in that
window can still return the old address, unreachable for the moment between, beside the new
one. ``each`` moves on to the new address (the request is a second slower); ``first`` fails
if the old address came first. Docker offers no way to drop a DNS record before the
interface (short of Swarm's load balancer), so the tests use ``each`` and the bench reports
both.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from types import TracebackType

import docker
import docker.errors
from docker.models.containers import Container

from tests.support.docker_env import SESSION_LABEL, DockerEnv, wait_until

REQUESTS_PER_SECOND = 20
# Requests still in flight when the client is told to stop finish within this (5 s each).
_DRAIN_SECONDS = 6.0


@dataclass(frozen=True)
class Tally:
    """What the client saw: answered, failed, and the failures' lines (``fail N reason``)."""

    ok: int
    failed: int
    failures: list[str] = field(default_factory=list)

    @property
    def sent(self) -> int:
        return self.ok + self.failed


def tally(output: str) -> Tally:
    """Count the client's result lines (anything else it printed is ignored)."""
    ok, failures = 0, []
    for line in output.splitlines():
        if line.startswith("ok "):
            ok += 1
        elif line.startswith("fail "):
            failures.append(line)
    return Tally(ok=ok, failed=len(failures), failures=failures)


class LoadClient:
    """One client container sending requests until ``stop``; removed on exit."""

    def __init__(
        self,
        client: docker.DockerClient,
        image: str,
        host: str,
        port: int,
        path: str = "/",
        *,
        network: str,
        name: str,
        labels: dict[str, str],
        rate: float = REQUESTS_PER_SECOND,
        mode: str = "each",
    ) -> None:
        self.target = f"http://{host}:{port}{path}"
        self._container: Container = client.containers.run(
            image,
            command=[host, str(port), path, f"{1 / rate:.3f}", mode],
            name=name,
            network=network,
            labels=labels,
            detach=True,
        )
        self._stopped: Tally | None = None

    @classmethod
    def on(
        cls,
        env: DockerEnv,
        image: str,
        host: str,
        port: int,
        path: str = "/",
        *,
        mode: str = "each",
    ) -> LoadClient:
        """A client on a test session's network, labelled for its cleanup."""
        env.ensure_network()
        return cls(
            env.client,
            image,
            host,
            port,
            path,
            network=env.network,
            name=env.helper_name("load"),
            labels={SESSION_LABEL: env.token},
            mode=mode,
        )

    def __enter__(self) -> LoadClient:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        with contextlib.suppress(docker.errors.APIError):
            self._container.remove(force=True)

    def so_far(self) -> Tally:
        """The results printed so far (the client keeps running)."""
        return tally(self._container.logs().decode(errors="replace"))

    def wait_serving(self, timeout: float = 15.0) -> Tally:
        """Block until the target has answered at least once; fails if none answered."""

        def answered() -> Tally | None:
            seen = self.so_far()
            return seen if seen.ok else None

        return wait_until(answered, timeout=timeout, interval=0.05)

    def stop(self) -> Tally:
        """Stop sending, let the requests in flight finish, and count everything."""
        if self._stopped is not None:
            return self._stopped
        self._container.kill(signal="SIGTERM")  # the loop stops; started requests run on
        # The client exits once every request it started has printed its line (each gives
        # up after 5 s), so waiting for the exit counts them all.
        self._container.wait(timeout=_DRAIN_SECONDS + 5)
        self._stopped = self.so_far()
        return self._stopped
