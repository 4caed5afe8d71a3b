"""``mlplatform operator``: the kopf operator against the cluster of the usual kubeconfig.

Takes the process's ``OperatorConfig`` (settings and options, merged and checked by
``kube.options.load``) and builds from it: one runner per kind,
the ``Reconciler`` with its Prometheus metrics (served on ``--metrics-port``), the
``Operator`` (store, sink, controller) and its handlers, the admission webhooks when
``--webhook-port`` is given; then
runs ``kopf.operator`` until SIGINT/SIGTERM. One replica is active at a time through kopf's
peering (``--peering``, default ``mlplatform``; the peering object is created when missing);
``--standalone`` turns that off. kopf logs in with the kubeconfig (``KUBECONFIG`` honoured)
or the in-cluster service account; the status writer uses the same sources.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from typing import Any

import kopf
from prometheus_client import start_http_server

from mlplatform import errors
from mlplatform.core.metrics import Metrics
from mlplatform.core.reconcile import Reconciler
from mlplatform.kube import handlers
from mlplatform.kube.api import KubeApi, PeeringUnavailable, ensure_peering
from mlplatform.kube.leadership import Peering
from mlplatform.kube.operator import Operator
from mlplatform.kube.options import OperatorConfig
from mlplatform.kube.store import plain_namespaces
from mlplatform.runners import selection

log = logging.getLogger(__name__)

_LOG_FORMATS = {
    "plain": kopf.LogFormat.PLAIN,
    "full": kopf.LogFormat.FULL,
    "json": kopf.LogFormat.JSON,
}


def run(config: OperatorConfig) -> int:
    """Run the operator until stopped; the exit code of ``mlplatform operator``."""
    settings = config.settings
    kopf.configure(verbose=config.verbose, log_format=_LOG_FORMATS[config.log_format])

    api = KubeApi.from_environment()
    namespaces = config.namespaces
    # One API client for the status writes and the Kubernetes runner, which lists and
    # watches in the operator's namespaces only (with patterns: everywhere, then filtered).
    runners = selection.Runners(
        settings, api_client=api.client, namespaces=plain_namespaces(namespaces)
    )
    try:
        enabled = runners.enabled() or [runners("docker")]
    except errors.ConfigurationError as error:
        log.error("%s", error)
        return 2
    log.info("Runners: %s", ", ".join(runner.type for runner in enabled))
    metrics = Metrics()
    if config.metrics_port:
        start_http_server(config.metrics_port, registry=metrics.registry)
    identity = f"{socket.gethostname()}/{os.getpid()}-{secrets.token_hex(3)}"
    priority = config.peering_priority()
    peering_namespaces = plain_namespaces(namespaces)
    peering = (
        None
        if config.standalone
        else Peering(
            read=lambda: api.peering_records(config.peering, peering_namespaces),
            identity=identity,
            priority=priority,
        )
    )
    lost = _Lost()
    operator = Operator(
        reconciler=Reconciler(runners, metrics=metrics),
        api=api,
        runner=enabled[0],
        more_runners=enabled[1:],
        namespaces=namespaces,
        resync_interval=config.resync_interval,
        delete_timeout=config.delete_timeout,
        workers=config.workers,
        peering=peering,
        on_lost=lost.set,
    )
    registry = kopf.OperatorRegistry()
    handlers.register(registry, operator)
    # A registry of our own has none of kopf's implicit logins: log in as the official client
    # does (in-cluster service account, else the kubeconfig; KUBECONFIG honoured).
    kopf.on.login(id="login", registry=registry)(kopf.login_via_client)
    kopf_settings = handlers.configure(kopf.OperatorSettings(), namespaces=namespaces)
    kopf_settings.peering.lifetime = config.peering_lifetime
    if config.webhook_port:
        _serve_admission(config, registry, kopf_settings)
    if not config.standalone:
        try:
            ensure_peering(api, config.peering, namespaces)
        except PeeringUnavailable as error:
            log.error("%s", error)
            return 2
    log.info(
        "Starting the operator (controller %s, %s, %d workers, resync every %gs)",
        settings.controller,
        ", ".join(namespaces) if namespaces else "all namespaces",
        config.workers,
        config.resync_interval,
    )
    asyncio.run(
        lost.around(
            registry=registry,
            settings=kopf_settings,
            standalone=config.standalone,
            peering_name=None if config.standalone else config.peering,
            priority=priority,
            identity=identity,
            clusterwide=not namespaces,
            namespaces=namespaces,
            liveness_endpoint=config.liveness or None,
        )
    )
    if lost.happened:
        log.error("Exiting: another replica took the lead (this one restarts as a standby)")
        return 1
    return 0


class _Lost:
    """Another replica took the lead: kopf is told to stop (cleanly) from any thread.

    kopf's stop flag is an asyncio future made in kopf's own loop: a threading flag would be
    waited on in a thread that ``asyncio.run`` then waits for at exit, forever."""

    def __init__(self) -> None:
        self.happened = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._flag: asyncio.Future[None] | None = None

    async def around(self, **options: Any) -> None:
        """``kopf.operator(**options)`` with this stop flag."""
        self._loop = asyncio.get_running_loop()
        self._flag = self._loop.create_future()
        if self.happened:
            self._flag.set_result(None)
        await kopf.operator(stop_flag=self._flag, **options)

    def set(self) -> None:
        self.happened = True
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._stop)

    def _stop(self) -> None:
        if self._flag is not None and not self._flag.done():
            self._flag.set_result(None)


def _serve_admission(
    config: OperatorConfig, registry: kopf.OperatorRegistry, settings: kopf.OperatorSettings
) -> None:
    from mlplatform.kube import admission

    admission.register(registry)
    if config.webhook_cert and config.webhook_key:
        settings.admission.server = kopf.WebhookServer(
            addr="0.0.0.0",
            port=config.webhook_port,
            host=config.webhook_host,
            certfile=config.webhook_cert,
            pkeyfile=config.webhook_key,
        )
    else:
        settings.admission.server = admission.webhook_server(
            cert_dir=config.webhook_cert_dir,
            addr="0.0.0.0",
            port=config.webhook_port,
            host=config.webhook_host,
        )
    if config.webhook_managed:
        settings.admission.managed = config.webhook_managed
