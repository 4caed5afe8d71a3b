"""What GitOps tools make of an MLModel's status: Argo CD's health script and Flux's kstatus.

The statuses are the reconcile core's own (``Reconciler`` over the in-memory runner, a fake
clock): a model coming up, serving, updating, failing, suspended, on a dead engine. Each is
put on an MLModel object as the operator writes it, and

- ``manifests/argocd/mlmodel-health.lua`` — the very file Argo CD is given — runs in Debian's
  Lua interpreters (5.4, and 5.1: Argo CD's gopher-lua speaks Lua 5.1) with ``obj`` set to
  that object, as Argo CD runs a health script;
- Flux's reading (kstatus as Flux runs it: deletion, then ``observedGeneration`` against
  ``metadata.generation``, then ``Reconciling``/``Stalled``, then ``Ready``) is applied to it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlplatform import errors
from mlplatform.core.backoff import BackoffPolicy
from mlplatform.core.reconcile import Outcome, Reconciler
from mlplatform.models.spec import MLModelSpec
from mlplatform.models.status import MLModelStatus, Reason
from mlplatform.runners.base import Owner, Problem, Rollout, Workload
from tests.support import installs
from tests.support.memory_runner import MemoryRunner
from tests.unit.conftest import Clock

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "manifests" / "argocd" / "mlmodel-health.lua"
# Argo CD's own interpreter is gopher-lua (Lua 5.1); Debian's 5.4 is the one asked for.
INTERPRETERS = ("lua5.4", "lua5.1")


def _spec(**spec: Any) -> dict[str, Any]:
    container = {"image": "iris:1", "ports": [8080], **spec.pop("container", {})}
    return {"id": "iris:1.0", "container": container, **spec}


def _workload(**spec: Any) -> Workload:
    return Workload(
        owner=Owner("models", "iris", "u1"), spec=MLModelSpec.model_validate(_spec(**spec))
    )


@dataclass
class Model:
    """An MLModel object as the API server holds it: spec, generation, the operator's status."""

    spec: dict[str, Any]
    generation: int
    status: MLModelStatus | None

    def object(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "apiVersion": "mlplatform.dev/v1alpha1",
            "kind": "MLModel",
            "metadata": {"name": "iris", "namespace": "models", "generation": self.generation},
            "spec": self.spec,
        }
        if self.status is not None:
            # Through JSON, as the API server stores and serves it.
            body["status"] = json.loads(json.dumps(self.status.to_wire()))
        return body


class Story:
    """One model through the reconcile core, step by step."""

    def __init__(self, *, min_ready: float = 1.0) -> None:
        self.runner = MemoryRunner()
        self.clock = Clock(1_800_000_000.0)
        self.reconciler = Reconciler(
            lambda _: self.runner,
            backoff=BackoffPolicy(base=1, cap=8, stable_after=10),
            clock=self.clock,
            min_ready=min_ready,
        )
        self.outcome: Outcome | None = None
        self.spec = _spec()
        self.generation = 1

    def step(self, generation: int | None = None, **spec: Any) -> Model:
        if spec:
            self.spec = _spec(**spec)
        self.generation = generation or self.generation
        self.outcome = self.reconciler.reconcile(
            _workload(**{k: v for k, v in self.spec.items() if k != "id"}),
            generation=self.generation,
            previous=self.outcome.status if self.outcome else None,
        )
        return self.model()

    def model(self, generation: int | None = None) -> Model:
        status = self.outcome.status if self.outcome else None
        return Model(dict(self.spec), generation or self.generation, status)

    def serving(self) -> Model:
        self.step()
        self.clock.now += 60
        serving = self.step()
        assert serving.status is not None and serving.status.ready
        return serving


def _new() -> Model:
    return Model(_spec(), 1, None)


def _serving() -> Model:
    return Story().serving()


def _spec_changed_not_yet_seen() -> Model:
    story = Story()
    story.serving()
    return story.model(generation=2)


def _starting() -> Model:
    story = Story(min_ready=1.0)
    story.clock.now = time.time()  # the container started just now
    return story.step()


def _probe_warming_up() -> Model:
    story = Story()
    story.runner.probe_ok = False
    story.clock.now += 60
    return story.step(container={"readinessProbe": {"httpGet": {"path": "/", "port": 8080}}})


def _lost_ready() -> Model:
    story = Story()
    probed = {"readinessProbe": {"httpGet": {"path": "/", "port": 8080}}}
    story.step(container=probed)
    story.clock.now += 60
    assert story.step().status is not None
    story.runner.probe_ok = False
    story.clock.now += 10
    return story.step()


def _image_missing() -> Model:
    story = Story()
    story.runner.fail_apply = errors.ImageNotFound('image "iris:1" was not found')
    return story.step()


def _crashed() -> Model:
    story = Story()
    story.runner.exit_on_start = 3
    return story.step()


def _engine_down() -> Model:
    story = Story()
    story.serving()
    story.runner.available = False
    story.clock.now += 10
    return story.step()


def _suspended() -> Model:
    story = Story()
    story.serving()
    return story.step(generation=2, suspend=True)


def _updating() -> Model:
    story = Story()
    story.serving()
    story.runner.rollout = Rollout(revision="r2", workload_name="iris-1.0_r2", message="starting")
    return story.step(generation=2, container={"env": [{"name": "V", "value": "2"}]})


def _update_failed() -> Model:
    story = Story()
    story.serving()
    story.runner.rollout = Rollout(
        revision="r2", problem=Problem(Reason.IMAGE_NOT_FOUND, 'image "iris:2" not found')
    )
    return story.step(generation=2, container={"image": "iris:2"})


def _updated() -> Model:
    story = Story()
    story.serving()
    story.runner.rollout = Rollout(revision="r2", workload_name="iris-1.0_r2", message="starting")
    story.step(generation=2, container={"env": [{"name": "V", "value": "2"}]})
    story.runner.rollout = None
    story.clock.now += 60
    updated = story.step()
    assert updated.status is not None and updated.status.ready and not updated.status.updating
    return updated


# (story, Argo CD health, words its message must hold, Flux's kstatus)
CASES: dict[str, tuple[Callable[[], Model], str, tuple[str, ...], str]] = {
    "no status yet": (_new, "Progressing", ("Waiting for the operator",), "InProgress"),
    "serving": (_serving, "Healthy", ("Running",), "Current"),
    "a spec change not yet acted on": (
        _spec_changed_not_yet_seen,
        "Progressing",
        ("generation 2",),
        "InProgress",
    ),
    "a container that has just started": (
        _starting,
        "Progressing",
        ("ContainerStarting",),
        "InProgress",
    ),
    "a readiness probe that has not passed yet": (
        _probe_warming_up,
        "Progressing",
        ("ProbeFailed",),
        "InProgress",
    ),
    "a model that lost Ready": (_lost_ready, "Degraded", ("ProbeFailed",), "InProgress"),
    "an image that is not there": (
        _image_missing,
        "Degraded",
        ("ImageNotFound", "iris:1"),
        "InProgress",
    ),
    "a container that exited": (_crashed, "Degraded", ("ContainerExited", "3"), "InProgress"),
    "a Docker engine that does not answer": (
        _engine_down,
        "Degraded",
        ("RunnerUnavailable",),
        "InProgress",
    ),
    "suspended": (_suspended, "Suspended", ("Suspended",), "InProgress"),
    "a new revision coming up behind the serving one": (
        _updating,
        "Progressing",
        ("Updating", "NewRevisionStarting", "keeps serving"),
        "Current",
    ),
    "a new revision that cannot start": (
        _update_failed,
        "Degraded",
        ("Update failed", "ImageNotFound", "iris:2", "keeps serving"),
        "Current",
    ),
    "an update that took over": (_updated, "Healthy", (), "Current"),
}


def _lua_literal(value: Any) -> str:
    """``value`` (JSON data) as a Lua table constructor, as Argo CD hands objects to Lua."""
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        escaped = "".join(
            f"\\{ord(char):03d}" if char in '\\"' or not char.isprintable() else char
            for char in value
        )
        return f'"{escaped}"'
    if isinstance(value, list):
        return "{" + ", ".join(_lua_literal(item) for item in value) + "}"
    assert isinstance(value, dict)
    return (
        "{" + ", ".join(f"[{_lua_literal(k)}] = {_lua_literal(v)}" for k, v in value.items()) + "}"
    )


def _interpreter(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: run scripts/setup.sh (it installs Debian's {name})")
    return found


def argocd_health(obj: dict[str, Any], interpreter: str, tmp_path: Path) -> tuple[str, str]:
    """Run the health script as Argo CD does: ``obj`` is global, the chunk returns ``hs``."""
    harness = tmp_path / "harness.lua"
    harness.write_text(
        f"obj = {_lua_literal(obj)}\n"
        f"local hs = dofile({_lua_literal(str(SCRIPT))})\n"
        'io.write(hs.status, "\\n", hs.message or "", "\\n")\n'
    )
    result = subprocess.run(
        [_interpreter(interpreter), str(harness)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    status, message = result.stdout.split("\n", 1)
    return status, message.rstrip("\n")


def flux_kstatus(obj: dict[str, Any]) -> str:
    """kstatus as Flux runs it on a custom resource (Current, InProgress, Failed, Terminating)."""
    metadata, status = obj["metadata"], obj.get("status") or {}
    if metadata.get("deletionTimestamp"):
        return "Terminating"
    observed = status.get("observedGeneration")
    if "generation" in metadata and observed is not None and observed != metadata["generation"]:
        return "InProgress"
    conditions = {c["type"]: c for c in status.get("conditions") or []}
    if conditions.get("Reconciling", {}).get("status") == "True":
        return "InProgress"
    if conditions.get("Stalled", {}).get("status") == "True":
        return "Failed"
    if "Ready" in conditions:
        return "Current" if conditions["Ready"]["status"] == "True" else "InProgress"
    # A resource without status: not yet acted on (Flux waits for it).
    return "InProgress" if not status else "Current"


@pytest.mark.parametrize("interpreter", INTERPRETERS)
@pytest.mark.parametrize("case", list(CASES))
def test_argo_cd_health_of_a_real_status(case: str, interpreter: str, tmp_path: Path) -> None:
    story, health, words, _ = CASES[case]
    obj = story().object()
    status, message = argocd_health(obj, interpreter, tmp_path)
    assert status == health, (message, obj.get("status"))
    for word in words:
        assert word in message, (status, message)


@pytest.mark.parametrize("case", list(CASES))
def test_flux_reads_ready_and_the_observed_generation(case: str) -> None:
    story, _, _, kstatus = CASES[case]
    assert flux_kstatus(story().object()) == kstatus


def test_no_failure_reads_healthy_and_every_health_the_script_returns_is_argo_cds() -> None:
    known = {"Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"}
    assert {health for _, health, _, _ in CASES.values()} <= known
    returned = [
        line.split('"')[1]
        for line in SCRIPT.read_text().splitlines()
        if line.strip().startswith("hs.status =")
    ]
    assert returned and set(returned) <= known


def test_the_argocd_config_map_carries_the_script_as_it_is() -> None:
    if installs.kubectl() is None:
        pytest.skip("kubectl is not installed: it renders the kustomization offline")
    rendered = subprocess.run(
        [str(installs.kubectl()), "kustomize", str(SCRIPT.parent)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    [config_map] = [doc for doc in yaml.safe_load_all(rendered) if doc]
    assert config_map["metadata"] == {
        "name": "argocd-cm",
        "namespace": "argocd",
        "labels": {"app.kubernetes.io/name": "argocd-cm", "app.kubernetes.io/part-of": "argocd"},
    }
    assert config_map["data"] == {
        "resource.customizations.health.mlplatform.dev_MLModel": SCRIPT.read_text()
    }
