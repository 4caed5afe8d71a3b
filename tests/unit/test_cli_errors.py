"""The command line as a user meets it: one line per mistake, distinct exit codes, no tracebacks.

Exit codes (``mlplatform --help``): 2 usage or configuration, 1 invalid/did not converge,
130 SIGINT, 143 SIGTERM. Every case runs the installed ``mlplatform`` as a subprocess.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlplatform import __version__, cli
from mlplatform.kube import options as kube_options

MLPLATFORM = Path(sys.executable).parent / "mlplatform"
TIMEOUT = 60
MODEL = (
    "apiVersion: mlplatform.dev/v1alpha1\nkind: MLModel\nmetadata: {{name: a}}\n"
    'spec: {{id: "a:1", debug: {debug}, container: {{image: busybox, ports: [80, 81]}}}}\n'
)


def _run(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    # Nothing of the caller's engine or cluster: each test names what it sets.
    environ = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("RUNNERS_", "DOCKER_", "KUBERNETES_", "KUBECONFIG"))
    }
    environ.update(env or {})
    return subprocess.run(
        [str(MLPLATFORM), *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=environ,
        cwd=cwd,
        check=False,
    )


def _one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["local", "--workers", "0", "m"], "argument --workers: must be at least 1, got 0"),
        (["local", "--workers", "-1", "m"], "argument --workers: must be at least 1, got -1"),
        (["local", "--timeout", "-5", "m"], "argument --timeout: must be a number of seconds"),
        (["local", "--resync", "0", "m"], "argument --resync: must be a number of seconds"),
        (["local", "--status-file", "/no/such/folder/s.json", "m"], "does not exist"),
        (["operator", "--metrics-port", "70000"], "argument --metrics-port: must be a port"),
        (["operator", "--resync-interval", "0"], "argument --resync-interval:"),
        (["operator", "-n", "a", "--all-namespaces"], "not allowed with argument"),
        (["bogus"], "invalid choice: 'bogus'"),
    ],
    ids=lambda value: "-".join(value) if isinstance(value, list) else None,
)
def test_a_bad_option_is_one_line_and_exit_2(args: list[str], fragment: str) -> None:
    result = _run(*args)
    assert result.returncode == 2
    line = _one_line(result)
    assert fragment in line
    assert line.endswith("--help)")


def test_the_status_file_folder_is_not_created(tmp_path: Path) -> None:
    result = _run("local", "--status-file", str(tmp_path / "new" / "s.json"), str(tmp_path))
    assert result.returncode == 2
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize("command", ["local", "operator"])
def test_a_bad_docker_host_is_one_line_and_exit_2(command: str, tmp_path: Path) -> None:
    args = ["--once", str(tmp_path)] if command == "local" else ["--standalone"]
    result = _run(command, *args, env={"DOCKER_HOST": "tcp://256.1.1.1:99999"})
    assert result.returncode == 2
    line = _one_line(result)
    assert "DOCKER_HOST" in line and "port outside 1-65535" in line


def test_the_operator_without_a_kubeconfig_is_one_line_and_exit_2(tmp_path: Path) -> None:
    env = {"KUBECONFIG": str(tmp_path / "missing"), "HOME": str(tmp_path)}
    result = _run("operator", "--standalone", "--metrics-port", "0", "--liveness", "", env=env)
    assert result.returncode == 2
    line = _one_line(result)
    assert "no Kubernetes credentials" in line and "KUBECONFIG" in line


def test_debug_ports_past_65535_are_refused_up_front(tmp_path: Path) -> None:
    (tmp_path / "m.yaml").write_text(MODEL.format(debug="true"))
    env = {"RUNNERS_DOCKER_HOST_PORT_DEBUG": "65535", "DOCKER_HOST": "tcp://127.0.0.1:1"}
    result = _run("local", "--once", str(tmp_path), env=env)
    assert result.returncode == 2
    assert "debug ports 65535-65536 pass 65535" in result.stderr
    assert "Traceback" not in result.stderr


def test_debug_without_a_debug_port_says_so_up_front(tmp_path: Path) -> None:
    (tmp_path / "m.yaml").write_text(MODEL.format(debug="true"))
    result = _run("local", "--once", "--timeout", "5", str(tmp_path))
    lines = result.stderr.splitlines()
    warning = [
        i for i, line in enumerate(lines) if "RUNNERS_DOCKER_HOST_PORT_DEBUG is not set" in line
    ]
    managing = [i for i, line in enumerate(lines) if "Managing 1 model(s)" in line]
    assert warning and managing and warning[0] < managing[0], result.stderr


def test_once_gives_up_when_the_engine_does_not_answer(tmp_path: Path) -> None:
    (tmp_path / "m.yaml").write_text(MODEL.format(debug="false"))
    env = {
        "RUNNERS_DOCKER_ENABLED": "true",
        "RUNNERS_DOCKER_TIMEOUT": "1",
        "DOCKER_HOST": "tcp://127.0.0.1:1",
    }
    # --timeout far beyond the test's own timeout: only giving up early can pass.
    result = _run("local", "--once", "--timeout", "100000", str(tmp_path), env=env)
    assert result.returncode == 1
    assert "did not answer within RUNNERS_DOCKER_TIMEOUT=1s and one retry" in result.stderr
    assert "giving up" in result.stderr
    assert "Traceback" not in result.stderr


def test_help_shows_defaults_environment_and_exit_codes() -> None:
    result = _run("local", "--help")
    assert result.returncode == 0
    text = result.stdout
    assert "(default: 8)" in text and "(default: 120.0)" in text
    assert "RUNNERS_DOCKER_TIMEOUT" in text and "(default: 10.0)" in text
    assert "MLPLATFORM_LOG_FORMAT" in text
    assert "130" in text and "143" in text
    operator = _run("operator", "--help").stdout
    assert "KUBECONFIG" in operator and "(default: 9090)" in operator


def test_help_and_version_are_commands() -> None:
    assert _run("help").stdout == _run("--help").stdout
    assert "--require-models" in _run("help", "validate").stdout
    version = _run("version")
    assert (version.returncode, version.stdout) == (0, f"mlplatform {__version__}\n")


def test_every_argument_has_a_description() -> None:
    parser = cli._parser()
    [commands] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert set(commands.choices) == {
        "validate",
        "crd",
        "operator",
        "local",
        "logs",
        "help",
        "version",
    }
    for name, sub in commands.choices.items():
        assert sub.description, name
        for action in sub._actions:
            assert action.help, (name, action.dest)


def test_json_log_format_applies_to_local_mode(tmp_path: Path) -> None:
    (tmp_path / "m.yaml").write_text(MODEL.format(debug="false"))
    result = _run(
        "local", "--once", "--timeout", "5", str(tmp_path), env={"MLPLATFORM_LOG_FORMAT": "json"}
    )
    lines = result.stderr.splitlines()
    assert lines, result.stderr
    entries = [json.loads(line) for line in lines]
    assert all({"time", "level", "logger", "message"} <= set(entry) for entry in entries)
    assert any("Managing 1 model(s)" in entry["message"] for entry in entries)


@pytest.mark.parametrize(
    ("args", "namespaces"),
    [
        ([], []),
        (["--all-namespaces"], []),
        (["-A"], []),
        (["-n", "a", "-n", "b", "-n", "a"], ["a", "b"]),
    ],
)
def test_the_namespace_options_decide_what_the_operator_watches(
    args: list[str], namespaces: list[str]
) -> None:
    parsed = cli._parser().parse_args(["operator", *args])
    assert kube_options.load(parsed, environ={}).namespaces == namespaces


def test_a_reader_that_goes_away_is_no_traceback(tmp_path: Path) -> None:
    # More problem lines than a pipe buffers (64 KiB): validate is still writing when the
    # reader has taken its line and gone.
    bad = MODEL.format(debug='"yes"')
    for number in range(10):
        (tmp_path / f"m{number}.yaml").write_text("---\n".join([bad] * 500))
    stderr = tmp_path / "stderr"
    pipeline = subprocess.run(
        ["bash", "-c", f"set -o pipefail; {MLPLATFORM} validate {tmp_path} 2>{stderr} | head -1"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    errors = stderr.read_text()
    assert pipeline.stdout.count("\n") == 1
    assert "Traceback" not in errors and "BrokenPipeError" not in errors, errors[-500:]
    assert pipeline.returncode == 141


def test_local_mode_with_the_docker_runner_turned_off_says_so_up_front(tmp_path: Path) -> None:
    (tmp_path / "m.yaml").write_text(MODEL.format(debug="false"))
    # No engine at all: a runner that is off never asks one.
    env = {
        "RUNNERS_DOCKER_ENABLED": "false",
        "DOCKER_HOST": "tcp://127.0.0.1:1",
        "STORAGE_DIR": str(tmp_path / "storage"),
    }
    result = _run("local", "--once", str(tmp_path), env=env)
    assert result.returncode == 1
    assert "The Docker runner is off (RUNNERS_DOCKER_ENABLED=false)" in result.stderr
    assert "RunnerDisabled" in result.stdout
    assert "Traceback" not in result.stderr
