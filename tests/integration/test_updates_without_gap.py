"""Updates without a gap, under load (real engine, ``mlplatform local`` watching).

A client on the models' network requests the model's stable endpoint
(``<metadata.name>.<namespace>``) 20 times a second, each request a fresh lookup and a fresh
connection (``tests/support/load.py``), while the model's spec changes. Whatever the change
— an env change, an id change, a new image that crashes, a new revision that never passes
its probe — no request may fail: the old container serves until the new one is Ready, and
when the new one cannot become Ready the old one keeps serving and the status says why.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import docker.errors
from docker.models.containers import Container

from mlplatform.runners.base import LABEL_MODEL_ID
from mlplatform.runners.docker_plan import is_candidate_name
from tests.support.docker_env import wait_until
from tests.support.load import LoadClient, Tally
from tests.support.local_cli import LocalCli

NAME = "svc"
PROBE = {"httpGet": {"path": "/health", "port": 8080}, "periodSeconds": 1}
# Enough requests to say the client ran across the whole update (20 a second).
MIN_REQUESTS = 20


def _status(status_file: Path) -> dict[str, Any] | None:
    try:
        doc = json.loads(status_file.read_text())
    except (OSError, ValueError):
        return None
    for item in doc.get("items", []):
        if item.get("metadata", {}).get("name") == NAME:
            status: dict[str, Any] | None = item.get("status")
            return status
    return None


def _condition(status: dict[str, Any] | None, kind: str) -> dict[str, Any]:
    for condition in (status or {}).get("conditions", []):
        if condition["type"] == kind:
            return dict(condition)
    return {}


class Watched:
    """The status file of a ``local`` process, every version of it seen while waiting."""

    def __init__(self, status_file: Path) -> None:
        self.file = status_file
        self.seen: list[dict[str, Any]] = []

    def wait(self, ok: Callable[[dict[str, Any]], bool], *, timeout: float = 60) -> dict[str, Any]:
        def check() -> dict[str, Any] | None:
            status = _status(self.file)
            if status is not None and (not self.seen or self.seen[-1] != status):
                self.seen.append(status)
            return status if status is not None and ok(status) else None

        return wait_until(check, timeout=timeout, interval=0.05)


def _ready(status: dict[str, Any]) -> bool:
    return _condition(status, "Ready").get("status") == "True"


def _start_serving(local: LocalCli, tmp_path: Path, **container: Any) -> tuple[Watched, str]:
    """The model running and Ready under ``local``; (its status watcher, container id)."""
    local.write(NAME, container={"readinessProbe": PROBE, **container})
    watched = Watched(tmp_path / "status.json")
    local.start("--status-file", str(watched.file))
    status = watched.wait(lambda s: _ready(s) and s.get("phase") == "Running")
    return watched, str(status["runner"]["containerId"])


def _load(local: LocalCli) -> LoadClient:
    return LoadClient.on(
        local.env, local.images.client, f"{NAME}.{local.namespace}", 8080, "/health"
    )


def _model_containers(local: LocalCli, model_id: str) -> list[Container]:
    return list(
        local.env.client.containers.list(
            all=True, ignore_removed=True, filters={"label": f"{LABEL_MODEL_ID}={model_id}"}
        )
    )


def _no_failures(tally: Tally) -> None:
    assert tally.failed == 0, f"{tally.failed} of {tally.sent} requests failed: {tally.failures}"
    assert tally.ok >= MIN_REQUESTS, f"the client sent too few requests: {tally}"


def _took_over(old_id: str) -> Callable[[dict[str, Any]], bool]:
    def done(status: dict[str, Any]) -> bool:
        return (
            status.get("runner", {}).get("containerId") not in (None, old_id)
            and _condition(status, "Updating").get("status") == "False"
            and _ready(status)
        )

    return done


def _always_ready_since_serving(watched: Watched) -> None:
    """Ready never went False while the update ran (the old container kept serving)."""
    first = next(i for i, s in enumerate(watched.seen) if _ready(s))
    flips = [s.get("message") for s in watched.seen[first:] if not _ready(s)]
    assert flips == [], f"Ready went False during the update: {flips}"


def test_an_env_change_drops_no_request(local: LocalCli, tmp_path: Path) -> None:
    watched, old_id = _start_serving(local, tmp_path)
    model_id = local.env.model_id(NAME)
    with _load(local) as load:
        load.wait_serving()
        local.write(NAME, container={"readinessProbe": PROBE, "env": [{"name": "V", "value": "2"}]})
        watched.wait(lambda s: _condition(s, "Updating").get("status") == "True")
        status = watched.wait(_took_over(old_id))
        tally = load.stop()

    _no_failures(tally)
    _always_ready_since_serving(watched)
    (container,) = _model_containers(local, model_id)
    assert container.name == model_id.replace(":", "-")
    assert container.id == status["runner"]["containerId"]
    assert "V=2" in container.attrs["Config"]["Env"]
    assert status["endpoints"][0] == f"http://{NAME}.{local.namespace}:8080"


def test_an_id_change_keeps_the_stable_endpoint_and_drops_no_request(
    local: LocalCli, tmp_path: Path
) -> None:
    watched, old_id = _start_serving(local, tmp_path)
    old_model, new_model = local.env.model_id(NAME, "1"), local.env.model_id(NAME, "2")
    with _load(local) as load:
        load.wait_serving()
        local.write(NAME, id=new_model, container={"readinessProbe": PROBE})
        status = watched.wait(_took_over(old_id))
        tally = load.stop()

    _no_failures(tally)
    _always_ready_since_serving(watched)
    assert _model_containers(local, old_model) == []
    (container,) = _model_containers(local, new_model)
    assert container.name == new_model.replace(":", "-")
    assert status["endpoints"] == [
        f"http://{NAME}.{local.namespace}:8080",
        f"http://{new_model.replace(':', '-')}:8080",
    ]


def test_a_new_image_that_crashes_leaves_the_old_container_serving(
    local: LocalCli, tmp_path: Path
) -> None:
    watched, old_id = _start_serving(local, tmp_path)
    with _load(local) as load:
        load.wait_serving()
        local.write(
            NAME,
            local.images.exit,
            container={"readinessProbe": PROBE, "env": [{"name": "EXIT_CODE", "value": "3"}]},
        )
        # Two crashes of the new revision: it is retried (with back-off), the old one serves.
        status = watched.wait(
            lambda s: _condition(s, "Updating").get("reason") == "CrashLoopBackOff"
        )
        # And the old one keeps serving while the new one backs off (2 s of requests).
        served = load.so_far().ok
        wait_until(lambda: load.so_far().ok >= served + 40, timeout=20)
        tally = load.stop()

    _no_failures(tally)
    _always_ready_since_serving(watched)
    assert status["runner"]["containerId"] == old_id
    assert status["phase"] == "Running"
    updating = _condition(status, "Updating")
    assert updating["status"] == "True"
    assert "exited with code 3" in updating["message"]
    assert "exited with code 3" in status["message"]
    old = local.env.client.containers.get(old_id)
    assert old.status == "running"


def test_a_new_revision_that_never_passes_its_probe_leaves_the_old_container_serving(
    local: LocalCli, tmp_path: Path
) -> None:
    watched, old_id = _start_serving(local, tmp_path)
    never = {"httpGet": {"path": "/never-ready", "port": 8080}, "periodSeconds": 1}
    with _load(local) as load:
        load.wait_serving()
        local.write(NAME, container={"readinessProbe": never})
        status = watched.wait(
            lambda s: "answered 404" in _condition(s, "Updating").get("message", "")
        )
        # It keeps failing, and the old one keeps serving all the while (2 s of requests).
        served = load.so_far().ok
        wait_until(lambda: load.so_far().ok >= served + 40, timeout=20)
        tally = load.stop()

    _no_failures(tally)
    _always_ready_since_serving(watched)
    status = watched.seen[-1]
    assert status["runner"]["containerId"] == old_id
    updating = _condition(status, "Updating")
    assert (updating["status"], updating["reason"]) == ("True", "ProbeFailed")
    assert local.env.client.containers.get(old_id).status == "running"


def test_a_replacement_cut_short_by_sigkill_is_finished_after_a_restart(
    local: LocalCli, tmp_path: Path
) -> None:
    watched, old_id = _start_serving(local, tmp_path)
    model_id = local.env.model_id(NAME)
    # The new revision waits 3 s before its first probe: time to kill the process mid-update.
    slow = {**PROBE, "initialDelaySeconds": 3}
    local.write(NAME, container={"readinessProbe": slow, "env": [{"name": "V", "value": "2"}]})
    wait_until(
        lambda: any(is_candidate_name(str(c.name)) for c in _model_containers(local, model_id)),
        timeout=30,
    )
    process = local.processes[-1]
    process.send_signal(signal.SIGKILL)
    process.wait(10)
    assert any(is_candidate_name(str(c.name)) for c in _model_containers(local, model_id))

    local.start("--status-file", str(watched.file))
    watched.wait(_took_over(old_id), timeout=60)

    (container,) = _model_containers(local, model_id)  # nothing under a temporary name
    assert container.name == model_id.replace(":", "-")
    assert container.status == "running"
    assert "V=2" in container.attrs["Config"]["Env"]
    aliases = container.attrs["NetworkSettings"]["Networks"][local.env.network]["Aliases"]
    assert f"{NAME}.{local.namespace}" in aliases
    try:
        local.env.client.containers.get(old_id)
        raise AssertionError("the old container is still there")
    except docker.errors.NotFound:
        pass
