"""Ownership rules, pure: scope by source, held files, first holder, renames, writer lock."""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlplatform.core.backoff import BackoffPolicy
from mlplatform.core.reconcile import Reconciler
from mlplatform.local import desired, ownership, writer_lock
from mlplatform.models.spec import MLModelSpec
from mlplatform.models.status import Phase
from mlplatform.runners.base import OwnedWorkload, Owner, State, Workload
from tests.support.memory_runner import MemoryRunner


def manifest(name: str, model_id: str, **container: object) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "mlplatform.dev/v1alpha1",
            "kind": "MLModel",
            "metadata": {"name": name},
            "spec": {"id": model_id, "container": {"image": "x:1", "ports": [8080], **container}},
        }
    )


def owned(key: str, model_id: str, source: str | None, *, cid: str = "c1") -> OwnedWorkload:
    namespace, name = key.split("/")
    owner = Owner(namespace, name, desired.owner_uid(namespace, name))
    name_ = model_id.replace(":", "-")
    return OwnedWorkload(owner, model_id, cid, name_, "h", State.RUNNING, source)


# --- scope by source ------------------------------------------------------------------------


def test_a_run_covers_the_files_it_names_and_everything_under_its_folders(tmp_path: Path) -> None:
    folder, file = tmp_path / "models", tmp_path / "one.yaml"
    folder.mkdir()
    file.write_text("")
    roots = ownership.Roots.of([folder, file])

    assert roots.covers(str(folder / "deep" / "a.yaml"))
    assert roots.covers(str(file.resolve()))
    assert not roots.covers(str(tmp_path / "models-other" / "a.yaml"))
    assert not roots.covers(str(tmp_path / "two.yaml"))
    assert not roots.covers(None)  # made before sources were recorded: nobody's to prune


def test_roots_overlap_when_one_lies_under_the_other(tmp_path: Path) -> None:
    (tmp_path / "a" / "sub").mkdir(parents=True)
    (tmp_path / "b").mkdir()
    whole = ownership.Roots.of([tmp_path / "a"])

    assert whole.overlaps(ownership.Roots.of([tmp_path / "a" / "sub"]))
    assert ownership.Roots.of([tmp_path / "a" / "sub" / "x.yaml"]).overlaps(whole)
    assert not whole.overlaps(ownership.Roots.of([tmp_path / "b"]))


def test_a_held_file_is_never_pruned_even_under_the_roots(tmp_path: Path) -> None:
    roots = ownership.Roots.of([tmp_path])
    mine = owned("default/a", "a:1", str(tmp_path / "a.yaml"))
    theirs = owned("default/b", "b:1", "/elsewhere/b.yaml")

    assert ownership.may_prune(mine, roots, held_files=[])
    assert not ownership.may_prune(mine, roots, held_files=[str(tmp_path / "a.yaml")])
    assert not ownership.may_prune(theirs, roots, held_files=[])


# --- desired state with what runs -------------------------------------------------------------


def test_the_running_holder_keeps_its_id_whatever_the_file_order(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(manifest("newcomer", "iris:1"))
    (tmp_path / "z.yaml").write_text(manifest("holder", "iris:1"))
    holder = str((tmp_path / "z.yaml").resolve())

    by_order = desired.load([tmp_path])
    by_holder = desired.load([tmp_path], running=[owned("default/holder", "iris:1", holder)])

    assert list(by_order.models) == ["default/newcomer"]
    assert list(by_holder.models) == ["default/holder"]
    assert by_holder.problems == [
        f'{tmp_path / "a.yaml"}: spec.id: "iris:1" is already used by MLModel '
        f"default/holder in {tmp_path / 'z.yaml'}"
    ]


def test_two_ids_that_name_one_container_are_refused_with_one_message(tmp_path: Path) -> None:
    (tmp_path / "1.yaml").write_text(manifest("first", "a-b:1"))
    (tmp_path / "2.yaml").write_text(manifest("second", "a:b-1"))

    state = desired.load([tmp_path])

    assert list(state.models) == ["default/first"]
    assert state.problems == [
        f'{tmp_path / "2.yaml"}: spec.id: "a:b-1" maps to container name "a-b-1", already '
        f"used by MLModel default/first (a-b:1) in {tmp_path / '1.yaml'}"
    ]


def test_an_invalid_file_holds_its_running_models_names_and_keys(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("spec: [unclosed\n")
    (tmp_path / "new.yaml").write_text(manifest("other", "iris:1"))
    source = str(broken.resolve())
    running = [owned("default/iris", "iris:1", source), owned("default/gone", "x:1", "/else")]

    state = desired.load([tmp_path], running=running)

    assert state.models == {}
    assert [h.model_id for h in state.held] == ["iris:1"]
    assert source in state.failed_files
    assert any("keeps running its last valid spec" in line for line in state.held_lines())
    assert any(
        'spec.id: "iris:1" is already used by MLModel default/iris' in p for p in state.problems
    )


# --- one workload per owner -------------------------------------------------------------------


def spec(model_id: str, **extra: Any) -> MLModelSpec:
    return MLModelSpec.model_validate(
        {"id": model_id, "container": {"image": "x:1", "ports": [8080]}, **extra}
    )


@pytest.fixture
def runner() -> MemoryRunner:
    return MemoryRunner()


@pytest.fixture
def reconciler(runner: MemoryRunner) -> Reconciler:
    return Reconciler(lambda _: runner, backoff=BackoffPolicy(base=1, cap=8), min_ready=0)


def test_a_renamed_id_removes_the_old_workload_once_the_new_one_runs(
    reconciler: Reconciler, runner: MemoryRunner
) -> None:
    owner = Owner("default", "iris", "u1")
    first = reconciler.reconcile(Workload(owner, spec("iris:1")), generation=1, previous=None)
    runner.probe_ok = False  # the new one starts but is not ready: the old one stays
    probed = spec(
        "iris:2",
        container={
            "image": "x:1",
            "ports": [8080],
            "readinessProbe": {"httpGet": {"path": "/", "port": 8080}},
        },
    )
    waiting = reconciler.reconcile(Workload(owner, probed), generation=2, previous=first.status)
    assert waiting.status.phase == Phase.STARTING
    assert sorted(runner.containers) == ["iris-1", "iris-2"]

    runner.probe_ok = True
    ready = reconciler.reconcile(Workload(owner, probed), generation=2, previous=waiting.status)

    assert ready.status.phase == Phase.RUNNING
    assert sorted(runner.containers) == ["iris-2"]
    assert any("old id iris:1" in e.message for e in ready.events)


def test_resync_removes_an_owners_extra_workload_when_its_current_one_runs(
    reconciler: Reconciler, runner: MemoryRunner
) -> None:
    owner = Owner("default", "iris", "u1")
    old = reconciler.reconcile(Workload(owner, spec("iris:1")), generation=1, previous=None)
    new = reconciler.reconcile(Workload(owner, spec("iris:2")), generation=2, previous=old.status)
    new = reconciler.reconcile(Workload(owner, spec("iris:2")), generation=2, previous=new.status)
    assert new.status.phase == Phase.RUNNING
    # As after a crash between the two steps: the old workload is back in the engine.
    runner.apply(Workload(owner, spec("iris:1")))
    assert sorted(runner.containers) == ["iris-1", "iris-2"]

    result = reconciler.resync(runner, {"u1": new.status}, lambda: {"u1"})

    assert [o.model_id for o in result.removed] == ["iris:1"]
    assert sorted(runner.containers) == ["iris-2"]
    assert result.stale == frozenset()


def test_resync_leaves_an_owners_workload_not_yet_started_to_the_models_reconcile(
    reconciler: Reconciler, runner: MemoryRunner
) -> None:
    # An in-place replacement creates the new workload before the old one goes (so the
    # debug-port claim it carries never lapses): a resync in that moment must not take
    # it for an extra and remove it under the step.
    owner = Owner("default", "iris", "u1")
    workload = Workload(owner, spec("iris:1"))
    serving = reconciler.reconcile(workload, generation=1, previous=None)
    if serving.status.phase == Phase.STARTING:  # the container's start is this very instant
        serving = reconciler.reconcile(workload, generation=1, previous=serving.status)
    assert serving.status.phase == Phase.RUNNING
    runner.apply(Workload(owner, spec("iris:2")))
    runner.containers["iris-2"].state = State.STARTING  # created, not started

    result = reconciler.resync(runner, {"u1": serving.status}, lambda: {"u1"})

    assert result.removed == ()
    assert result.stale == frozenset({"u1"})
    assert sorted(runner.containers) == ["iris-1", "iris-2"]


def test_resync_never_keeps_two_workloads_for_an_owner_it_cannot_place(
    reconciler: Reconciler, runner: MemoryRunner
) -> None:
    owner = Owner("default", "iris", "u1")
    runner.apply(Workload(owner, spec("iris:1")))
    runner.apply(Workload(owner, spec("iris:2")))

    result = reconciler.resync(runner, {"u1": None}, lambda: {"u1"})

    assert result.stale == frozenset({"u1"})  # its reconcile finishes the hand-over
    outcome = reconciler.reconcile(Workload(owner, spec("iris:2")), generation=1, previous=None)
    if outcome.status.phase == Phase.STARTING:  # the container's start is this very instant
        outcome = reconciler.reconcile(
            Workload(owner, spec("iris:2")), generation=1, previous=outcome.status
        )
    assert outcome.status.phase == Phase.RUNNING
    assert sorted(runner.containers) == ["iris-2"]


def test_a_crash_loop_tells_each_back_off_once(
    reconciler: Reconciler, runner: MemoryRunner
) -> None:
    owner = Owner("default", "iris", "u1")
    workload = Workload(owner, spec("iris:1"))
    runner.exit_on_start = 3
    outcome = None
    backoffs = []
    for _ in range(6):
        outcome = reconciler.reconcile(
            workload, generation=1, previous=outcome.status if outcome else None
        )
        backoffs += [e.message for e in outcome.events if e.reason == "BackOff"]

    # Six reconciles, most of them inside a back-off (as an engine event or a resync would
    # wake them): a back-off is told once, when its failure is counted.
    assert len(backoffs) == len(set(backoffs))
    assert outcome is not None and outcome.status.restart_count >= 2


# --- one writer per folder --------------------------------------------------------------------


def test_a_second_writer_on_overlapping_paths_is_refused_naming_the_first(tmp_path: Path) -> None:
    (tmp_path / "models" / "sub").mkdir(parents=True)
    (tmp_path / "other").mkdir()
    folder = tmp_path / "locks"
    held = writer_lock.acquire(folder=folder, roots=ownership.Roots.of([tmp_path / "models"]))
    try:
        with pytest.raises(writer_lock.Held) as refused:
            writer_lock.acquire(
                folder=folder, roots=ownership.Roots.of([tmp_path / "models" / "sub"])
            )
        assert refused.value.pid == os.getpid()
        assert f"PID {os.getpid()}" in str(refused.value)
        apart = writer_lock.acquire(folder=folder, roots=ownership.Roots.of([tmp_path / "other"]))
        apart.release()
    finally:
        held.release()
    again = writer_lock.acquire(folder=folder, roots=ownership.Roots.of([tmp_path / "models"]))
    again.release()


def test_a_lock_file_nobody_holds_is_stale_and_taken_over(tmp_path: Path) -> None:
    (tmp_path / "models").mkdir()
    folder = tmp_path / "locks"
    folder.mkdir()
    stale = folder / "999999.lock"
    stale.write_text(json.dumps({"pid": 999999, "roots": [str(tmp_path / "models")]}))

    lock = writer_lock.acquire(folder=folder, roots=ownership.Roots.of([tmp_path / "models"]))

    assert not stale.exists()
    with lock.path.open() as handle, pytest.raises(BlockingIOError):
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    lock.release()
