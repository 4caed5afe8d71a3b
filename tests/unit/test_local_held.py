"""A model held by a refused manifest is shown: runs its last valid spec, and why."""

from __future__ import annotations

from mlplatform.local import held, table
from mlplatform.local.table import Row
from mlplatform.models.status import ConditionType, MLModelStatus, Phase, Reason, set_condition
from mlplatform.runners.base import OwnedWorkload, Owner, State

FILE = "/m/a.yaml"
PROBLEM = "spec.container.image: required"


def _owned(state: State = State.RUNNING, workload_id: str = "c1") -> OwnedWorkload:
    return OwnedWorkload(
        owner=Owner("ns", "a", "local-uid"),
        model_id="a:1",
        workload_id=workload_id,
        workload_name="a-1",
        revision="rev",
        state=state,
        source=FILE,
    )


def _ready(status: MLModelStatus) -> tuple[str, str]:
    condition = status.condition(ConditionType.READY)
    assert condition is not None
    return condition.status, str(condition.reason)


def test_a_running_held_workload_is_a_running_row_refused_with_the_files_first_problem() -> None:
    status = held.observed(_owned(), PROBLEM, runner="docker")
    row = Row(None, status, 0.0, held=_owned())

    columns = [c for c in table.COLUMNS if c != "AGE"]
    cells = dict(zip(columns, table.fingerprint([row])[0], strict=True))
    assert (cells["NAMESPACE"], cells["NAME"], cells["ID"]) == ("ns", "a", "a:1")
    assert (cells["RUNNER"], cells["PHASE"]) == ("docker", "Running")
    assert cells["REASON"] == "ManifestRefused"
    assert cells["READY"] == "Unknown"  # nothing probed it in this run
    assert status.message == f"runs its last valid spec; {FILE} is refused: {PROBLEM}"

    item = table.document([row], [], [])["items"][0]
    assert item["metadata"]["name"] == "a" and item["metadata"]["namespace"] == "ns"
    assert item["metadata"]["annotations"] == {table.SOURCE_ANNOTATION: FILE}
    assert "generation" not in item["metadata"]
    assert item["spec"] == {"id": "a:1"}
    assert item["status"]["phase"] == "Running"
    assert item["status"]["runner"]["workloadId"] == "c1"


def test_readiness_and_endpoints_come_from_a_previous_status_of_the_same_workload_only() -> None:
    previous = MLModelStatus(
        phase=Phase.RUNNING,
        conditions=set_condition([], ConditionType.READY, "True", Reason.PROBE_PASSED),
        endpoints=["http://a-1:80"],
        restartCount=3,
        consecutiveFailures=1,
        runner={"type": "docker", "workloadId": "c1", "startedAt": "2026-01-01T00:00:00Z"},
    )
    same = held.observed(_owned(), PROBLEM, runner="docker", previous=previous)
    assert _ready(same) == ("True", "ManifestRefused")
    assert same.endpoints == ["http://a-1:80"]
    assert same.runner is not None and same.runner.started_at == "2026-01-01T00:00:00Z"
    other = held.observed(_owned(workload_id="c2"), PROBLEM, runner="docker", previous=previous)
    assert _ready(other)[0] == "Unknown" and other.endpoints == []
    # The model's counts survive either way: the status file carries them to the next start.
    assert (same.restart_count, other.restart_count, other.consecutive_failures) == (3, 3, 1)
    assert other.runner is not None and other.runner.started_at is None


def test_an_exited_held_workload_is_failed_and_not_ready() -> None:
    status = held.observed(_owned(State.EXITED), PROBLEM, runner="docker")
    assert status.phase == Phase.FAILED
    assert _ready(status) == ("False", "ManifestRefused")
    running = status.condition(ConditionType.CONTAINER_RUNNING)
    assert running is not None and running.reason == Reason.CONTAINER_EXITED


def test_a_kept_models_status_keeps_its_readiness_and_says_why_the_file_is_refused() -> None:
    status = MLModelStatus(
        phase=Phase.RUNNING,
        conditions=set_condition([], ConditionType.READY, "True", Reason.PROBE_PASSED),
        message="serving",
    )
    restated = held.restate(status, FILE, PROBLEM)
    assert _ready(restated) == ("True", "ManifestRefused")
    assert restated.message == f"runs its last valid spec; {FILE} is refused: {PROBLEM}; serving"
    assert status.message == "serving"  # the stored status is not changed
