"""The connection to the Docker engine, and the one place engine errors become ours.

``Engine`` owns the docker-py client: created on first use (so importing and constructing a
runner never touches the engine), dropped whenever the engine stops answering, and created
again on the next call — so the runner recovers by itself when the engine comes back.

``Engine.guard(operation, subject, image=...)`` wraps every engine call. Each docker-py,
requests, urllib3 or socket exception is translated there into an ``mlplatform.errors``
type, with the original chained (``raise ... from``); no caller ever sees a docker-py
exception. Which type is decided by ``RULES``, one table read top to bottom: the operation
(an ``Operation``, never the wording of a message), the exception's type and HTTP status,
and — only where the engine gives no other signal — words in the engine's message.

Timeouts: one number, ``RUNNERS_DOCKER_TIMEOUT`` (default 10 s), bounds every request
(docker-py cannot split connect and read timeouts on a unix socket). A socket nobody serves
fails at once (connection refused / no such file); an engine that accepts but never answers
fails after the timeout. Stopping adds its grace period to it; pulls and the event stream are
unbounded by design (docker-py sends them with no timeout).
"""

from __future__ import annotations

import contextlib
import enum
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import docker
import docker.errors
import requests.exceptions
import urllib3.exceptions

from mlplatform import errors
from mlplatform.config import Settings


class Operation(enum.StrEnum):
    """What the runner asked of the engine; the value starts the error message."""

    CONNECT = "connect to the Docker engine"
    PULL = "pull image"
    INSPECT_IMAGE = "inspect image"
    CREATE = "create container"
    START = "start container"
    STOP = "stop container"
    REMOVE = "remove container"
    INSPECT = "inspect container"
    LOGS = "read the logs of container"
    RENAME = "rename container"
    CONNECT_NETWORK = "connect to the network"
    DISCONNECT_NETWORK = "disconnect from the network"
    LIST = "list containers"
    CREATE_NETWORK = "create network"
    INSPECT_NETWORK = "inspect network"
    REMOVE_NETWORK = "remove network"
    OPEN_EVENTS = "open the event stream"
    READ_EVENTS = "read the event stream"


# What changes the engine: refused once the process is stopping (``Engine.stop_writes``).
WRITES: frozenset[Operation] = frozenset(
    {
        Operation.PULL,
        Operation.CREATE,
        Operation.START,
        Operation.STOP,
        Operation.REMOVE,
        Operation.RENAME,
        Operation.CONNECT_NETWORK,
        Operation.DISCONNECT_NETWORK,
        Operation.CREATE_NETWORK,
        Operation.REMOVE_NETWORK,
    }
)

# Connections kept to the engine: enough for the widest fan-out (teardown) to run at once.
POOL_SIZE = 64

_ANY: frozenset[Operation] = frozenset(Operation)
_UNAVAILABLE: tuple[type[Exception], ...] = (
    docker.errors.DockerException,  # docker-py's own, e.g. "Error while fetching server API"
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
    urllib3.exceptions.HTTPError,
    OSError,
)


@dataclass(frozen=True)
class Rule:
    """One row of the error table: when it applies, and the error it makes.

    A rule matches an exception raised during one of ``operations`` that is an instance of
    ``exception``, whose HTTP status is in ``statuses`` (if given) and whose engine message
    contains one of ``words`` (if given). ``message`` is formatted with ``doing`` (the
    operation and its subject), ``image``, ``host`` and ``explanation`` (the engine's words).
    """

    error: type[errors.RunnerError]
    message: str = "{doing}: {explanation}"
    operations: frozenset[Operation] = _ANY
    exception: type[Exception] | tuple[type[Exception], ...] = docker.errors.APIError
    statuses: range | frozenset[int] | None = None
    words: tuple[str, ...] = ()

    def matches(self, operation: Operation, error: Exception, explanation: str) -> bool:
        if operation not in self.operations or not isinstance(error, self.exception):
            return False
        if self.statuses is not None:
            status = error.status_code if isinstance(error, docker.errors.APIError) else None
            if status not in self.statuses:
                return False
        lowered = explanation.lower()
        return not self.words or any(word in lowered for word in self.words)


_IMAGE_NOT_FOUND = 'image "{image}" was not found: {explanation}'
_CONTAINER_WRITES = frozenset({Operation.CREATE, Operation.START})

# The translation of engine failures, first match wins.
RULES: tuple[Rule, ...] = (
    # docker-py's own ImageNotFound: a 404 that names an image (inspect image, create).
    Rule(errors.ImageNotFound, _IMAGE_NOT_FOUND, exception=docker.errors.ImageNotFound),
    Rule(
        errors.ImageNotFound,
        _IMAGE_NOT_FOUND,
        operations=frozenset({Operation.PULL}),
        statuses=frozenset({404}),
    ),
    # Text: a pull reports most failures as an error line inside its 200 stream, with no
    # status; only the registry's words tell a missing image from a broken pull.
    Rule(
        errors.ImageNotFound,
        _IMAGE_NOT_FOUND,
        operations=frozenset({Operation.PULL}),
        words=("pull access denied", "manifest unknown", "repository does not exist", "not found"),
    ),
    Rule(
        errors.ImagePullFailed,
        'pulling image "{image}" failed: {explanation}',
        operations=frozenset({Operation.PULL}),
    ),
    # Text: a taken host port is a plain 500 from start; only its words say so.
    Rule(
        errors.PortInUse,
        "{doing}: a host port is already in use: {explanation}",
        operations=_CONTAINER_WRITES,
        words=("port is already allocated", "address already in use"),
    ),
    Rule(
        errors.ContainerConflict,
        operations=frozenset({Operation.CREATE, Operation.RENAME}),
        statuses=frozenset({409}),
    ),
    # Text: a 500 saying the engine cannot reach its own runtime (containerd restarting):
    # as good as an engine that does not answer, and as passing.
    Rule(errors.RunnerUnavailable, statuses=range(500, 600), words=("connection refused",)),
    Rule(errors.StartFailed, operations=_CONTAINER_WRITES),
    Rule(errors.RunnerError),
    # Not an answer from the engine at all (APIError, an answer, matched above).
    Rule(
        errors.RunnerUnavailable,
        "the Docker engine at {host} does not answer ({doing}): {explanation}",
        exception=_UNAVAILABLE,
    ),
    Rule(errors.RunnerError, "{doing} failed: {explanation}", exception=Exception),
)


def translate(
    error: Exception, operation: Operation, subject: str = "", *, image: str | None, host: str
) -> errors.RunnerError:
    """The ``mlplatform.errors`` type for one engine failure, by the first rule of ``RULES``."""
    if isinstance(error, docker.errors.APIError):
        explanation = str(error.explanation or error)
    else:
        explanation = _short(error)
    doing = f"{operation.value} {subject}" if subject else operation.value
    rule = next(r for r in RULES if r.matches(operation, error, explanation))
    return rule.error(
        rule.message.format(doing=doing, image=image, host=host, explanation=explanation)
    )


class Engine:
    """A lazily created docker-py client for one settings object; lives as long as its runner."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._client: docker.DockerClient | None = None
        self._writes_stopped = threading.Event()

    @property
    def host(self) -> str:
        return self._settings.docker_host or os.environ.get("DOCKER_HOST") or "the default socket"

    def client(self) -> docker.DockerClient:
        """The client, created on first use (asks the engine its API version: a liveness check)."""
        if self._client is None:
            environment = dict(os.environ)
            if self._settings.docker_host:
                environment["DOCKER_HOST"] = self._settings.docker_host
            with self.guard(Operation.CONNECT):
                self._client = docker.DockerClient.from_env(
                    timeout=self._settings.runners_docker_timeout,  # type: ignore[arg-type]
                    environment=environment,
                    # Teardowns stop many containers at once, each request held open for its
                    # grace period: one connection each, not a queue behind docker-py's 10.
                    max_pool_size=POOL_SIZE,
                )
        return self._client

    def reset(self) -> None:
        """Forget the client; the next call connects again."""
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                client.close()

    def close(self) -> None:
        self.reset()

    def stop_writes(self) -> None:
        """Refuse every write from now on (``Stopping``); reads go on. For the engine's life."""
        self._writes_stopped.set()

    @contextlib.contextmanager
    def guard(
        self, operation: Operation, subject: str = "", *, image: str | None = None
    ) -> Iterator[None]:
        """Translate any engine failure inside the block into an ``mlplatform.errors`` type.

        A write once ``stop_writes`` was called raises ``Stopping`` before it is sent.
        """
        if operation in WRITES and self._writes_stopped.is_set():
            doing = f"{operation.value} {subject}" if subject else operation.value
            raise errors.Stopping(f"{doing}: not done, the process is stopping")
        try:
            yield
        except errors.RunnerError:
            raise
        except _UNAVAILABLE as error:
            translated = translate(error, operation, subject, image=image, host=self.host)
            if isinstance(translated, errors.RunnerUnavailable):
                self.reset()
            raise translated from error


def _short(error: BaseException) -> str:
    text = str(error) or type(error).__name__
    return text if len(text) <= 300 else text[:297] + "..."
