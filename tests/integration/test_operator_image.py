"""The operator image, built here offline by scripts/build-image.sh, on the real Docker engine.

The image is built once per content (the script labels it with a hash of the package's
sources, its constraints, the script and the base, and skips an image whose label matches);
the first build on a machine takes about 25 s once the Debian base exists (shared with the
demo image), a check of an up-to-date image under a second. Containers are named
``mlplatform-test-image-*``, labelled ``dev.mlplatform.test=operator-image`` and removed.
"""

from __future__ import annotations

import json
import os
import subprocess
import tomllib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlplatform.kube import crd
from tests.support import corpus

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "build-image.sh"
IMAGE = "mlplatform-test/operator:1"
LABEL = "dev.mlplatform.test=operator-image"

pytestmark = pytest.mark.docker


def _build() -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPT)],
        env=os.environ | {"OPERATOR_IMAGE": IMAGE},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


@pytest.fixture(scope="module")
def image() -> Iterator[str]:
    built = _build()
    assert built.returncode == 0, built.stdout + built.stderr
    try:
        yield IMAGE
    finally:
        leftovers = subprocess.run(
            ["docker", "ps", "-aq", "--filter", f"label={LABEL}"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        if leftovers:
            subprocess.run(["docker", "rm", "-f", *leftovers], capture_output=True, check=False)


def _run(
    image: str, *args: str, stdin: str | None = None, options: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    """``docker run -i --rm`` of the image with ``args``, named and labelled for clean-up."""
    name = f"mlplatform-test-image-{uuid.uuid4().hex[:8]}"
    return subprocess.run(
        [
            *("docker", "run", "-i", "--rm", "--name", name, "--label", LABEL),
            *("--network", "none", *options, image, *args),
        ],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _inspect(image: str) -> dict[str, Any]:
    out = subprocess.run(
        ["docker", "image", "inspect", image], capture_output=True, text=True, check=True
    ).stdout
    [found] = json.loads(out)
    return dict(found)


def test_validate_reads_manifests_from_stdin_as_ci_runs_it(image: str) -> None:
    # docker run -i IMAGE validate - < manifests.yaml
    valid = (ROOT / "manifests" / "examples" / "with-storage.yaml").read_text()
    result = _run(image, "validate", "-", stdin=valid)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == "0 of 1 MLModel manifests invalid; 0 other documents skipped\n"


def test_validate_refuses_an_invalid_manifest_with_its_message_and_exit_1(image: str) -> None:
    case = corpus.invalid_cases()[0]
    result = _run(image, "validate", "-", stdin=case.path.read_text())
    assert result.returncode == 1, result.stdout + result.stderr
    assert case.expect in result.stdout
    assert result.stdout.startswith("<stdin>:")
    assert "Traceback" not in result.stdout + result.stderr


def test_the_image_runs_as_non_root_and_starts_the_operator_by_default(image: str) -> None:
    config = _inspect(image)["Config"]
    assert config["User"] == "65532:65532"
    assert config["Entrypoint"] == ["/usr/local/bin/mlplatform"]
    assert config["Cmd"] == ["operator"]
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert config["Labels"]["org.opencontainers.image.version"] == version
    result = _run(image, "version")
    assert result.stdout == f"mlplatform {version}\n", result.stderr


def test_it_runs_as_the_cluster_runs_it_read_only_without_capabilities(image: str) -> None:
    # The Deployments' securityContext: a non-root user, no capability, read-only root.
    options = ("--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges")
    result = _run(image, "crd", options=(*options, "--user", "65532:65532"))
    assert result.returncode == 0, result.stderr
    assert yaml.safe_load(result.stdout) == crd.build()
    # Compiled at build time: nothing to write (a read-only root would refuse it anyway).
    assert "PermissionError" not in result.stderr and "Read-only" not in result.stderr


def test_the_operator_command_in_the_image_needs_a_cluster_and_says_so(image: str) -> None:
    result = _run(image, options=("--read-only", "--cap-drop", "ALL"))
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1  # one line, naming what is missing


def test_an_unchanged_package_is_not_built_again(image: str) -> None:
    before = _inspect(image)["Id"]
    again = _build()
    assert again.returncode == 0, again.stderr
    assert "is up to date" in again.stdout
    assert _inspect(image)["Id"] == before
