"""What ``mlplatform operator`` runs with: its options, declared once, and the settings.

Kept apart from ``kube.main`` so that ``--help`` needs no kopf. Every option an administrator
fixes per deployment has an environment variable (``MLPLATFORM_METRICS_PORT`` for
``--metrics-port``); a flag wins over its variable, the variable over the default
(docs/design.md, "Settings").
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlplatform import argtypes, config, flags
from mlplatform.config import Settings

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


def _log_format_from_settings(text: str) -> str:
    # MLPLATFORM_LOG_FORMAT (text|json, checked with the settings) picks kopf's format
    # when --log-format is not given: json stays json, text is kopf's full format.
    return "json" if text.strip().lower() == "json" else "full"


@dataclass(frozen=True)
class OperatorConfig:
    """Everything one ``mlplatform operator`` process runs with, read once and frozen."""

    settings: Settings
    namespace: tuple[str, ...] = flags.repeated(
        "--namespace",
        "-n",
        parse=argtypes.namespace,
        env="MLPLATFORM_NAMESPACES",
        metavar="NAMESPACE",
        group="scope",
        help="watch this namespace or glob pattern (repeatable; the variable: comma-separated; "
        "default, or the variable empty: every namespace)",
    )
    all_namespaces: bool = flags.switch(
        "--all-namespaces",
        "-A",
        group="scope",
        help="watch every namespace (the default; refuses --namespace, overrides its variable)",
    )
    standalone: bool = flags.switch(
        "--standalone",
        env="MLPLATFORM_STANDALONE",
        help="no peering: do not coordinate with other replicas",
    )
    peering: str = flags.option(
        "mlplatform",
        "--peering",
        env="MLPLATFORM_PEERING",
        metavar="NAME",
        help="kopf peering object name",
    )
    priority: int | str = flags.option(
        "auto",
        "--priority",
        parse=_priority,
        env="MLPLATFORM_PRIORITY",
        metavar="N|auto",
        help="peering priority: the replica with the highest is active, the others wait; "
        "auto: earlier starts rank higher, so a new replica waits for the old one to go",
    )
    peering_lifetime: int = flags.option(
        60,
        "--peering-lifetime",
        parse=argtypes.positive_int,
        env="MLPLATFORM_PEERING_LIFETIME",
        metavar="SECONDS",
        help="how long a replica's peering record lives without renewal: a standby takes "
        "over at most this long after the active replica dies (at once when it stops cleanly)",
    )
    liveness: str = flags.option(
        "http://0.0.0.0:8080/healthz",
        "--liveness",
        env="MLPLATFORM_LIVENESS",
        metavar="URL",
        help="liveness endpoint URL ('' to disable)",
    )
    metrics_port: int = flags.option(
        9090,
        "--metrics-port",
        parse=argtypes.port_or_zero,
        env="MLPLATFORM_METRICS_PORT",
        metavar="PORT",
        help="Prometheus metrics port (0 to disable)",
    )
    workers: int = flags.workers()
    resync_interval: float = flags.option(
        60.0,
        "--resync-interval",
        parse=argtypes.positive_seconds,
        env="MLPLATFORM_RESYNC_INTERVAL",
        metavar="SECONDS",
        help="seconds between full resyncs of every model (safety net for missed events)",
    )
    delete_timeout: float = flags.option(
        30.0,
        "--delete-timeout",
        parse=argtypes.positive_seconds,
        env="MLPLATFORM_DELETE_TIMEOUT",
        metavar="SECONDS",
        help="seconds a deletion waits for an unreachable runner before releasing the object "
        "(on top of the model's terminationGracePeriodSeconds)",
    )
    webhook_port: int = flags.option(
        0,
        "--webhook-port",
        parse=argtypes.port_or_zero,
        env="MLPLATFORM_WEBHOOK_PORT",
        metavar="PORT",
        help="serve admission webhooks on this port (0: off)",
    )
    webhook_host: str | None = flags.option(
        None,
        "--webhook-host",
        env="MLPLATFORM_WEBHOOK_HOST",
        metavar="HOST",
        help="host name in the webhook certificate",
    )
    webhook_cert: str | None = flags.option(
        None,
        "--webhook-cert",
        env="MLPLATFORM_WEBHOOK_CERT",
        metavar="FILE",
        help="TLS certificate file for the webhook server (with --webhook-key)",
    )
    webhook_key: str | None = flags.option(
        None,
        "--webhook-key",
        env="MLPLATFORM_WEBHOOK_KEY",
        metavar="FILE",
        help="TLS private key file for the webhook server (with --webhook-cert)",
    )
    webhook_cert_dir: Path = flags.option(
        Path("/tmp/mlplatform-webhook"),
        "--webhook-cert-dir",
        parse=Path,
        env="MLPLATFORM_WEBHOOK_CERT_DIR",
        metavar="DIR",
        help="directory with tls.crt/tls.key/ca.crt (e.g. a cert-manager Secret); "
        "a self-signed pair is generated there when absent",
    )
    webhook_managed: str | None = flags.option(
        None,
        "--webhook-managed",
        env="MLPLATFORM_WEBHOOK_MANAGED",
        metavar="NAME",
        help="let the operator create/patch the webhook configurations NAME with its CA "
        "(for clusters without cert-manager)",
    )
    log_format: str = flags.option(
        "full",
        "--log-format",
        choices=("plain", "full", "json"),
        env="MLPLATFORM_LOG_FORMAT",
        env_parse=_log_format_from_settings,
        help="kopf's log format; without it, MLPLATFORM_LOG_FORMAT=json means json",
    )
    verbose: bool = flags.switch("--verbose", "-v", env="MLPLATFORM_VERBOSE", help="debug logs")

    @property
    def namespaces(self) -> list[str]:
        """The namespaces to watch; empty means every namespace (``--all-namespaces``)."""
        return [] if self.all_namespaces else list(self.namespace)  # once each (``resolve``)

    def peering_priority(self, *, now: float | None = None, pid: int | None = None) -> int:
        """This process's kopf peering priority (``priority``)."""
        return priority(self.priority, now=now, pid=pid)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``mlplatform operator``."""
    flags.add_arguments(parser, OperatorConfig)


def environment_help() -> str:
    """The variables ``mlplatform operator --help`` lists below its options."""
    return config.environment_help()


def load(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> OperatorConfig:
    """The settings and the options, merged once (``environ``: None for the process's)."""
    return flags.load(OperatorConfig, args, environ, check=_webhook_pair)


def _webhook_pair(values: Mapping[str, Any]) -> list[str]:
    if (values["webhook_cert"] is None) == (values["webhook_key"] is None):
        return []
    return [
        "--webhook-cert and --webhook-key (MLPLATFORM_WEBHOOK_CERT, MLPLATFORM_WEBHOOK_KEY) "
        "are given together or not at all"
    ]


def priority(chosen: int | str, *, now: float | None = None, pid: int | None = None) -> int:
    """The kopf peering priority; ``auto``: lower for later starts, distinct per process.

    kopf pauses every operator when two share the top priority, so replicas must differ.
    With ``auto`` the replica that started first keeps the lead; one that starts while it
    is alive waits (paused) until the first one's peering record expires.
    """
    if chosen != "auto":
        return int(chosen)
    started = int((time.time() if now is None else now) - _EPOCH)
    # Ten ranks per second (minus a per-process tie-breaker), newest lowest.
    return max(1, _TOP - started * 10 - ((os.getpid() if pid is None else pid) % 10))
