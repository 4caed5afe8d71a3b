"""The real operator (handlers + controller + Docker runner) running against the KMock harness.

``operator_running(cluster, settings)`` builds what ``mlplatform operator`` builds — a
``Reconciler`` over ``runner_for``, an ``Operator`` with a ``KubeApi`` pointed at the
emulator, the handlers on a fresh registry, kopf settings from ``handlers.configure`` — and
runs it with the harness's ``running_operator`` until the block exits::

    async with kube_cluster() as cluster, operator_running(cluster, env.settings()) as op:
        ...
        op.operator, op.reconciler, op.metrics are at hand.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import kopf

from mlplatform.config import Settings
from mlplatform.core.backoff import BackoffPolicy
from mlplatform.core.metrics import Metrics
from mlplatform.core.reconcile import Reconciler
from mlplatform.kube import handlers
from mlplatform.kube.api import KubeApi
from mlplatform.kube.operator import Operator
from mlplatform.runners import selection
from mlplatform.runners.base import Runner
from tests.support.kube_cluster import KubeCluster, running_operator


@dataclass
class OperatorUnderTest:
    operator: Operator
    reconciler: Reconciler
    metrics: Metrics
    runner: Runner


def build_controller(
    cluster: KubeCluster,
    settings: Settings,
    *,
    backoff: BackoffPolicy | None = None,
    resync_interval: float = 60.0,
    delete_timeout: float = 30.0,
) -> OperatorUnderTest:
    runners: dict[str, Runner] = {}

    def runner_for(kind: str) -> Runner:
        if kind not in runners:
            runners[kind] = selection.runner_for(kind, settings)
        return runners[kind]

    metrics = Metrics()
    reconciler = Reconciler(runner_for, backoff=backoff, metrics=metrics)
    operator = Operator(
        reconciler=reconciler,
        api=KubeApi.for_server(cluster.url, insecure=True),
        runner=runner_for("docker"),
        resync_interval=resync_interval,
        delete_timeout=delete_timeout,
    )
    return OperatorUnderTest(operator, reconciler, metrics, runner_for("docker"))


@contextlib.asynccontextmanager
async def operator_running(
    cluster: KubeCluster, settings: Settings, **options: Any
) -> AsyncIterator[OperatorUnderTest]:
    """The operator's handlers running in kopf against ``cluster`` until the block exits."""
    built = build_controller(cluster, settings, **options)
    registry = kopf.OperatorRegistry()
    handlers.register(registry, built.operator)
    kopf_settings = handlers.configure(kopf.OperatorSettings())
    async with running_operator(cluster, registry=registry, settings=kopf_settings):
        yield built
