"""The exceptions of mlplatform, in one place; foreign errors are chained underneath (``from``).

    MLPlatformError
    ├── ConfigurationError          settings that cannot work (bad directory, bad port)
    └── RunnerError                 a runner could not do what was asked
        ├── RunnerUnavailable       the engine does not answer (down, socket unreachable); retry
        │   └── NeedsCluster        runner kubernetes outside the operator (local mode); final
        ├── NotPermitted            the runner's credentials may not make a request it needs (403)
        ├── RunnerDisabled          the runner is switched off (RUNNERS_DOCKER_ENABLED is not true)
        ├── RunnerNotImplemented    spec.runner names a backend this build does not have (``pod``)
        ├── ImageNotFound           the image is absent and cannot be had (policy, registry)
        ├── ImagePullFailed         pulling the image failed (registry unreachable, auth, ...)
        ├── ContainerConflict       a container with the model's name exists and is not ours
        ├── PortInUse               a host port the model needs is taken
        ├── Stopping                the process is stopping: the runner makes no new writes
        └── StartFailed             the engine refused to create or start the container
            ├── StorageNotConfigured  a volume the spec asks for has no source configured
            └── OverLimit           the spec asks for more than an administrator allows

``RunnerError.retryable`` tells the reconcile core whether waiting may fix it.
"""

from __future__ import annotations


class MLPlatformError(Exception):
    """Base of every error mlplatform raises on purpose."""


class ConfigurationError(MLPlatformError):
    """Raised when settings cannot work (unreadable .env, impossible values)."""


class RunnerError(MLPlatformError):
    """Raised by a runner when it cannot apply, observe or delete a workload."""

    retryable: bool = True

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class RunnerUnavailable(RunnerError):
    """Raised when the engine does not answer within the timeout."""


class NeedsCluster(RunnerUnavailable):
    """Raised by runner kubernetes where there is no Kubernetes API (local mode): for good."""

    retryable = False


class NotPermitted(RunnerError):
    """Raised when the API refuses a request the runner needs (HTTP 403): an administrator
    grants it (the message names the verb, the resource and the role); retried meanwhile."""


class Stopping(RunnerError):
    """Raised by a runner told to stop writing (``stop_writes``): the process is stopping."""

    retryable = False


class RunnerDisabled(RunnerError):
    """Raised when the runner is switched off by configuration."""

    retryable = False


class RunnerNotImplemented(RunnerError):
    """Raised when ``spec.runner`` names a backend this build does not have."""

    retryable = False


class ImageNotFound(RunnerError):
    """Raised when the image is absent and cannot be pulled (policy Never, unknown image)."""


class ImagePullFailed(RunnerError):
    """Raised when pulling the image fails for another reason (network, auth, registry error)."""


class ContainerConflict(RunnerError):
    """Raised when a container with the model's name exists and is not labelled as ours."""


class PortInUse(RunnerError):
    """Raised when a host port the model asks for is already taken."""


class StartFailed(RunnerError):
    """Raised when the engine refuses to create or start the container."""


class StorageNotConfigured(StartFailed):
    """Raised when the spec mounts a path (``/data``) whose source the operator lacks."""

    retryable = False


class OverLimit(StartFailed):
    """Raised when the spec asks for more resources than an administrator's cap allows."""

    retryable = False
