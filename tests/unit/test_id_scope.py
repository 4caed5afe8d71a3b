"""Where a ``spec.id`` must be unique follows the runner: the cluster for docker (one engine,
one space of container names), the namespace for kubernetes. ``mlplatform validate`` applies
the rule the webhook applies (the real-server test of the webhook is in tests/cluster)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from mlplatform.models.spec import id_scope

MLPLATFORM = Path(sys.executable).parent / "mlplatform"


def model(name: str, namespace: str, model_id: str, runner: str) -> str:
    return (
        "apiVersion: mlplatform.dev/v1alpha1\nkind: MLModel\n"
        f"metadata: {{name: {name}, namespace: {namespace}}}\n"
        f'spec: {{id: "{model_id}", runner: {runner}, '
        "container: {image: registry.example.com/iris:1, ports: [8080]}}\n"
    )


def validate(*documents: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(MLPLATFORM), "validate", "-"],
        input="---\n".join(documents),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_scope_of_an_id_is_the_cluster_for_docker_and_the_namespace_for_kubernetes() -> None:
    assert id_scope("iris:1", "docker", "a") == id_scope("iris:1", "docker", "b")
    assert id_scope("a-b:1", "docker", "a") == id_scope("a:b-1", "docker", "b")  # one container
    assert id_scope("iris:1", "kubernetes", "a") != id_scope("iris:1", "kubernetes", "b")
    assert id_scope("iris:1", "kubernetes", "a") != id_scope("iris:1", "docker", "a")


def test_two_teams_may_run_one_id_as_deployments_each_in_its_namespace() -> None:
    done = validate(
        model("iris", "team-a", "iris:1", "kubernetes"),
        model("iris", "team-b", "iris:1", "kubernetes"),
    )
    assert done.returncode == 0, done.stdout


def test_one_id_twice_in_a_namespace_or_twice_on_docker_is_refused_naming_the_scope() -> None:
    same_namespace = validate(
        model("first", "team-a", "iris:1", "kubernetes"),
        model("second", "team-a", "iris:1", "kubernetes"),
    )
    assert same_namespace.returncode == 1
    assert 'spec.id: "iris:1" is already used by MLModel team-a/first' in same_namespace.stdout
    on_docker = validate(
        model("iris", "team-a", "iris:1", "docker"), model("iris", "team-b", "iris:1", "docker")
    )
    assert on_docker.returncode == 1
    assert 'spec.id: "iris:1" is already used by MLModel team-a/iris' in on_docker.stdout
