"""Command-line options of ``mlplatform operator`` (kept apart so ``--help`` needs no kopf)."""

from __future__ import annotations

import argparse
import os
import time

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
        "--priority",
        type=_priority,
        default="auto",
        metavar="N|auto",
        help="peering priority: the replica with the highest is active, the others wait; "
        "auto: earlier starts rank higher, so a new replica waits for the old one to go",
    )
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
        help=(
            "seconds a deletion waits for an unreachable runner before releasing the object "
            "(on top of the model's terminationGracePeriodSeconds)"
        ),
    )


def namespaces(args: argparse.Namespace) -> list[str]:
    """The namespaces to watch; empty means every namespace (``--all-namespaces``)."""
    if args.all_namespaces:
        return []
    return list(dict.fromkeys(args.namespace or []))


# "auto" priorities count down from here by start time (seconds since 2020-01-01): positive
# for millennia, and well inside the int64 the peering object's JSON can hold.
_EPOCH = 1_577_836_800
_TOP = 2**45


def _priority(text: str) -> str | int:
    if text == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is neither an integer nor auto") from None


def priority(args: argparse.Namespace, *, now: float | None = None, pid: int | None = None) -> int:
    """The kopf peering priority; ``auto``: lower for later starts, distinct per process.

    kopf pauses every operator when two share the top priority, so replicas must differ.
    With ``auto`` the replica that started first keeps the lead; one that starts while it
    is alive waits (paused) until the first one's peering record expires.
    """
    if args.priority != "auto":
        return int(args.priority)
    started = int((time.time() if now is None else now) - _EPOCH)
    # Ten ranks per second (minus a per-process tie-breaker), newest lowest.
    return max(1, _TOP - started * 10 - ((os.getpid() if pid is None else pid) % 10))
