"""`mlplatform validate` as a pipeline runs it: exit codes, one line per problem."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import corpus

ROOT = Path(__file__).resolve().parents[2]
MLPLATFORM = Path(sys.executable).parent / "mlplatform"
# A hostile file must be refused long before this; it only stops a hang from hanging the suite.
TIMEOUT = 60

MODEL = """\
apiVersion: mlplatform.dev/v1alpha1
kind: MLModel
metadata: {{name: {name}}}
spec: {{id: "{name}:1", {extra}container: {{image: {name}, ports: [{port}]}}}}
"""


def _run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(MLPLATFORM), "validate", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        cwd=ROOT,
        check=False,
    )


def _no_traceback(result: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in result.stdout + result.stderr


def test_the_examples_are_valid_and_exit_0() -> None:
    result = _run("manifests/examples")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""
    assert f"{len(corpus.valid_objects())} MLModel manifest(s) valid" in result.stderr


def test_each_corpus_file_is_refused_with_its_message_on_a_file_field_message_line() -> None:
    result = _run(corpus.INVALID_DIR)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    for case in corpus.invalid_cases():
        own = [line for line in lines if line.startswith(f"{case.path}: ")]
        assert any(case.expect in line for line in own), (case.name, own)
    _no_traceback(result)


def test_documents_of_a_multi_document_file_are_numbered(tmp_path: Path) -> None:
    path = tmp_path / "models.yaml"
    path.write_text(
        MODEL.format(name="a", port=80, extra="")
        + "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n---\n"
        + MODEL.format(name="b", port=0, extra='suspend: "true", ')
    )
    result = _run(path)
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        f'{path}#3: spec.suspend: must be a boolean (true or false), got string "true"',
        f"{path}#3: spec.container.ports[0]: must be >= 1, got integer 0",
    ]


def test_a_single_document_file_is_named_without_a_number(tmp_path: Path) -> None:
    path = tmp_path / "one.yaml"
    path.write_text(MODEL.format(name="a", port=70000, extra=""))
    result = _run(path)
    assert (
        result.stdout == f"{path}: spec.container.ports[0]: must be <= 65535, got integer 70000\n"
    )


def test_one_bad_file_among_good_ones_fails_the_run(tmp_path: Path) -> None:
    (tmp_path / "good.yaml").write_text(MODEL.format(name="a", port=80, extra=""))
    (tmp_path / "bad.yaml").write_text(MODEL.format(name="b", port='"80"', extra=""))
    result = _run(tmp_path)
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        f'{tmp_path / "bad.yaml"}: spec.container.ports[0]: must be an integer, got string "80"'
    ]


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("apiVersion: [unclosed\n  kind: : :\n", "not valid YAML"),
        ("a: &a [x, x, x, x, x, x, x, x, x]\nb: [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n", "anchors"),
        ("kind: MLModel\nkind: MLModel\n", 'duplicate key "kind"'),
        ("a: " + "[" * 5000 + "]" * 5000 + "\n", "nested deeper than"),
        ('a: "' + "x" * 2_000_000 + '"\n', "larger than"),
        ("\tkind: MLModel\n", "not valid YAML"),
    ],
    ids=["broken", "alias-bomb", "duplicate-key", "deeply-nested", "huge", "tab"],
)
def test_unreadable_yaml_is_a_clear_one_line_error(
    tmp_path: Path, content: str, fragment: str
) -> None:
    path = tmp_path / "hostile.yaml"
    path.write_text(content)
    result = _run(path)
    assert result.returncode == 1
    [line] = result.stdout.splitlines()
    assert line.startswith(f"{path}: (yaml): ")
    assert fragment in line
    _no_traceback(result)


def test_a_missing_path_is_an_error(tmp_path: Path) -> None:
    result = _run(tmp_path / "nope.yaml")
    assert result.returncode == 1
    assert "does not exist" in result.stderr
    _no_traceback(result)


def test_a_folder_without_mlmodels_is_not_a_success(tmp_path: Path) -> None:
    (tmp_path / "cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n")
    result = _run(tmp_path)
    assert result.returncode == 1
    assert "no MLModel manifests found" in result.stderr
