"""The connection to the Docker engine, and the one place engine errors become ours.

``Engine`` owns the docker-py client: created on first use (so importing and constructing a
runner never touches the engine), dropped whenever the engine stops answering, and created
again on the next call — so the runner recovers by itself when the engine comes back.

``Engine.guard(doing, image=...)`` wraps every engine call. Each docker-py, requests,
urllib3 or socket exception is translated there into an ``mlplatform.errors`` type, with
the original chained (``raise ... from``); no caller ever sees a docker-py exception.

Timeouts: one number, ``RUNNERS_DOCKER_TIMEOUT`` (default 10 s), bounds every request
(docker-py cannot split connect and read timeouts on a unix socket). A socket nobody serves
fails at once (connection refused / no such file); an engine that accepts but never answers
fails after the timeout. Stopping adds its grace period to it; pulls and the event stream are
unbounded by design (docker-py sends them with no timeout).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import docker
import docker.errors
import requests.exceptions
import urllib3.exceptions

from mlplatform import errors
from mlplatform.config import Settings

# Engine messages that mean "this image does not exist" rather than "the pull broke".
_MISSING_IMAGE_HINTS = (
    "pull access denied",
    "manifest unknown",
    "repository does not exist",
    "not found",
)
_PORT_IN_USE_HINTS = ("port is already allocated", "address already in use")
_UNAVAILABLE = (
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
    urllib3.exceptions.HTTPError,
    OSError,
)


class Engine:
    """A lazily created docker-py client for one settings object; lives as long as its runner."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._client: docker.DockerClient | None = None

    @property
    def host(self) -> str:
        return self._settings.docker_host or os.environ.get("DOCKER_HOST") or "the default socket"

    def client(self) -> docker.DockerClient:
        """The client, created on first use (asks the engine its API version: a liveness check)."""
        if self._client is None:
            environment = dict(os.environ)
            if self._settings.docker_host:
                environment["DOCKER_HOST"] = self._settings.docker_host
            with self.guard("connect to the Docker engine"):
                self._client = docker.DockerClient.from_env(
                    timeout=self._settings.runners_docker_timeout,  # type: ignore[arg-type]
                    environment=environment,
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

    @contextlib.contextmanager
    def guard(self, doing: str, *, image: str | None = None) -> Iterator[None]:
        """Translate any engine failure inside the block into an ``mlplatform.errors`` type."""
        try:
            yield
        except errors.RunnerError:
            raise
        except (docker.errors.DockerException, *_UNAVAILABLE) as error:
            translated = self.translate(error, doing=doing, image=image)
            if isinstance(translated, errors.RunnerUnavailable):
                self.reset()
            raise translated from error

    def translate(self, error: Exception, *, doing: str, image: str | None) -> errors.RunnerError:
        """The ``mlplatform.errors`` type for one engine failure (the mapping, in one place)."""
        if isinstance(error, docker.errors.APIError):
            return _api_error(error, doing=doing, image=image)
        if isinstance(error, (docker.errors.DockerException, *_UNAVAILABLE)):
            return errors.RunnerUnavailable(
                f"the Docker engine at {self.host} does not answer ({doing}): {_short(error)}"
            )
        return errors.RunnerError(f"{doing} failed: {_short(error)}")


def _api_error(
    error: docker.errors.APIError, *, doing: str, image: str | None
) -> errors.RunnerError:
    explanation = str(error.explanation or error)
    lowered = explanation.lower()
    if isinstance(error, docker.errors.ImageNotFound) or (
        doing.startswith("pull") and any(hint in lowered for hint in _MISSING_IMAGE_HINTS)
    ):
        return errors.ImageNotFound(f'image "{image}" was not found: {explanation}')
    if doing.startswith("pull"):
        return errors.ImagePullFailed(f'pulling image "{image}" failed: {explanation}')
    if any(hint in lowered for hint in _PORT_IN_USE_HINTS):
        return errors.PortInUse(f"{doing}: a host port is already in use: {explanation}")
    if error.status_code == 409 and doing.startswith("create"):
        return errors.ContainerConflict(f"{doing}: {explanation}")
    if error.is_server_error() and "connection refused" in lowered:
        return errors.RunnerUnavailable(f"{doing}: {explanation}")
    if doing.startswith(("create", "start")):
        return errors.StartFailed(f"{doing}: {explanation}")
    return errors.RunnerError(f"{doing}: {explanation}")


def _short(error: BaseException) -> str:
    text = str(error) or type(error).__name__
    return text if len(text) <= 300 else text[:297] + "..."
