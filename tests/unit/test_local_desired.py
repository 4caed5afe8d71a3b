"""Local mode's desired state: manifests → models with stable owners and generations."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import yaml

from mlplatform.local import desired, table

ROOT = Path(__file__).resolve().parents[2]


def manifest(name: str, model_id: str, namespace: str | None = None, **container: object) -> str:
    metadata: dict[str, object] = {"name": name}
    if namespace:
        metadata["namespace"] = namespace
    return yaml.safe_dump(
        {
            "apiVersion": "mlplatform.dev/v1alpha1",
            "kind": "MLModel",
            "metadata": metadata,
            "spec": {"id": model_id, "container": {"image": "x:1", "ports": [8080], **container}},
        }
    )


def test_a_model_without_namespace_is_in_default_with_a_uid_derived_from_its_key(
    tmp_path: Path,
) -> None:
    (tmp_path / "a.yaml").write_text(manifest("a", "a:1"))

    first = desired.load([tmp_path]).models["default/a"]
    again = desired.load([tmp_path]).models["default/a"]

    assert first.workload.owner.uid == again.workload.owner.uid
    assert first.workload.owner.uid.startswith("local-")
    assert first.workload.owner.uid != desired.owner_uid("other", "a")


def test_the_generation_changes_with_the_spec_and_only_with_it(tmp_path: Path) -> None:
    path = tmp_path / "a.yaml"
    path.write_text(manifest("a", "a:1"))
    before = desired.load([path]).models["default/a"].generation
    path.write_text("# a comment\n" + manifest("a", "a:1"))
    same = desired.load([path]).models["default/a"].generation
    path.write_text(manifest("a", "a:1", env=[{"name": "X", "value": "1"}]))
    changed = desired.load([path]).models["default/a"].generation

    assert before == same != changed


def test_a_second_model_with_the_same_id_is_reported_and_the_first_file_wins(
    tmp_path: Path,
) -> None:
    (tmp_path / "1.yaml").write_text(manifest("first", "iris:1"))
    (tmp_path / "2.yaml").write_text(manifest("second", "iris:1"))

    state = desired.load([tmp_path])

    assert list(state.models) == ["default/first"]
    assert state.problems == [
        f'{tmp_path / "2.yaml"}: spec.id: "iris:1" is already used by MLModel default/first '
        f"in {tmp_path / '1.yaml'}"
    ]


def test_invalid_documents_are_reported_and_other_kinds_noted(tmp_path: Path) -> None:
    path = tmp_path / "mixed.yaml"
    path.write_text(
        manifest("ok", "ok:1")
        + "---\n"
        + manifest("bad", "bad")
        + "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n"
    )

    state = desired.load([path])

    assert list(state.models) == ["default/ok"]
    assert len(state.problems) == 1 and state.problems[0].startswith(f"{path}#2:21: spec.id: ")
    assert state.notes == [f"{path}#3: ignored (kind ConfigMap)"]


def test_a_file_that_turns_invalid_keeps_its_last_valid_model_but_a_deleted_one_does_not(
    tmp_path: Path,
) -> None:
    broken, deleted = tmp_path / "broken.yaml", tmp_path / "deleted.yaml"
    broken.write_text(manifest("broken", "broken:1"))
    deleted.write_text(manifest("deleted", "deleted:1"))
    old = desired.load([tmp_path]).models
    broken.write_text("spec: [unclosed\n")
    deleted.unlink()

    state = desired.load([tmp_path])
    kept = desired.keep_last_valid(state, old)

    assert kept == ["default/broken"]
    assert list(state.models) == ["default/broken"]


def test_the_table_has_the_printer_columns_and_its_fingerprint_ignores_age(
    tmp_path: Path,
) -> None:
    (tmp_path / "a.yaml").write_text(manifest("a", "a:1", namespace="models"))
    model = desired.load([tmp_path]).models["models/a"]
    young = [table.Row(model, None, since=100.0)]
    old = [table.Row(model, None, since=0.0)]

    text = table.render(young, now=130.0)

    header, row = text.splitlines()
    assert header.split() == list(table.COLUMNS)
    assert row.split() == ["models", "a", "a:1", "docker", "Pending", "30s"]
    assert table.fingerprint(young) == table.fingerprint(old)
    assert [table.age(s) for s in (5, 300, 7200, 172800)] == ["5s", "5m", "2h", "2d"]


def _demo_model() -> ModuleType:
    spec = importlib.util.spec_from_file_location("iris_model", ROOT / "demo/iris/model.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_demo_tree_fitted_on_iris_classifies_most_rows_right() -> None:
    model = _demo_model()
    rows, labels = model.load_csv(ROOT / "demo/iris/iris.csv")

    tree = model.fit(rows, labels)

    assert len(rows) == 150 and sorted(set(labels)) == ["setosa", "versicolor", "virginica"]
    assert model.accuracy(tree, rows, labels) >= 0.95
    assert model.predict(tree, [5.1, 3.5, 1.4, 0.2])[0] == "setosa"
    assert model.predict(tree, [6.7, 3.0, 5.2, 2.3])[0] == "virginica"
