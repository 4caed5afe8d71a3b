"""`mlplatform validate` as a pipeline runs it: exit codes, one line per problem."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mlplatform.models.resource import is_mlmodel
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


def _run(
    *args: str | Path, stdin: str | None = None, cwd: Path = ROOT
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(MLPLATFORM), "validate", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        cwd=cwd,
        input=stdin,
        check=False,
    )


def _problems(result: subprocess.CompletedProcess[str]) -> list[str]:
    """The problem lines: stdout without its last line, the summary."""
    lines = result.stdout.splitlines()
    assert lines, result.stderr
    return lines[:-1]


def _summary(result: subprocess.CompletedProcess[str]) -> str:
    return result.stdout.splitlines()[-1]


def _no_traceback(result: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in result.stdout + result.stderr


def test_the_examples_are_valid_and_exit_0() -> None:
    result = _run("manifests/examples")
    assert result.returncode == 0, result.stdout + result.stderr
    count = len(corpus.valid_objects())
    # The other kinds of the GitOps example (kustomizations, Namespaces, Argo CD and Flux
    # objects) are counted and skipped.
    others = sum(
        1
        for path in corpus.EXAMPLES_DIR.rglob("*.yaml")
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8"))
        if doc and not is_mlmodel(doc)
    )
    assert others > 0
    assert result.stdout == (
        f"0 of {count} MLModel manifests invalid; {others} other documents skipped\n"
    )


def test_each_corpus_file_is_refused_with_its_message_on_a_file_field_message_line() -> None:
    result = _run(corpus.INVALID_DIR)
    assert result.returncode == 1
    lines = _problems(result)
    for case in corpus.invalid_cases():
        own = [line for line in lines if line.split(": ", 1)[0].split(":")[0] == str(case.path)]
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
    assert _problems(result) == [
        f'{path}#3:13: spec.suspend: must be a boolean (true or false), got string "true"',
        f"{path}#3:13: spec.container.ports[0]: must be >= 1, got integer 0",
    ]
    assert _summary(result) == "1 of 2 MLModel manifests invalid; 1 other documents skipped"


def test_a_single_document_file_is_named_without_a_number(tmp_path: Path) -> None:
    path = tmp_path / "one.yaml"
    path.write_text(MODEL.format(name="a", port=70000, extra=""))
    result = _run(path)
    assert _problems(result) == [
        f"{path}:4: spec.container.ports[0]: must be <= 65535, got integer 70000"
    ]


def test_one_bad_file_among_good_ones_fails_the_run(tmp_path: Path) -> None:
    (tmp_path / "good.yaml").write_text(MODEL.format(name="a", port=80, extra=""))
    (tmp_path / "bad.yaml").write_text(MODEL.format(name="b", port='"80"', extra=""))
    result = _run(tmp_path)
    assert result.returncode == 1
    assert _problems(result) == [
        f'{tmp_path / "bad.yaml"}:4: spec.container.ports[0]: must be an integer, got string "80"'
    ]
    assert _summary(result) == "1 of 2 MLModel manifests invalid; 0 other documents skipped"


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
    [line] = _problems(result)
    # A syntax error says where (FILE:LINE:COL); the other refusals name their line inside.
    assert re.match(rf"{re.escape(str(path))}(:\d+:\d+)?: \(yaml\): ", line), line
    assert fragment in line
    _no_traceback(result)


@pytest.mark.parametrize(
    ("content", "where", "problem"),
    [
        (
            "apiVersion: v1\nmetadata: {name: a\nspec:\n  id: x\n",
            "3:5",
            "expected ',' or '}', but got ':' (while parsing a flow mapping started at "
            "line 2, column 11)",
        ),
        ("kind: MLModel\n\tspec: {}\n", "2:1", "found character '\\t' that cannot start"),
        ("apiVersion: [unclosed\n  kind: : :\n", "2:7", "expected ',' or ']', but got ':'"),
    ],
    ids=["unclosed-mapping", "tab", "unclosed-list"],
)
def test_a_yaml_syntax_error_is_reported_as_file_line_column(
    tmp_path: Path, content: str, where: str, problem: str
) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(content)
    result = _run(path)
    assert result.returncode == 1
    [line] = _problems(result)
    assert line.startswith(f"{path}:{where}: (yaml): not valid YAML: {problem}"), line
    _no_traceback(result)


def test_a_missing_path_is_an_error(tmp_path: Path) -> None:
    result = _run(tmp_path / "nope.yaml")
    assert result.returncode == 1
    assert "does not exist" in result.stderr
    _no_traceback(result)


def test_a_folder_without_mlmodels_passes_with_a_note_unless_models_are_required(
    tmp_path: Path,
) -> None:
    (tmp_path / "cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n")
    result = _run(tmp_path)
    assert result.returncode == 0
    assert "note: no MLModel manifests found" in result.stderr
    assert _summary(result) == "0 of 0 MLModel manifests invalid; 1 other documents skipped"
    required = _run("--require-models", tmp_path)
    assert required.returncode == 1
    assert "no MLModel manifests found" in required.stderr


def _fixture_repository(root: Path) -> dict[str, Path]:
    """A GitOps repository as users have them: models among foreign files and hidden folders."""
    files = {
        "good": root / "deploy" / "models.yaml",
        "list": root / "rendered" / "list.yaml",
        "dup": root / "deploy" / "z-again.yaml",
    }
    for folder in (".git/objects", ".github/workflows", ".venv/lib", "deploy", "rendered", "app"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    # Foreign files that main used to judge as MLModels (or failed to read).
    (root / "package.json").write_text('{"name": "web", "version": "1.0.0"}\n')
    (root / "docker-compose.yml").write_text(
        "x-common: &common {restart: always}\nservices:\n  web: {<<: *common, image: nginx}\n"
    )
    (root / "app" / "results.json").write_text('[{"run": 1}, {"run": 2}]\n')
    (root / "app" / "chart.yaml").write_text("name: {{ .Values.name }}\n")
    (root / ".github" / "workflows" / "ci.yml").write_text("on: [push]\njobs: {}\n")
    (root / ".venv" / "lib" / "x.json").write_text("{}\n")
    # An MLModel under a hidden folder: skipped unless named.
    (root / ".git" / "objects" / "model.yaml").write_text(
        MODEL.format(name="hidden", port=0, extra="")
    )
    (root / ".hidden.yaml").write_text(MODEL.format(name="dotfile", port=0, extra=""))
    files["good"].write_text(
        MODEL.format(name="a", port=80, extra="")
        + "---\napiVersion: v1\nkind: Service\nmetadata: {name: a}\n"
    )
    files["list"].write_text(
        "apiVersion: v1\nkind: List\nitems:\n"
        "- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: c}\n"
        "- apiVersion: mlplatform.dev/v1alpha1\n  kind: MLModel\n  metadata: {name: b}\n"
        '  spec: {id: "b:1", container: {image: b, ports: [70000]}}\n'
        "---\napiVersion: mlplatform.dev/v1alpha1\nkind: MLModelList\nitems:\n"
        "- apiVersion: mlplatform.dev/v1alpha1\n  kind: MLModel\n  metadata: {name: c}\n"
        '  spec: {id: "c:1", container: {image: c, ports: [80]}}\n'
    )
    # The same namespace/name as deploy/models.yaml, and an id whose container name is a's.
    files["dup"].write_text(
        MODEL.format(name="a", port=81, extra="").replace('"a:1"', '"z:1"')
        + "---\n"
        + MODEL.format(name="d", port=80, extra="").replace('"d:1"', '"a:1"')
    )
    return files


def test_a_gitops_repository_reports_only_its_invalid_mlmodels(tmp_path: Path) -> None:
    files = _fixture_repository(tmp_path)
    result = _run(".", cwd=tmp_path)
    _no_traceback(result)
    assert result.returncode == 1, result.stderr
    problems = _problems(result)
    assert problems == [
        "deploy/z-again.yaml#1:3: metadata.name: MLModel default/a is already defined in "
        "deploy/models.yaml#1",
        'deploy/z-again.yaml#2:9: spec.id: "a:1" is already used by MLModel default/a in '
        "deploy/models.yaml#1",
        "rendered/list.yaml#1.items[1]:10: spec.container.ports[0]: must be <= 65535, "
        "got integer 70000",
    ], (problems, files)
    # 5 MLModels (a, a again, d, b, c); the foreign documents: Service, ConfigMap, the JSON
    # files, compose, the chart template.
    assert _summary(result) == "3 of 5 MLModel manifests invalid; 6 other documents skipped"


def test_hidden_files_are_judged_when_named(tmp_path: Path) -> None:
    _fixture_repository(tmp_path)
    result = _run(".hidden.yaml", cwd=tmp_path)
    assert result.returncode == 1
    assert _problems(result) == [
        ".hidden.yaml:4: spec.container.ports[0]: must be >= 1, got integer 0"
    ]


def test_stdin_is_read_for_a_dash() -> None:
    text = (
        MODEL.format(name="a", port=80, extra="")
        + "---\n"
        + MODEL.format(name="b", port=0, extra="")
    )
    result = _run("-", stdin=text)
    assert result.returncode == 1
    assert _problems(result) == [
        "<stdin>#2:9: spec.container.ports[0]: must be >= 1, got integer 0"
    ]
    assert _summary(result) == "1 of 2 MLModel manifests invalid; 0 other documents skipped"
    valid = _run("-", stdin=MODEL.format(name="a", port=80, extra=""))
    assert valid.returncode == 0


def test_ids_that_map_to_one_container_name_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(
        MODEL.format(name="x", port=80, extra="").replace('"x:1"', '"a-b:1"')
        + "---\n"
        + MODEL.format(name="y", port=80, extra="").replace('"y:1"', '"a:b-1"')
    )
    result = _run(path)
    assert result.returncode == 1
    assert _problems(result) == [
        f'{path}#2:9: spec.id: "a:b-1" maps to container name "a-b-1", already used by '
        f"MLModel default/x (a-b:1) in {path}#1"
    ]


def test_one_line_per_rule_in_plain_words(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(
        "apiVersion: mlplatform.dev/v1alpha1\nkind: MLModel\nmetadata: {name: a}\nspec:\n"
        '  id: "Iris:1"\n  container:\n    image: a\n    ports: [80]\n'
        "    resources: {cpu: 0.5}\n"
    )
    result = _run(path)
    problems = _problems(result)
    assert problems == [
        f'{path}:5: spec.id: "Iris:1" must be lower case (upper case is not allowed); '
        'an id is "name:version" in lower-case letters, digits, "-" and "."',
        f"{path}:9: spec.container.resources.cpu: must be a string or an integer, "
        'got number 0.5 (quote it: "0.5")',
    ]
    assert not any("(S" in line for line in problems)


def test_validate_at_the_repository_root_reports_only_the_corpus() -> None:
    result = _run(".")
    _no_traceback(result)
    assert result.returncode == 1
    files = {line.split(": ", 1)[0].split("#")[0].split(":")[0] for line in _problems(result)}
    assert files, result.stdout
    assert all(f.startswith(("tests/corpus/invalid/", "tests/corpus/hostile/")) for f in files), (
        sorted(files)
    )
    invalid = {f"tests/corpus/invalid/{case.path.name}" for case in corpus.invalid_cases()}
    assert invalid <= files
    assert "MLModel manifests invalid;" in _summary(result)


def test_a_helm_charts_templates_are_not_manifests_unless_named(tmp_path: Path) -> None:
    chart = tmp_path / "chart"
    (chart / "templates").mkdir(parents=True)
    (chart / "crds").mkdir()
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: c\nversion: 0.1.0\n")
    template = chart / "templates" / "model.yaml"
    template.write_text(
        "{{- if .Values.on }}\napiVersion: mlplatform.dev/v1alpha1\nkind: MLModel\n{{- end }}\n"
    )
    (chart / "crds" / "crd.yaml").write_text(
        "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\n"
        "metadata: {name: a.b}\n"
    )
    # A folder named templates outside a chart is read as any other.
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "m.yaml").write_text(
        "apiVersion: mlplatform.dev/v1alpha1\nkind: MLModel\nmetadata: {name: a}\n"
        'spec: {id: "a:1", container: {image: a, ports: [80]}}\n'
    )
    result = _run(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == "0 of 1 MLModel manifests invalid; 2 other documents skipped\n"
    named = _run(template)
    assert named.returncode == 1
    assert str(template) in named.stdout
