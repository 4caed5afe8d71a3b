"""Local mode's front end (``local.loop``) on the one controller, with the in-memory runner:
manifests in, statuses and the --once verdict out."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import yaml

from mlplatform.core.backoff import BackoffPolicy
from mlplatform.core.controller import Desired
from mlplatform.core.reconcile import Outcome, Reconciler
from mlplatform.local.loop import LocalController
from mlplatform.models.status import ConditionType, MLModelStatus, Phase, Reason, set_condition
from tests.support.memory_runner import MemoryRunner


def write(folder: Path, name: str, **container: object) -> Path:
    path = folder / f"{name}.yaml"
    spec = {"id": f"{name}:1.0", "container": {"image": "x:1", "ports": [8080], **container}}
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "mlplatform.dev/v1alpha1",
                "kind": "MLModel",
                "metadata": {"name": name, "namespace": "t"},
                "spec": spec,
            }
        )
    )
    return path


def local(
    folder: Path,
    runner: MemoryRunner,
    events: list[tuple[str, str]],
    backoff: BackoffPolicy | None = None,
) -> LocalController:
    return LocalController(
        paths=[folder],
        # Wall time a moment ahead of the containers' start: they count as up at once.
        reconciler=Reconciler(
            lambda _: runner, backoff=backoff, min_ready=0, clock=lambda: time.time() + 1
        ),
        runner=runner,
        on_event=lambda key, event: events.append((key, event.reason)),
        workers=2,
    )


def test_once_converges_every_manifest_and_reports_ok(tmp_path: Path) -> None:
    write(tmp_path, "a")
    write(tmp_path, "b")
    runner, events = MemoryRunner(), list[tuple[str, str]]()
    controller = local(tmp_path, runner, events)
    controller.load()
    controller.start(watch=False)
    try:
        progress = controller.wait_settled(5)
    finally:
        controller.stop()
    assert (progress.settled, progress.ok) == (True, True)
    assert sorted(runner.containers) == ["a-1.0", "b-1.0"]
    assert [row.status.phase for row in controller.rows() if row.status] == [Phase.RUNNING] * 2
    assert sorted(events) == [("t/a", "Created"), ("t/b", "Created")]


def test_a_crash_looping_model_settles_as_failed_and_the_verdict_is_frozen(
    tmp_path: Path,
) -> None:
    write(tmp_path, "crash")
    runner, events = MemoryRunner(), list[tuple[str, str]]()
    runner.exit_on_start = 3
    controller = local(tmp_path, runner, events, BackoffPolicy(base=0.01, cap=0.02))
    controller.load()
    controller.start(watch=False)
    try:
        progress = controller.wait_settled(10)
        (decided,) = controller.rows()
        assert decided.status is not None
        failures = decided.status.consecutive_failures
        writes = runner.writes
        assert eventually(lambda: runner.writes > writes), "the back-off never fired again"
        (after,) = controller.rows()
    finally:
        controller.stop()
    assert (progress.settled, progress.ok) == (True, False)
    assert failures >= 2
    assert after.status == decided.status


def test_a_removed_manifest_removes_its_container_and_forgets_the_model(tmp_path: Path) -> None:
    write(tmp_path, "keep")
    gone = write(tmp_path, "gone")
    runner, events = MemoryRunner(), list[tuple[str, str]]()
    controller = local(tmp_path, runner, events)
    controller.load()
    controller.start(watch=False)
    try:
        assert eventually(lambda: len(runner.containers) == 2)
        gone.unlink()
        controller.load()
        assert eventually(lambda: ("t/gone", "Removed") in events)
        settled = controller.wait_settled(5)
    finally:
        controller.stop()
    assert sorted(runner.containers) == ["keep-1.0"]
    assert controller.keys() == ["t/keep"]
    assert [row.key for row in controller.rows()] == ["t/keep"]
    assert settled.ok


def test_a_removal_while_the_engine_is_down_is_retried_until_it_answers(tmp_path: Path) -> None:
    gone = write(tmp_path, "gone")
    runner, events = MemoryRunner(), list[tuple[str, str]]()
    controller = local(tmp_path, runner, events)
    controller.load()
    controller.start(watch=False)
    try:
        assert eventually(lambda: len(runner.containers) == 1)
        runner.available = False
        gone.unlink()
        controller.load()
        assert not controller.progress().settled, "a pending removal is not settled"
        runner.available = True  # the controller's next retry (0.5 s) removes it
        assert eventually(lambda: not runner.containers)
        assert eventually(lambda: controller.progress().settled)
    finally:
        controller.stop()
    assert runner.containers == {}
    assert ("t/gone", "Removed") in events
    assert not any(reason == "ContainerNotRemoved" for _, reason in events)


def eventually(check: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.001)
    return True


def _serving(*, updating: bool, failures: int) -> MLModelStatus:
    """Running and Ready on the old revision; an update behind it, or none."""
    conditions = set_condition([], ConditionType.READY, "True", Reason.RUNNING)
    conditions = set_condition(
        conditions,
        ConditionType.UPDATING,
        "True" if updating else "False",
        Reason.NEW_REVISION_STARTING if updating else Reason.UP_TO_DATE,
    )
    return MLModelStatus(phase=Phase.RUNNING, conditions=conditions, consecutive_failures=failures)


def test_once_waits_for_an_update_and_counts_one_that_failed_twice_as_failed(
    tmp_path: Path,
) -> None:
    write(tmp_path, "iris")
    controller = local(tmp_path, MemoryRunner(), [])
    controller.load()
    found = controller.get("t/iris")
    assert isinstance(found, Desired)

    controller.write("t/iris", found, Outcome(_serving(updating=True, failures=1), 1.0))
    progress = controller.progress()
    assert (progress.settled, progress.ok) == (False, False), "an update still running"

    controller.write("t/iris", found, Outcome(_serving(updating=True, failures=2), 5.0))
    progress = controller.progress()
    assert (progress.settled, progress.ok) == (True, False), "the new revision failed twice"

    controller.write("t/iris", found, Outcome(_serving(updating=False, failures=0)))
    progress = controller.progress()
    assert (progress.settled, progress.ok) == (True, True), "the new revision took over"
