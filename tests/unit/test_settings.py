"""One frozen config per process: options and settings merged, flag > variable > default.

``kube.options.load`` and ``local.options.load`` are what the ``mlplatform`` command calls
after argparse; here they get the parsed arguments and an environment of the test's own.
The last tests run the installed command, for the exit code and "nothing done".
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mlplatform import argtypes, cli, flags
from mlplatform.config import InvalidSettings, Settings
from mlplatform.kube import options as kube_options
from mlplatform.kube.options import OperatorConfig
from mlplatform.local import options as local_options
from mlplatform.local.options import LocalConfig

MLPLATFORM = Path(sys.executable).parent / "mlplatform"


def _operator(*argv: str, env: dict[str, str] | None = None) -> OperatorConfig:
    return kube_options.load(cli._parser().parse_args(["operator", *argv]), environ=env or {})


def _local(*argv: str, env: dict[str, str] | None = None) -> LocalConfig:
    return local_options.load(cli._parser().parse_args(["local", *argv]), environ=env or {})


def _help(command: str) -> str:
    parser = cli._parser()
    [commands] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return str(commands.choices[command].format_help())


def _entries(text: str) -> dict[str, str]:
    """``--help``'s entries by their first word (``--workers``, ``PATH``), each on one line."""
    blocks: list[list[str]] = []
    for line in text.splitlines():
        if re.match(r"^  \S", line):
            blocks.append(line.split())  # an entry starts at indentation 2
        elif line.startswith("   ") and blocks:
            blocks[-1].extend(line.split())  # its help continues further in
        else:
            blocks.append([])  # a heading or a blank line ends it
    return {b[0].rstrip(","): " ".join(b) for b in reversed(blocks) if b}


# --- precedence --------------------------------------------------------------------------


def test_without_flags_or_variables_every_option_has_its_declared_default() -> None:
    config = _operator()
    for name, _, default in flags.declared(OperatorConfig):
        assert getattr(config, name) == default, name
    assert (config.metrics_port, config.workers, config.resync_interval) == (9090, 8, 60.0)
    assert config.namespaces == []
    local = _local("m")
    assert (local.workers, local.resync, local.timeout, local.output) == (8, 30.0, 120.0, "table")


def test_a_variable_beats_the_default_and_a_flag_beats_the_variable() -> None:
    env = {
        "MLPLATFORM_METRICS_PORT": "9191",
        "MLPLATFORM_WORKERS": "3",
        "MLPLATFORM_RESYNC_INTERVAL": "12.5",
        "MLPLATFORM_PEERING": "from-env",
    }
    from_env = _operator(env=env)
    assert (from_env.metrics_port, from_env.workers, from_env.resync_interval) == (9191, 3, 12.5)
    assert from_env.peering == "from-env"
    flagged = _operator("--metrics-port", "0", "--workers", "5", "--peering", "p", env=env)
    assert (flagged.metrics_port, flagged.workers, flagged.peering) == (0, 5, "p")
    assert flagged.resync_interval == 12.5  # no flag: the variable still counts


def test_the_local_command_reads_the_shared_variables_and_its_flags_win() -> None:
    env = {"MLPLATFORM_WORKERS": "2", "MLPLATFORM_RESYNC_INTERVAL": "7"}
    assert (_local("m", env=env).workers, _local("m", env=env).resync) == (2, 7.0)
    assert _local("m", "--workers", "4", "--resync", "9", env=env).workers == 4


def test_namespaces_come_from_the_flags_else_the_variable_and_all_namespaces_wins() -> None:
    env = {"MLPLATFORM_NAMESPACES": "a, b,a"}
    assert _operator(env=env).namespaces == ["a", "b"]
    assert _operator("-n", "c", env=env).namespaces == ["c"]
    assert _operator("-A", env=env).namespaces == []
    # As operator-sdk's WATCH_NAMESPACE: an empty variable means every namespace.
    assert _operator(env={"MLPLATFORM_NAMESPACES": ""}).namespaces == []


def test_a_switch_is_set_by_its_flag_or_a_true_variable() -> None:
    assert not _operator().standalone
    for word in ("true", "1", "YES", "on"):
        assert _operator(env={"MLPLATFORM_STANDALONE": word}).standalone, word
    for word in ("false", "0", "no", "off", ""):
        assert not _operator(env={"MLPLATFORM_STANDALONE": word}).standalone, word
    # A switch flag has no "off" form: given, it is on whatever the variable says.
    assert _operator("--standalone", env={"MLPLATFORM_STANDALONE": "false"}).standalone


def test_the_log_format_setting_picks_kopfs_format_unless_the_flag_is_given() -> None:
    assert _operator().log_format == "full"
    assert _operator(env={"MLPLATFORM_LOG_FORMAT": "json"}).log_format == "json"
    assert _operator(env={"MLPLATFORM_LOG_FORMAT": "text"}).log_format == "full"
    assert _operator("--log-format", "plain", env={"MLPLATFORM_LOG_FORMAT": "json"}).log_format == (
        "plain"
    )


def test_a_fixed_priority_from_the_variable_is_used_as_is() -> None:
    assert _operator(env={"MLPLATFORM_PRIORITY": "42"}).peering_priority() == 42
    auto = _operator()
    assert auto.peering_priority(now=1_800_000_000.0, pid=1) > auto.peering_priority(
        now=1_800_000_001.0, pid=1
    )


def test_the_settings_are_read_once_into_the_same_frozen_object() -> None:
    config = _operator("--workers", "2", env={"RUNNERS_DOCKER_NETWORK": "models-net"})
    assert isinstance(config.settings, Settings)
    assert config.settings.runners_docker_network == "models-net"
    assert config.settings.controller == "operator"
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.workers = 3  # type: ignore[misc]


def test_local_mode_labels_its_containers_local_unless_the_variable_says_otherwise() -> None:
    assert _local("m").settings.controller == "local"
    assert _local("m", env={"MLPLATFORM_CONTROLLER": "ci"}).settings.controller == "ci"


def test_local_mode_runs_the_docker_runner_unless_the_variable_turns_it_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Local mode has no other engine; the operator keeps the original service's default.
    assert _local("m").settings.runners_docker_enabled
    assert not _local("m", env={"RUNNERS_DOCKER_ENABLED": "false"}).settings.runners_docker_enabled
    assert not _operator(env={}).settings.runners_docker_enabled
    [line] = [line for line in _help("local").splitlines() if "RUNNERS_DOCKER_ENABLED" in line]
    assert line.endswith("(default: true)"), line
    # Turned off in the development .env file: off too (the default does not mask it).
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("RUNNERS_DOCKER_ENABLED=false\n")
    dev = _local("m", env={"ENVIRONMENT": "development"})
    assert not dev.settings.runners_docker_enabled


def test_what_one_invocation_does_has_no_variable() -> None:
    # A variable left in a shell must not turn a run into a removal.
    local = {name: d.env for name, d, _ in flags.declared(LocalConfig)}
    for name in ("paths", "once", "down", "prune_empty", "timeout", "output", "status_file"):
        assert local[name] is None, name
    assert not _local("m", env={"MLPLATFORM_DOWN": "true", "MLPLATFORM_ONCE": "1"}).down


def test_a_variable_may_come_from_the_dotenv_file_in_development(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".env").write_text("MLPLATFORM_WORKERS=6\nRUNNERS_DOCKER_NETWORK=dev-net\n")
    monkeypatch.chdir(tmp_path)
    development = _local("m", env={"ENVIRONMENT": "development"})
    assert (development.workers, development.settings.runners_docker_network) == (6, "dev-net")
    # The process environment beats the file; without development the file is not read.
    assert _local("m", env={"ENVIRONMENT": "development", "MLPLATFORM_WORKERS": "2"}).workers == 2
    assert _local("m", env={"ENVIRONMENT": "production"}).workers == 8


# --- bad values --------------------------------------------------------------------------

# (flag, variable, bad value, the rule both must state)
BAD = [
    ("--metrics-port", "MLPLATFORM_METRICS_PORT", "70000", "must be a port between 1 and 65535"),
    ("--webhook-port", "MLPLATFORM_WEBHOOK_PORT", "http", "'http' is not a port number"),
    ("--workers", "MLPLATFORM_WORKERS", "0", "must be at least 1, got 0"),
    ("--resync-interval", "MLPLATFORM_RESYNC_INTERVAL", "-1", "must be a number of seconds"),
    ("--delete-timeout", "MLPLATFORM_DELETE_TIMEOUT", "soon", "'soon' is not a number"),
    ("--priority", "MLPLATFORM_PRIORITY", "high", "'high' is neither an integer nor auto"),
    ("--namespace", "MLPLATFORM_NAMESPACES", "Models", "'Models' is not a namespace name"),
]


@pytest.mark.parametrize(("flag", "variable", "value", "rule"), BAD, ids=[b[1] for b in BAD])
def test_a_bad_variable_names_the_variable_and_the_flags_rule(
    flag: str, variable: str, value: str, rule: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(InvalidSettings) as raised:
        _operator(env={variable: value})
    [problem] = raised.value.problems
    assert problem.startswith(f"{variable}: ") and rule in problem
    # The flag is refused by argparse with the same rule, naming the flag.
    with pytest.raises(SystemExit) as exited:
        cli._parser().parse_args(["operator", flag, value])
    assert exited.value.code == 2
    error = capsys.readouterr().err
    assert f"argument {flag}" in error and rule in error


def test_a_bad_variable_is_ignored_when_its_flag_is_given() -> None:
    # The flag wins: the variable is never read, so its value cannot fail the start.
    assert _operator("--workers", "4", env={"MLPLATFORM_WORKERS": "zero"}).workers == 4


def test_every_bad_setting_and_variable_is_told_at_once() -> None:
    env = {"DOCKER_HOST": "tcp://host:99999", "MLPLATFORM_WORKERS": "-2", "MLPLATFORM_VERBOSE": "2"}
    with pytest.raises(InvalidSettings) as raised:
        _operator(env=env)
    named = [problem.split(":")[0] for problem in raised.value.problems]
    assert sorted(named) == ["DOCKER_HOST", "MLPLATFORM_VERBOSE", "MLPLATFORM_WORKERS"]
    assert "\n" not in str(raised.value)


def test_a_webhook_certificate_needs_its_key() -> None:
    for argv in (["--webhook-cert", "c.pem"], ["--webhook-key", "k.pem"]):
        with pytest.raises(InvalidSettings, match="--webhook-cert and --webhook-key"):
            _operator(*argv)
    with pytest.raises(InvalidSettings, match="given together"):
        _operator("--webhook-cert", "c.pem", env={})
    both = _operator("--webhook-cert", "c.pem", env={"MLPLATFORM_WEBHOOK_KEY": "k.pem"})
    assert (both.webhook_cert, both.webhook_key) == ("c.pem", "k.pem")


def test_a_boolean_variable_accepts_the_usual_words_only() -> None:
    assert argtypes.boolean(" True ") is True
    with pytest.raises(argparse.ArgumentTypeError, match="'maybe' is not true or false"):
        argtypes.boolean("maybe")


# --- --help ------------------------------------------------------------------------------


@pytest.mark.parametrize(("command", "cls"), [("operator", OperatorConfig), ("local", LocalConfig)])
def test_help_shows_each_options_default_and_variable(command: str, cls: type[Any]) -> None:
    entries = _entries(_help(command))
    for name, item, default in flags.declared(cls):
        entry = entries[item.flags[0] if item.flags else str(item.metavar)]
        if default is not None and default != () and default is not False:
            assert f"(default: {default})" in entry, (command, name, entry)
        else:
            assert "(default:" not in entry, (command, name, entry)
        if item.env is not None:
            assert entry.endswith(f"[env {item.env}]"), (command, name, entry)
        else:
            assert "[env" not in entry, (command, name, entry)


def test_help_lists_the_settings_with_each_commands_own_defaults() -> None:
    operator, local = (" ".join(_help(c).split()) for c in ("operator", "local"))
    assert re.search(r"MLPLATFORM_CONTROLLER .*?\(default: operator\)", operator)
    assert re.search(r"MLPLATFORM_CONTROLLER .*?\(default: local\)", local)
    assert "RUNNERS_KUBERNETES_TIMEOUT" in operator
    # Local mode runs runner docker only: the Kubernetes runner's variables do not apply.
    assert "RUNNERS_KUBERNETES_" not in local
    for text in (operator, local):
        assert "RUNNERS_DOCKER_TIMEOUT" in text and "(default: 10.0)" in text
        assert "a flag wins over its variable" in text


def test_every_variable_is_named_once_and_has_the_products_prefix() -> None:
    settings = {str(f.alias) for f in Settings.model_fields.values()}
    for cls in (OperatorConfig, LocalConfig):
        names = flags.environment_names(cls)
        assert len(names) == len(set(names))
        for name in names:
            assert name.startswith("MLPLATFORM_"), name
            # A setting's variable is read by the settings; only the log format is both
            # (MLPLATFORM_LOG_FORMAT picks kopf's format when --log-format is not given).
            assert name not in settings or name == "MLPLATFORM_LOG_FORMAT", name


# --- the command -------------------------------------------------------------------------


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    environ = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("RUNNERS_", "DOCKER_", "KUBERNETES_", "KUBECONFIG", "MLPLATFORM_"))
    }
    return subprocess.run(
        [str(MLPLATFORM), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**environ, **env},
        check=False,
    )


@pytest.mark.parametrize("command", ["local", "operator"])
def test_a_bad_variable_is_one_line_exit_2_and_nothing_is_done(
    command: str, tmp_path: Path
) -> None:
    storage = tmp_path / "storage"
    (tmp_path / "m.yaml").write_text(
        "apiVersion: mlplatform.dev/v1alpha1\nkind: MLModel\nmetadata: {name: a}\n"
        'spec: {id: "a:1", container: {image: busybox, ports: [80]}}\n'
    )
    args = ["--once", str(tmp_path)] if command == "local" else ["--standalone"]
    env = {
        "MLPLATFORM_WORKERS": "0",
        "RUNNERS_DOCKER_ENABLED": "true",
        "STORAGE_DIR": str(storage),
        "KUBECONFIG": str(tmp_path / "missing"),
    }
    result = _run([command, *args], env)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    [line] = result.stderr.splitlines()
    assert line == (
        f"mlplatform {command}: invalid settings: MLPLATFORM_WORKERS: must be at least 1, "
        f"got 0 (see mlplatform {command} --help)"
    )
    # Refused before the writer lock, the engine or the cluster was touched.
    assert not storage.exists()


def test_the_readme_lists_every_setting() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    table = readme[readme.index("## Configuration") :]
    for field in Settings.model_fields.values():
        assert f"`{field.alias}`" in table, field.alias


def test_a_namespace_may_be_a_glob_pattern_as_kopf_takes_them() -> None:
    assert argtypes.namespace("team-*") == "team-*"
    assert argtypes.namespace("models") == "models"
    with pytest.raises(argparse.ArgumentTypeError, match="or a pattern of one"):
        argtypes.namespace("Team-*")
