"""The engine-error table: which of our errors an engine failure becomes, by operation.

The exceptions are docker-py's own (``APIError`` and its subclasses, with a real
``requests.Response`` as the engine's answer) and the transport errors requests raises:
constructed here, not mocked, so the table is checked against the types the engine client
really raises. The real engine's side is in ``tests/integration/test_docker_runner_*.py``.
"""

from __future__ import annotations

import docker.errors
import pytest
import requests

from mlplatform import errors
from mlplatform.config import Settings
from mlplatform.runners.docker_engine import RULES, Engine, Operation, translate

IMAGE = "registry.example/iris:1"
HOST = "unix:///run/test.sock"


def api_error(
    status: int | None,
    explanation: str,
    kind: type[docker.errors.APIError] = docker.errors.APIError,
) -> docker.errors.APIError:
    """An engine answer as docker-py raises it (no response: an error line in a stream)."""
    if status is None:
        return kind(explanation, explanation=explanation)
    response = requests.Response()
    response.status_code = status
    response.reason = "test"
    response.url = "http+docker://localhost/v1.45/test"
    return kind(f"{status} test", response=response, explanation=explanation)


def translated(
    error: Exception, operation: Operation, subject: str = "iris-1.0"
) -> errors.RunnerError:
    return translate(error, operation, subject, image=IMAGE, host=HOST)


@pytest.mark.parametrize(
    ("operation", "error", "expected"),
    [
        # pulls: a 404, or the registry's words in the stream, mean the image does not exist
        (Operation.PULL, api_error(404, "no such image"), errors.ImageNotFound),
        (
            Operation.PULL,
            api_error(None, "manifest unknown: manifest unknown"),
            errors.ImageNotFound,
        ),
        (Operation.PULL, api_error(None, "pull access denied for x"), errors.ImageNotFound),
        (Operation.PULL, api_error(None, "toomanyrequests: rate limit"), errors.ImagePullFailed),
        (Operation.PULL, api_error(500, "Get https://r.example: EOF"), errors.ImagePullFailed),
        # docker-py's ImageNotFound names an image whatever the operation
        (
            Operation.INSPECT_IMAGE,
            api_error(404, "No such image: x", docker.errors.ImageNotFound),
            errors.ImageNotFound,
        ),
        (
            Operation.CREATE,
            api_error(404, "No such image: x", docker.errors.ImageNotFound),
            errors.ImageNotFound,
        ),
        # a taken host port is told by words only, and only when starting or creating
        (
            Operation.START,
            api_error(500, "Bind for 0.0.0.0:7000 failed: port is already allocated"),
            errors.PortInUse,
        ),
        (Operation.START, api_error(500, "listen tcp: address already in use"), errors.PortInUse),
        (Operation.REMOVE, api_error(500, "port is already allocated"), errors.RunnerError),
        # a name held by another container: a conflict at create, nothing of the kind elsewhere
        (
            Operation.CREATE,
            api_error(409, "Conflict. The name is already in use"),
            errors.ContainerConflict,
        ),
        (Operation.REMOVE, api_error(409, "removal already in progress"), errors.RunnerError),
        (Operation.START, api_error(409, "container is marked for removal"), errors.StartFailed),
        # the engine cannot reach its own runtime: as good as down
        (
            Operation.INSPECT,
            api_error(500, "dial unix containerd.sock: connection refused"),
            errors.RunnerUnavailable,
        ),
        (Operation.INSPECT, api_error(400, "connection refused"), errors.RunnerError),
        # the engine refused to create or start: the model's start failed
        (Operation.CREATE, api_error(400, "invalid mount config"), errors.StartFailed),
        (Operation.START, api_error(500, 'exec: "/no/such": not found'), errors.StartFailed),
        # anything else the engine answers is a plain runner error
        (
            Operation.INSPECT,
            api_error(404, "No such container: x", docker.errors.NotFound),
            errors.RunnerError,
        ),
        (Operation.LIST, api_error(500, "internal error"), errors.RunnerError),
        (Operation.STOP, api_error(500, "cannot kill"), errors.RunnerError),
        # no answer at all
        (
            Operation.CREATE,
            requests.exceptions.ConnectionError("refused"),
            errors.RunnerUnavailable,
        ),
        (
            Operation.LIST,
            requests.exceptions.ReadTimeout("read timed out"),
            errors.RunnerUnavailable,
        ),
        (
            Operation.CONNECT,
            docker.errors.DockerException("Error while fetching server API version"),
            errors.RunnerUnavailable,
        ),
        (Operation.READ_EVENTS, ConnectionResetError("reset by peer"), errors.RunnerUnavailable),
        (Operation.INSPECT, ValueError("unexpected"), errors.RunnerError),
    ],
)
def test_each_engine_failure_becomes_the_error_its_operation_and_answer_say(
    operation: Operation, error: Exception, expected: type[errors.RunnerError]
) -> None:
    assert type(translated(error, operation)) is expected


def test_an_error_type_never_depends_on_the_message_label() -> None:
    """The same answer during a pull and during a start are different errors (by operation)."""
    missing = api_error(None, "not found")
    assert type(translated(missing, Operation.PULL)) is errors.ImageNotFound
    assert type(translated(missing, Operation.START)) is errors.StartFailed
    assert type(translated(missing, Operation.INSPECT)) is errors.RunnerError


@pytest.mark.parametrize("operation", list(Operation))
def test_every_operation_has_an_answer_for_every_kind_of_failure(operation: Operation) -> None:
    for error in (
        api_error(500, "x"),
        api_error(None, "x"),
        requests.exceptions.ConnectionError("x"),
        RuntimeError("x"),
    ):
        assert isinstance(translated(error, operation), errors.RunnerError)


def test_the_last_rules_catch_every_answer_and_every_exception() -> None:
    assert RULES[-1].exception is Exception
    answers = [r for r in RULES if r.exception is docker.errors.APIError]
    catch_all = answers[-1]
    assert (catch_all.error, catch_all.statuses, catch_all.words) == (errors.RunnerError, None, ())


def test_messages_name_the_operation_its_subject_the_image_and_the_engine() -> None:
    started = translated(api_error(400, "bad command"), Operation.START, "iris-1.0")
    assert started.message == "start container iris-1.0: bad command"
    pulled = translated(api_error(None, "EOF"), Operation.PULL, IMAGE)
    assert pulled.message == f'pulling image "{IMAGE}" failed: EOF'
    missing = translated(api_error(404, "no such image"), Operation.PULL, IMAGE)
    assert missing.message == f'image "{IMAGE}" was not found: no such image'
    down = translated(requests.exceptions.ConnectionError("refused"), Operation.LIST, "")
    assert down.message == f"the Docker engine at {HOST} does not answer (list containers): refused"


def test_the_guard_chains_the_engine_error_and_lets_ours_through() -> None:
    engine = Engine(Settings.load(environ={}, docker_host=HOST))
    original = api_error(409, "Conflict. The name is already in use")
    with pytest.raises(errors.ContainerConflict) as raised, engine.guard(Operation.CREATE, "x"):
        raise original
    assert raised.value.__cause__ is original
    assert HOST in engine.host

    ours = errors.StartFailed("already ours")
    with pytest.raises(errors.StartFailed) as passed, engine.guard(Operation.START, "x"):
        raise ours
    assert passed.value is ours
