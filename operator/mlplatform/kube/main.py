"""``mlplatform operator``: the kopf operator against the cluster of the usual kubeconfig.

Builds, once for the process: the settings (from the environment), one runner per kind,
the ``Reconciler`` with its Prometheus metrics (served on ``--metrics-port``), the
``Operator`` (store, sink, controller) and its handlers, the admission webhooks when
``--webhook-port`` is given; then
runs ``kopf.operator`` until SIGINT/SIGTERM. One replica is active at a time through kopf's
peering (``--peering``, default ``mlplatform``; the peering object is created when missing);
``--standalone`` turns that off. kopf logs in with the kubeconfig (``KUBECONFIG`` honoured)
or the in-cluster service account; the status writer uses the same sources.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from pathlib import Path

import kopf
from prometheus_client import start_http_server

from mlplatform import errors
from mlplatform.config import Settings
from mlplatform.core.metrics import Metrics
from mlplatform.core.reconcile import Reconciler
from mlplatform.kube import handlers
from mlplatform.kube import options as kube_options
from mlplatform.kube.api import KubeApi, PeeringUnavailable, ensure_peering
from mlplatform.kube.operator import Operator
from mlplatform.kube.store import plain_namespaces
from mlplatform.runners import selection

log = logging.getLogger(__name__)

_LOG_FORMATS = {
    "plain": kopf.LogFormat.PLAIN,
    "full": kopf.LogFormat.FULL,
    "json": kopf.LogFormat.JSON,
}


def run(args: argparse.Namespace) -> int:
    """Run the operator until stopped; the exit code of ``mlplatform operator``."""
    try:
        settings = Settings.load()
    except errors.ConfigurationError as error:
        log.error("%s", error)
        return 2
    log_format = args.log_format
    if log_format == "full" and settings.log_format == "json":
        log_format = "json"
    kopf.configure(verbose=args.verbose, log_format=_LOG_FORMATS[log_format])

    api = KubeApi.from_environment()
    namespaces = kube_options.namespaces(args)
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
    if args.metrics_port:
        start_http_server(args.metrics_port, registry=metrics.registry)
    operator = Operator(
        reconciler=Reconciler(runners, metrics=metrics),
        api=api,
        runner=enabled[0],
        more_runners=enabled[1:],
        namespaces=namespaces,
        resync_interval=args.resync_interval,
        delete_timeout=args.delete_timeout,
    )
    registry = kopf.OperatorRegistry()
    handlers.register(registry, operator)
    # A registry of our own has none of kopf's implicit logins: log in as the official client
    # does (in-cluster service account, else the kubeconfig; KUBECONFIG honoured).
    kopf.on.login(id="login", registry=registry)(kopf.login_via_client)
    kopf_settings = handlers.configure(kopf.OperatorSettings())
    if args.webhook_port:
        _serve_admission(args, registry, kopf_settings)
    if not args.standalone:
        try:
            ensure_peering(api, args.peering, namespaces)
        except PeeringUnavailable as error:
            log.error("%s", error)
            return 2
    log.info(
        "Starting the operator (controller %s, %s)",
        settings.controller,
        ", ".join(namespaces) if namespaces else "all namespaces",
    )
    asyncio.run(
        kopf.operator(
            registry=registry,
            settings=kopf_settings,
            standalone=args.standalone,
            peering_name=None if args.standalone else args.peering,
            priority=kube_options.priority(args),
            clusterwide=not namespaces,
            namespaces=namespaces,
            liveness_endpoint=args.liveness or None,
        )
    )
    return 0


def _serve_admission(
    args: argparse.Namespace, registry: kopf.OperatorRegistry, settings: kopf.OperatorSettings
) -> None:
    from mlplatform.kube import admission

    admission.register(registry)
    if args.webhook_cert and args.webhook_key:
        settings.admission.server = kopf.WebhookServer(
            addr="0.0.0.0",
            port=args.webhook_port,
            host=args.webhook_host,
            certfile=args.webhook_cert,
            pkeyfile=args.webhook_key,
        )
    else:
        settings.admission.server = admission.webhook_server(
            cert_dir=Path(args.webhook_cert_dir),
            addr="0.0.0.0",
            port=args.webhook_port,
            host=args.webhook_host,
        )
    if args.webhook_managed:
        settings.admission.managed = args.webhook_managed
