"""spec.runner → its runner: kubernetes needs the operator's API client and its setting."""

from __future__ import annotations

import kubernetes
import pytest

from mlplatform import errors
from mlplatform.config import Settings
from mlplatform.core.reconcile import Reconciler
from mlplatform.models.spec import MLModelSpec
from mlplatform.models.status import ConditionType, Reason
from mlplatform.runners import base, selection
from mlplatform.runners.kubernetes.runner import KubernetesRunner

WORKLOAD = base.Workload(
    owner=base.Owner("models", "iris", "uid-1"),
    spec=MLModelSpec.model_validate(
        {"id": "iris:1.0", "runner": "kubernetes", "container": {"image": "x", "ports": [80]}}
    ),
)


def test_without_a_kubernetes_api_the_kubernetes_runner_needs_a_cluster() -> None:
    runner = selection.runner_for("kubernetes", Settings.load({}))
    assert runner.type == "kubernetes"
    with pytest.raises(errors.RunnerUnavailable, match="needs the operator in a cluster") as error:
        runner.observe(WORKLOAD)
    assert isinstance(error.value, errors.NeedsCluster) and not error.value.retryable
    assert runner.list_owned() == []


def test_the_kubernetes_runner_is_on_in_a_cluster_by_default_and_can_be_switched() -> None:
    client = kubernetes.client.ApiClient(kubernetes.client.Configuration())
    try:
        switched_on = Settings.load({"RUNNERS_KUBERNETES_ENABLED": "true"})
        assert isinstance(
            selection.runner_for("kubernetes", switched_on, api_client=client), KubernetesRunner
        )
        switched_off = Settings.load({"RUNNERS_KUBERNETES_ENABLED": "false"})
        off = selection.runner_for("kubernetes", switched_off, api_client=client)
        with pytest.raises(errors.RunnerDisabled, match="RUNNERS_KUBERNETES_ENABLED"):
            off.apply(WORKLOAD)
    finally:
        client.close()  # type: ignore[no-untyped-call]
    default = Settings.load({})
    assert default.kubernetes_runner_enabled({"KUBERNETES_SERVICE_HOST": "10.0.0.1"})
    assert not default.kubernetes_runner_enabled({})


def test_runners_builds_each_kind_once_with_the_client() -> None:
    runners = selection.Runners(Settings.load({}))
    assert runners("kubernetes") is runners("kubernetes")
    assert runners("nomad").type == "nomad"


def test_the_reconcile_core_reports_a_kubernetes_model_outside_a_cluster_without_crashing() -> None:
    outcome = Reconciler(selection.Runners(Settings.load({}))).reconcile(
        WORKLOAD, generation=1, previous=None
    )
    ready = next(c for c in outcome.status.conditions if c.type == ConditionType.READY)
    assert ready.reason == Reason.RUNNER_UNAVAILABLE
    assert "needs the operator in a cluster" in ready.message
    assert outcome.status.endpoints == []
