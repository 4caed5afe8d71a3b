"""Prometheus metrics of the reconcile loop, shared by the operator and local mode.

mlplatform_reconcile_total{result}            reconciles by result (ok, requeue, error)
mlplatform_reconcile_duration_seconds         how long one reconcile took
mlplatform_models{phase}                      models by phase
mlplatform_container_restarts_total           containers restarted after dying or vanishing
mlplatform_runner_errors_total{error}         runner (Docker API) errors by type
mlplatform_resyncs_total                      full resyncs against the runners' workloads

With them, on the same registry, the standard collectors every Prometheus client exports:
``process_*`` (CPU seconds, resident memory, open file descriptors, start time),
``python_info`` and ``python_gc_*``.
"""

from __future__ import annotations

import threading

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.gc_collector import GCCollector

from mlplatform.models.status import Phase


class Metrics:
    """The loop's metrics on one registry; models-by-phase is kept from per-model reports."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        if registry is None:
            ProcessCollector(registry=self.registry)
            PlatformCollector(registry=self.registry)
            GCCollector(registry=self.registry)
        self.reconciles = Counter(
            "mlplatform_reconcile", "Reconciles by result", ["result"], registry=self.registry
        )
        self.duration = Histogram(
            "mlplatform_reconcile_duration_seconds",
            "Duration of one reconcile",
            registry=self.registry,
            buckets=(0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.models = Gauge(
            "mlplatform_models", "Models by phase", ["phase"], registry=self.registry
        )
        self.restarts = Counter(
            "mlplatform_container_restarts", "Container restarts", registry=self.registry
        )
        self.runner_errors = Counter(
            "mlplatform_runner_errors",
            "Runner (Docker API) errors",
            ["error"],
            registry=self.registry,
        )
        self.resyncs = Counter(
            "mlplatform_resyncs",
            "Full resyncs of every model against the runners' workloads",
            registry=self.registry,
        )
        self._phases: dict[str, Phase] = {}
        self._lock = threading.Lock()
        for phase in Phase:
            self.models.labels(phase=phase.value).set(0)

    def set_phase(self, key: str, phase: Phase | None) -> None:
        """Record the phase of model ``key`` (None: the model is gone)."""
        with self._lock:
            if phase is None:
                self._phases.pop(key, None)
            else:
                self._phases[key] = phase
            counts = dict.fromkeys(Phase, 0)
            for value in self._phases.values():
                counts[value] += 1
            for value, count in counts.items():
                self.models.labels(phase=value.value).set(count)
