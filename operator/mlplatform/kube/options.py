"""Command-line options of ``mlplatform operator`` (kept apart so ``--help`` needs no kopf)."""

from __future__ import annotations

import argparse

from mlplatform import argtypes


def add_arguments(parser: argparse.ArgumentParser) -> None:
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument(
        "--namespace",
        "-n",
        action="append",
        default=[],
        metavar="NAMESPACE",
        help="watch this namespace (repeatable; default: every namespace)",
    )
    scope.add_argument(
        "--all-namespaces",
        "-A",
        action="store_true",
        help="watch every namespace (the default; refuses --namespace)",
    )
    parser.add_argument(
        "--standalone",
        action="store_true",
        help="no peering: do not coordinate with other replicas",
    )
    parser.add_argument("--peering", default="mlplatform", help="kopf peering object name")
    parser.add_argument(
        "--liveness",
        default="http://0.0.0.0:8080/healthz",
        help="liveness endpoint URL ('' to disable)",
    )
    parser.add_argument(
        "--metrics-port",
        type=argtypes.port_or_zero,
        default=9090,
        help="Prometheus metrics port (0 to disable)",
    )
    parser.add_argument(
        "--webhook-port",
        type=argtypes.port_or_zero,
        default=0,
        help="serve admission webhooks on this port (0: off)",
    )
    parser.add_argument("--webhook-host", default=None, help="host name in the webhook certificate")
    parser.add_argument(
        "--webhook-cert", default=None, help="TLS certificate file for the webhook server"
    )
    parser.add_argument(
        "--webhook-key", default=None, help="TLS private key file for the webhook server"
    )
    parser.add_argument(
        "--log-format",
        choices=["plain", "full", "json"],
        default="full",
        help="kopf's log format (MLPLATFORM_LOG_FORMAT=json turns full into json)",
    )
    parser.add_argument("--verbose", "-v", action="store_true", help="debug logs")
    parser.add_argument(
        "--webhook-cert-dir",
        default="/tmp/mlplatform-webhook",
        help="directory with tls.crt/tls.key/ca.crt (e.g. a cert-manager Secret); "
        "a self-signed pair is generated there when absent",
    )
    parser.add_argument(
        "--webhook-managed",
        default=None,
        metavar="NAME",
        help="let the operator create/patch the webhook configurations NAME with its CA "
        "(for clusters without cert-manager)",
    )
    parser.add_argument(
        "--resync-interval",
        type=argtypes.positive_seconds,
        default=60.0,
        metavar="SECONDS",
        help="seconds between full resyncs of every model (safety net for missed events)",
    )
    parser.add_argument(
        "--delete-timeout",
        type=argtypes.positive_seconds,
        default=30.0,
        metavar="SECONDS",
        help="seconds a deletion waits for an unreachable runner before releasing the object",
    )


def namespaces(args: argparse.Namespace) -> list[str]:
    """The namespaces to watch; empty means every namespace (``--all-namespaces``)."""
    if args.all_namespaces:
        return []
    return list(dict.fromkeys(args.namespace or []))
