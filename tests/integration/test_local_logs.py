"""``mlplatform logs``: a local model's output from any terminal, like ``kubectl logs``."""

from __future__ import annotations

import signal
import subprocess

import pytest

from tests.support.docker_env import wait_until
from tests.support.local_cli import CLI, LocalCli

pytestmark = pytest.mark.docker

TALKER = ["sh", "-c", "i=0; while true; do i=$((i+1)); echo line $i; sleep 0.1; done"]


def logs(local: LocalCli, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CLI), "logs", *args],
        env=local.environ(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_logs_prints_a_models_output_while_a_watcher_holds_its_folder(local: LocalCli) -> None:
    local.write("talker", container={"command": TALKER})
    local.start()
    local.wait_for(lambda found: local.env.model_id("talker") in found, timeout=60)
    wait_until(lambda: "line 5" in logs(local, "talker", "-n", local.namespace).stdout)

    last_two = logs(local, "talker", "-n", local.namespace, "--tail", "2")

    assert last_two.returncode == 0, last_two.stderr
    lines = last_two.stdout.splitlines()
    assert len(lines) == 2 and all(line.startswith("line ") for line in lines), lines
    first, second = (int(line.split()[1]) for line in lines)
    assert second == first + 1


def test_logs_follow_prints_new_output_until_ctrl_c(local: LocalCli) -> None:
    local.write("talker", container={"command": TALKER})
    assert local.run("--once").returncode == 0
    follower = subprocess.Popen(
        [str(CLI), "logs", "talker", "-n", local.namespace, "-f", "--tail", "1"],
        env=local.environ(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert follower.stdout is not None
        numbers = [int(follower.stdout.readline().split()[1]) for _ in range(5)]
        assert numbers == list(range(numbers[0], numbers[0] + 5))  # new lines as they come
        follower.send_signal(signal.SIGINT)
        assert follower.wait(10) == 130
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait(10)


def test_logs_previous_shows_the_crashed_container_while_the_engine_holds_it(
    local: LocalCli,
) -> None:
    script = "echo loading; echo 'ValueError: bad weights' >&2; exit 3"
    local.write("crash", container={"command": ["sh", "-c", script]})
    assert local.run("--once", "--timeout", "60").returncode == 1  # it crash-loops

    previous = logs(local, "crash", "-n", local.namespace, "--previous")

    assert previous.returncode == 0, previous.stderr
    assert "loading" in previous.stdout and "ValueError: bad weights" in previous.stdout


def test_logs_of_a_model_that_does_not_run_here_is_one_line_and_exit_1(local: LocalCli) -> None:
    local.write("talker", container={"command": TALKER})
    assert local.run("--once").returncode == 0

    missing = logs(local, "nobody", "-n", local.namespace)
    no_previous = logs(local, "talker", "-n", local.namespace, "--previous")

    assert missing.returncode == 1
    assert missing.stderr.strip() == (
        f"mlplatform logs: no container of {local.namespace}/nobody (controller "
        f"{local.env.controller}) on this engine"
    )
    assert no_previous.returncode == 1
    assert "no terminated container" in no_previous.stderr
    assert "Traceback" not in missing.stderr + no_previous.stderr
