"""``mlplatform local`` end to end: the CLI as a subprocess against the real Docker engine.

Each test gets its own controller, network, folders and model ids (``docker_env``), writes
manifests into ``tmp_path`` and runs ``.venv/bin/mlplatform local`` (the installed entry
point) with that environment. Conditions are waited for with timeouts, never fixed sleeps.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.docker_env import wait_until
from tests.support.local_cli import LocalCli

ROOT = Path(__file__).resolve().parents[2]
MISSING_IMAGE = "mlpt-missing/none:1"

pytestmark = pytest.mark.docker


def _status_items(text: str) -> dict[str, dict[str, Any]]:
    doc = json.loads(text)
    return {item["metadata"]["name"]: item for item in doc["items"]}


# --- --once -----------------------------------------------------------------------------


def test_a_folder_of_three_models_converges_and_once_exits_0(
    local: LocalCli, tmp_path: Path
) -> None:
    local.write("a")
    local.write("b", container={"readinessProbe": {"httpGet": {"path": "/health", "port": 8080}}})
    local.write("c", container={"volumes": ["/storage"]})
    status_file = tmp_path / "status.json"

    result = local.run("--once", "--timeout", "60", "--status-file", str(status_file))

    assert result.returncode == 0, result.stdout + result.stderr
    assert set(local.containers()) == local.ids("a", "b", "c")
    lines = [line for line in result.stdout.splitlines() if line.startswith("tests ")]
    assert len(lines) == 3 and all(" Running " in line and " True " in line for line in lines)
    items = _status_items(status_file.read_text())
    assert {name: item["status"]["phase"] for name, item in items.items()} == {
        "a": "Running",
        "b": "Running",
        "c": "Running",
    }
    assert items["a"]["status"]["endpoints"] == [
        "http://a.tests:8080",  # the stable endpoint: <metadata.name>.<namespace>
        f"http://{local.env.model_id('a').replace(':', '-')}:8080",
    ]


def test_once_prints_one_json_document_with_output_json(local: LocalCli) -> None:
    local.write("a")

    result = local.run("--once", "--output", "json")

    assert result.returncode == 0, result.stderr
    items = _status_items(result.stdout)
    assert items["a"]["status"]["phase"] == "Running"
    assert items["a"]["metadata"]["annotations"]["mlplatform.dev/source"].endswith("a.yaml")


def test_once_exits_1_quickly_when_a_model_crash_loops_or_its_image_is_missing(
    local: LocalCli,
) -> None:
    local.write("good")
    local.write(
        "crash", local.images.exit, container={"env": [{"name": "EXIT_CODE", "value": "3"}]}
    )
    local.write("missing", MISSING_IMAGE, container={"imagePullPolicy": "Never"})

    started = time.monotonic()
    result = local.run("--once", "--timeout", "60", "--output", "json")
    took = time.monotonic() - started

    assert result.returncode == 1, result.stderr
    assert took < 50, f"--once waited {took:.0f}s instead of seeing the failures settle"
    items = _status_items(result.stdout)
    assert items["good"]["status"]["phase"] == "Running"
    assert items["crash"]["status"]["phase"] == "Failed"
    assert "exited with code 3" in items["crash"]["status"]["message"]
    assert items["missing"]["status"]["phase"] == "Failed"
    assert MISSING_IMAGE in items["missing"]["status"]["message"]


def test_a_crash_says_what_the_model_printed_last_in_its_status(local: LocalCli) -> None:
    # Issue 23: a crash read "exited with code 3: exited with code 3"; the model's own
    # last words (bounded) say why, as the kubelet's FallbackToLogsOnError does.
    script = "echo loading the model; echo 'ValueError: bad weights' >&2; exit 3"
    local.write("crash", container={"command": ["sh", "-c", script]})

    result = local.run("--once", "--timeout", "60", "--output", "json")

    assert result.returncode == 1, result.stderr
    status = _status_items(result.stdout)["crash"]["status"]
    failure = status["lastFailure"]["message"]
    assert failure.startswith(f"container mlpt-crash-{local.env.token}-1 exited with code 3: ")
    assert "ValueError: bad weights" in failure and "loading the model" in failure
    assert failure.count("exited with code 3") == 1, failure
    assert "ValueError: bad weights" in status["message"]


def test_once_reports_a_kubernetes_model_as_needing_a_cluster_without_waiting(
    local: LocalCli,
) -> None:
    local.write("good")
    local.write("incluster", runner="kubernetes")

    result = local.run("--once", "--timeout", "300", "--output", "json")

    assert result.returncode == 1, result.stderr
    assert "converged within" not in result.stderr  # settled on a final failure, no timeout
    items = _status_items(result.stdout)
    assert items["good"]["status"]["phase"] == "Running"
    refused = items["incluster"]["status"]
    assert refused["phase"] == "Failed"
    ready = next(c for c in refused["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "RunnerUnavailable")
    assert "needs the operator in a cluster" in ready["message"]
    assert set(local.containers()) == local.ids("good")


def test_down_of_a_folder_with_a_kubernetes_model_removes_the_docker_ones_and_succeeds(
    local: LocalCli,
) -> None:
    # Issue 23: --down failed (exit 1, "needs the operator in a cluster") although nothing
    # of a kubernetes model ever runs here: there is nothing of it to remove.
    local.write("good")
    local.write("incluster", runner="kubernetes")
    local.run("--once", "--timeout", "60")
    assert set(local.containers()) == local.ids("good")

    result = local.run("--down")

    assert result.returncode == 0, result.stderr
    assert "nothing to remove here (runner kubernetes)" in result.stderr
    assert local.containers(running=False) == {}


def test_an_invalid_manifest_is_reported_while_the_others_run(local: LocalCli) -> None:
    local.write("good")
    bad = local.folder / "bad.yaml"
    bad.write_text(
        "apiVersion: mlplatform.dev/v1alpha1\nkind: MLModel\nmetadata: {name: bad}\n"
        "spec: {id: no-version, container: {image: x, ports: [8080]}}\n"
    )

    result = local.run("--once", "--timeout", "60")

    assert f"{bad}:4: spec.id:" in result.stderr
    assert result.returncode == 1  # every model ran, but a manifest is wrong
    assert set(local.containers()) == local.ids("good")


def test_a_second_model_with_the_same_id_is_refused_and_the_first_runs(local: LocalCli) -> None:
    local.write("first")
    second = local.folder / "second.yaml"
    second.write_text(
        (local.folder / "first.yaml").read_text().replace("name: first", "name: second")
    )

    result = local.run("--once", "--timeout", "60")

    assert f"{second}: spec.id:" in result.stderr and "already used by" in result.stderr
    assert set(local.containers()) == local.ids("first")


def test_down_removes_every_container_of_the_manifests_and_keeps_storage(local: LocalCli) -> None:
    local.write("a", container={"volumes": ["/storage"]})
    local.write("b")
    assert local.run("--once").returncode == 0
    assert set(local.containers()) == local.ids("a", "b")

    result = local.run("--down")

    assert result.returncode == 0, result.stderr
    assert local.containers(running=False) == {}
    name, version = local.env.model_id("a").split(":")
    assert (local.env.storage_dir / "services-ml" / name / version / "storage").is_dir()


def test_a_container_whose_manifest_is_gone_is_removed_at_start(local: LocalCli) -> None:
    local.write("kept")
    gone = local.write("gone")
    assert local.run("--once").returncode == 0
    kept_id = local.containers()[local.env.model_id("kept")]
    gone.unlink()

    result = local.run("--once")

    assert result.returncode == 0, result.stderr
    assert local.containers(running=False) == {local.env.model_id("kept"): kept_id}


# --- watch mode -------------------------------------------------------------------------


def test_editing_one_manifest_replaces_only_its_container_and_deleting_one_removes_only_its(
    local: LocalCli,
) -> None:
    for name in ("a", "b", "c"):
        local.write(name)
    local.start()
    before = local.wait_for(lambda c: set(c) == local.ids("a", "b", "c"), timeout=60)

    local.write("b", container={"env": [{"name": "EDITED", "value": "1"}]})
    b = local.env.model_id("b")
    after_edit = local.wait_for(lambda c: c.get(b, before[b]) != before[b])
    assert {k: v for k, v in after_edit.items() if k != b} == {
        k: v for k, v in before.items() if k != b
    }

    (local.folder / "c.yaml").unlink()
    c = local.env.model_id("c")
    after_delete = local.wait_for(lambda m: c not in m, running=False)
    assert after_delete == {k: v for k, v in after_edit.items() if k != c}


def test_a_model_added_while_watching_is_started(local: LocalCli) -> None:
    local.write("first")
    local.start()
    wait_until(lambda: set(local.containers()) == local.ids("first"), timeout=60)

    local.write("second")

    wait_until(lambda: set(local.containers()) == local.ids("first", "second"), timeout=15)


def test_sigterm_stops_watching_and_leaves_the_models_running(local: LocalCli) -> None:
    local.write("a")
    process = local.start()
    running = local.wait_for(lambda c: set(c) == local.ids("a"), timeout=60)

    process.send_signal(signal.SIGTERM)

    assert process.wait(15) == 0
    assert local.containers() == running


def test_killing_the_process_mid_way_and_starting_again_leaves_one_container_per_model(
    local: LocalCli,
) -> None:
    names = [f"m{i}" for i in range(5)]
    for name in names:
        local.write(name)
    process = local.start()
    wait_until(lambda: len(local.containers(running=False)) >= 1, timeout=60, interval=0.02)

    process.send_signal(signal.SIGKILL)
    process.wait(10)
    result = local.run("--once", "--timeout", "60")

    assert result.returncode == 0, result.stdout + result.stderr
    # ``containers`` fails on a second container for one model id.
    assert set(local.containers(running=False)) == local.ids(*names)


# --- the demo model ---------------------------------------------------------------------


@pytest.fixture(scope="session")
def iris_image() -> str:
    """The demo image, built offline by demo/build-image.sh (a minute the first time)."""
    result = subprocess.run(
        ["bash", str(ROOT / "demo" / "build-image.sh")],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return "mlplatform-demo/iris:1"


def test_the_demo_model_answers_a_prediction_with_a_class(local: LocalCli, iris_image: str) -> None:
    example = yaml.safe_load((ROOT / "manifests/examples/local/iris.yaml").read_text())
    example["spec"]["id"] = local.env.model_id("iris")
    example["spec"]["debug"] = False  # the host port may be in use; ask over the network
    assert example["spec"]["container"]["image"] == iris_image
    (local.folder / "iris.yaml").write_text(yaml.safe_dump(example))

    result = local.run("--once", "--timeout", "120")
    assert result.returncode == 0, result.stdout + result.stderr

    host = local.env.model_id("iris").replace(":", "-")
    code, output = local.env.client_run(
        local.images.http,
        [
            "wget",
            "-qO-",
            "--header",
            "Content-Type: application/json",
            "--post-data",
            '{"features": [6.7, 3.0, 5.2, 2.3]}',
            f"http://{host}:8080/predict",
        ],
    )
    assert code == 0, output
    answer = json.loads(output)
    assert answer["class"] == "virginica"
    name, version = local.env.model_id("iris").split(":")
    log = local.env.storage_dir / "services-ml" / name / version / "storage" / "predictions.jsonl"
    assert json.loads(log.read_text().splitlines()[-1])["class"] == "virginica"
