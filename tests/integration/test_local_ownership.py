"""Ownership safety of ``mlplatform local``: no ordinary mistake removes a running model.

Against the real engine through the installed ``mlplatform local`` process: bad paths touch
nothing, runs on different folders never prune each other, an invalid manifest holds its
model, the first holder keeps an id (and a container name), a renamed id leaves one
container (also across a SIGKILL in the hand-over), and one writer per folder.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.docker_env import CreationCounter, wait_until
from tests.support.local_cli import CLI, LocalCli

pytestmark = pytest.mark.docker


def run_paths(local: LocalCli, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``mlplatform local ARGS`` (paths given by the test, not the fixture's folder)."""
    return subprocess.run(
        [str(CLI), "local", *args],
        env={**local.environ(), **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def write_manifest(path: Path, doc: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(yaml.safe_dump(doc))
    temporary.replace(path)
    return path


def with_id(local: LocalCli, name: str, model_id: str, **spec: Any) -> dict[str, Any]:
    doc = local.manifest(name, **spec)
    doc["spec"]["id"] = model_id
    return doc


# --- a bad argument touches nothing --------------------------------------------------------


@pytest.mark.parametrize("mistake", ["missing-file", "dash", "empty-folder", "no-model-folder"])
def test_a_mistyped_path_exits_2_before_any_engine_request_and_removes_nothing(
    local: LocalCli, tmp_path: Path, mistake: str
) -> None:
    local.write("a")
    assert local.run("--once").returncode == 0
    running = local.containers()
    empty = tmp_path / "empty"
    empty.mkdir()
    other = tmp_path / "other"
    write_manifest(other / "cm.yaml", {"apiVersion": "v1", "kind": "ConfigMap"})
    path, expected = {
        "missing-file": (str(local.folder / "a.yml"), "does not exist"),
        "dash": ("-", "standard input is not supported"),
        "empty-folder": (str(empty), "pass --prune-empty to allow"),
        "no-model-folder": (str(other), "pass --prune-empty to allow"),
    }[mistake]

    # No engine at all: a refusal that came after an engine request would say so instead.
    offline = run_paths(local, path, "--once", DOCKER_HOST="unix:///nonexistent.sock")
    result = run_paths(local, str(local.folder), path, "--once")

    assert offline.returncode == 2 and expected in offline.stderr, offline.stderr
    assert result.returncode == 2 and expected in result.stderr, result.stderr
    assert local.containers(running=False) == running


def test_an_empty_folder_is_a_desired_state_only_with_prune_empty(
    local: LocalCli, tmp_path: Path
) -> None:
    model = local.write("a")
    assert local.run("--once").returncode == 0
    model.unlink()

    refused = local.run("--once")
    allowed = local.run("--once", "--prune-empty")

    assert refused.returncode == 2 and "would remove every model under" in refused.stderr
    assert allowed.returncode == 0, allowed.stderr
    assert local.containers(running=False) == {}


def test_two_runs_on_different_folders_with_one_controller_never_prune_each_other(
    local: LocalCli, tmp_path: Path
) -> None:
    other = tmp_path / "other"
    write_manifest(other / "b.yaml", local.manifest("b"))
    local.write("a")

    first = local.run("--once")
    second = run_paths(local, str(other), "--once")
    third = local.run("--once")

    assert [first.returncode, second.returncode, third.returncode] == [0, 0, 0], third.stderr
    assert set(local.containers()) == local.ids("a", "b")
    down = run_paths(local, str(other), "--down")
    assert down.returncode == 0, down.stderr
    assert set(local.containers(running=False)) == local.ids("a")


# --- an invalid manifest holds its models ---------------------------------------------------


def test_an_invalid_manifest_holds_its_model_under_once_after_a_restart(local: LocalCli) -> None:
    path = local.write("a")
    local.write("b")
    assert local.run("--once").returncode == 0
    before = local.containers()
    path.write_text(path.read_text().replace("image:", "imagge:"))

    table = local.run("--once")
    as_json = local.run("--once", "--output", "json")

    assert table.returncode == 1 and as_json.returncode == 1
    assert local.containers(running=False) == before
    a = local.env.model_id("a")
    assert "keeps running its last valid spec" in table.stdout + table.stderr
    assert "imagge" in table.stdout + table.stderr
    problems = json.loads(as_json.stdout)["problems"]
    assert any("keeps running its last valid spec" in p and a in p for p in problems), problems
    assert any("imagge" in p for p in problems), problems
    # The held model is a row of its own: what runs, and why its file is refused.
    rows = {line.split()[1]: line.split() for line in table.stdout.splitlines()[1:] if line}
    assert "a" in rows and "b" in rows, table.stdout
    assert rows["a"][2] == a and rows["a"][3:5] == ["docker", "Running"], table.stdout
    assert "ManifestRefused" in rows["a"], table.stdout
    items = {i["metadata"]["name"]: i for i in json.loads(as_json.stdout)["items"]}
    held = items["a"]
    assert held["metadata"]["annotations"]["mlplatform.dev/source"] == str(path.resolve())
    assert held["status"]["phase"] == "Running"
    assert held["status"]["message"].startswith(
        f"runs its last valid spec; {path.resolve()} is refused: "
    )
    ready = {c["type"]: c for c in held["status"]["conditions"]}["Ready"]
    assert ready["reason"] == "ManifestRefused"
    assert items["b"]["status"]["phase"] == "Running"

    path.write_text(path.read_text().replace("imagge:", "image:"))
    fixed = local.run("--once")
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert local.containers(running=False) == before


def test_an_invalid_manifest_holds_its_model_in_watch_mode_across_resyncs(
    local: LocalCli, tmp_path: Path
) -> None:
    status = tmp_path / "status.json"
    path = local.write("a")
    assert local.run("--once").returncode == 0
    before = local.containers()
    path.write_text("spec: [unclosed\n")
    local.start("--status-file", str(status), resync=0.5)
    # Several resyncs (each a garbage collection) go by while the file stays broken.
    wait_until(lambda: local.log().count("Manag") >= 1 and status.exists(), timeout=30)
    wait_until(lambda: "keeps running" in status.read_text(), timeout=30)
    wait_until(lambda: held_item(status, "a") is not None, timeout=30)
    # The touch must come once the watch is set (an earlier one is read by the re-read that
    # follows the setting, which logs no "reloading").
    wait_until(lambda: "Watching the manifests for changes" in local.log(), timeout=30)
    path.write_text(path.read_text())  # touch: one more reload
    wait_until(lambda: local.log().count("reloading") >= 1, timeout=30)

    assert local.containers(running=False) == before
    item = held_item(status, "a")
    assert item is not None and item["status"]["phase"] == "Running"
    assert item["metadata"]["annotations"]["mlplatform.dev/source"] == str(path.resolve())


def test_a_model_the_watcher_knows_says_it_runs_its_last_valid_spec_when_its_file_breaks(
    local: LocalCli, tmp_path: Path
) -> None:
    status = tmp_path / "status.json"
    path = local.write("a")
    local.start("--status-file", str(status), resync=0.5)
    wait_until(lambda: ready_item(status, "a"), timeout=60)
    before = local.containers()
    path.write_text(path.read_text().replace("image:", "imagge:"))

    wait_until(lambda: held_item(status, "a") is not None, timeout=30)
    item = held_item(status, "a")
    assert item is not None
    # Its last valid spec is known: shown whole, still ready, the file's problem said.
    assert item["spec"]["container"]["image"] and "generation" in item["metadata"]
    assert item["status"]["phase"] == "Running"
    assert item["status"]["message"].startswith(
        f"runs its last valid spec; {path.resolve()} is refused: "
    )
    assert "spec.container.image" in item["status"]["message"]
    ready = {c["type"]: c for c in item["status"]["conditions"]}["Ready"]
    assert ready["status"] == "True"
    assert local.containers(running=False) == before


def ready_item(status: Path, name: str) -> bool:
    """Whether the status file shows model ``name`` Running and ready."""
    try:
        items = json.loads(status.read_text())["items"]
    except (OSError, ValueError):
        return False
    return any(
        i["metadata"]["name"] == name
        and i["status"].get("phase") == "Running"
        and any(c["type"] == "Ready" and c["status"] == "True" for c in i["status"]["conditions"])
        for i in items
    )


def held_item(status: Path, name: str) -> dict[str, Any] | None:
    """The status file's item ``name`` when it says its manifest is refused, else None."""
    try:
        items = json.loads(status.read_text())["items"]
    except (OSError, ValueError):
        return None  # not written yet
    for item in items:
        ready = {c["type"]: c for c in item["status"].get("conditions", [])}.get("Ready")
        if item["metadata"]["name"] == name and ready and ready["reason"] == "ManifestRefused":
            return dict(item)
    return None


# --- first holder keeps an id ---------------------------------------------------------------


def test_a_newcomer_claiming_a_running_models_id_is_refused_whatever_the_file_order(
    local: LocalCli,
) -> None:
    z = local.write("z")
    assert local.run("--once").returncode == 0
    before = local.containers()
    model_id = local.env.model_id("z")
    # "a.yaml" sorts before "z.yaml": by file order alone it would take the id.
    write_manifest(
        local.folder / "a.yaml",
        with_id(local, "a", model_id, container={"env": [{"name": "NEWCOMER", "value": "1"}]}),
    )

    result = local.run("--once")

    assert result.returncode == 1
    assert local.containers(running=False) == before
    assert f'"{model_id}" is already used by MLModel tests/z' in result.stdout + result.stderr
    assert str(z.resolve()) in result.stdout + result.stderr


def test_two_ids_that_map_to_one_container_name_are_refused(local: LocalCli) -> None:
    base = local.env.model_id("p").split(":")[0]
    write_manifest(local.folder / "first.yaml", with_id(local, "first", f"{base}-q:1"))
    write_manifest(local.folder / "second.yaml", with_id(local, "second", f"{base}:q-1"))

    result = local.run("--once")

    assert result.returncode == 1
    assert set(local.containers(running=False)) == {f"{base}-q:1"}
    assert (
        f'spec.id: "{base}:q-1" maps to container name "{base}-q-1", already used by '
        f"MLModel tests/first ({base}-q:1)" in result.stdout + result.stderr
    )


# --- one workload per owner, across renames ---------------------------------------------------


def test_a_renamed_id_leaves_one_container_under_once(local: LocalCli) -> None:
    local.write("a")
    assert local.run("--once").returncode == 0
    renamed = local.env.model_id("a", "2")
    write_manifest(local.folder / "a.yaml", with_id(local, "a", renamed))

    result = local.run("--once")

    assert result.returncode == 0, result.stdout + result.stderr
    assert set(local.containers(running=False)) == {renamed}


def test_a_renamed_id_in_watch_mode_replaces_the_container_once_the_new_one_runs(
    local: LocalCli,
) -> None:
    local.write("a")
    local.start()
    local.wait_for(lambda c: set(c) == local.ids("a"), timeout=60)
    renamed = local.env.model_id("a", "2")

    write_manifest(local.folder / "a.yaml", with_id(local, "a", renamed))

    local.wait_for(lambda c: set(c) == {renamed}, running=False, timeout=30)


def test_sigkill_between_the_new_ids_container_and_the_old_ones_removal_leaves_one(
    local: LocalCli,
) -> None:
    local.write("a")
    process = local.start()
    local.wait_for(lambda c: set(c) == local.ids("a"), timeout=60)
    old, renamed = local.env.model_id("a"), local.env.model_id("a", "2")
    # A readiness probe that only passes after a few seconds holds the hand-over open: the
    # new id's container runs (under its temporary name, behind the old one), it is not
    # Ready yet, so the old one must keep serving.
    probe = {"httpGet": {"path": "/health", "port": 8080}, "initialDelaySeconds": 6}
    write_manifest(
        local.folder / "a.yaml", with_id(local, "a", renamed, container={"readinessProbe": probe})
    )

    def handing_over() -> tuple[dict[str, str], str] | None:
        serving = local.containers()
        new = local.by_model(running=True, candidates=True).get(renamed, [])
        return (serving, new[0]) if set(serving) == {old} and len(new) == 1 else None

    serving, new = wait_until(handing_over, timeout=30, interval=0.05)

    process.send_signal(signal.SIGKILL)
    process.wait(10)
    assert local.containers() == serving  # the hand-over was cut in the middle
    assert local.by_model(running=True, candidates=True) == {renamed: [new]}

    result = local.run("--once", "--timeout", "60")

    assert result.returncode == 0, result.stdout + result.stderr
    # The new container took over (renamed to its contract name); nothing else is left.
    assert local.containers(running=False) == {renamed: new}
    assert local.by_model(candidates=True) == {}


# --- one writer per folder --------------------------------------------------------------------


def test_a_second_run_on_overlapping_manifests_refuses_naming_the_first_until_it_dies(
    local: LocalCli,
) -> None:
    local.write("a")
    first = local.start()
    local.wait_for(lambda c: set(c) == local.ids("a"), timeout=60)

    second = local.run("--once")
    inner = run_paths(local, str(local.folder / "a.yaml"), "--once")

    assert second.returncode == 2 and f"PID {first.pid}" in second.stderr, second.stderr
    assert inner.returncode == 2 and f"PID {first.pid}" in inner.stderr, inner.stderr
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    # The lock of the killed process is stale: the next run takes it over.
    again = local.run("--once")
    assert again.returncode == 0, again.stderr


def test_one_writer_per_folder_whatever_the_working_directory_and_the_settings(
    local: LocalCli, tmp_path: Path
) -> None:
    # Issue 23: the lock lived under STORAGE_DIR (by default relative to the working
    # directory), so a run from elsewhere was not refused and replaced the watched model's
    # container with one mounting another storage folder.
    local.write("a")
    first = local.start()
    running = local.wait_for(lambda c: set(c) == local.ids("a"), timeout=60)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    environ = {**local.environ(), "STORAGE_DIR": str(elsewhere / "storage")}

    second = subprocess.run(
        [str(CLI), "local", str(local.folder), "--once"],
        env=environ,
        cwd=elsewhere,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert second.returncode == 2, second.stderr
    assert f"PID {first.pid}" in second.stderr
    assert local.containers() == running


def test_a_run_whose_storage_settings_differ_from_a_running_model_refuses_naming_both(
    local: LocalCli, tmp_path: Path
) -> None:
    local.write("a", container={"volumes": ["/storage"]})
    assert local.run("--once").returncode == 0
    running = local.containers()
    moved = tmp_path / "moved"

    result = run_paths(local, str(local.folder), "--once", STORAGE_DIR=str(moved))

    assert result.returncode == 2, result.stderr
    name = local.env.model_id("a").replace(":", "/")
    assert str(local.env.storage_dir / "services-ml" / name / "storage") in result.stderr
    assert str(moved / "services-ml" / name / "storage") in result.stderr
    assert "STORAGE_DIR" in result.stderr and "Traceback" not in result.stderr
    assert local.containers() == running
    assert not moved.exists()


# --- debug ports hand over --------------------------------------------------------------------


def test_debug_ports_pass_to_the_waiting_claimer_when_the_holder_stops_asking(
    local: LocalCli, tmp_path: Path
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    local.extra_env["RUNNERS_DOCKER_HOST_PORT_DEBUG"] = str(port)
    status = tmp_path / "status.json"
    local.write("a", debug=True)
    local.write("b", debug=True)
    local.start("--status-file", str(status), resync=30)

    def holder_and_waiter() -> tuple[str, str] | None:
        if not status.exists():
            return None
        items = LocalCli.status(status)
        bound = [n for n, i in items.items() if (i["status"] or {}).get("debugEndpoints")]
        waiting = [
            n
            for n, i in items.items()
            if "debug ports are held by" in ((i["status"] or {}).get("message") or "")
        ]
        return (bound[0], waiting[0]) if bound and waiting else None

    holder, waiter = wait_until(holder_and_waiter, timeout=60)
    assert local.env.model_id(holder) in LocalCli.status(status)[waiter]["status"]["message"]
    assert local.env.model_id(holder) in local.log()  # the table's MESSAGE column

    local.write(holder, debug=False)

    def handed_over() -> list[str] | None:
        item = LocalCli.status(status)[waiter]["status"] or {}
        return item.get("debugEndpoints") or None

    assert wait_until(handed_over, timeout=30) == [f"http://127.0.0.1:{port}"]
    assert not (LocalCli.status(status)[holder]["status"] or {}).get("debugEndpoints")


# --- one creation per restart -----------------------------------------------------------------


def test_a_crash_loop_creates_one_container_per_restart_and_logs_each_back_off_once(
    local: LocalCli, tmp_path: Path
) -> None:
    status = tmp_path / "status.json"
    model_id = local.env.model_id("crash")
    local.write(
        "crash", local.images.exit, container={"env": [{"name": "EXIT_CODE", "value": "3"}]}
    )
    counter = CreationCounter(local.env, model_id)
    process = local.start("--status-file", str(status), resync=1)

    def restarts() -> int:
        if not status.exists():
            return 0
        return int((LocalCli.status(status)["crash"]["status"] or {}).get("restartCount") or 0)

    wait_until(lambda: restarts() >= 4, timeout=60)
    process.send_signal(signal.SIGTERM)
    assert process.wait(15) == 0
    created, counted = counter.close(), restarts()

    # The first container plus one per restart; the last one may not be counted yet.
    assert counted <= created <= counted + 1, (created, counted)
    backoffs = [line.split(" ", 1)[1] for line in local.log().splitlines() if "BackOff:" in line]
    assert backoffs and len(backoffs) == len(set(backoffs)), backoffs
    failures = [line.rsplit("(failure", 1)[-1] for line in backoffs]
    assert len(failures) == len(set(failures)), backoffs  # one BackOff per counted failure
