"""The ways the operator is installed, in one place: kustomize components and their combinations.

``manifests/components/`` holds ``kind: Component`` folders that compose on the base (the CRD
from ``crds/`` plus ``manifests/base``) in any combination; ``render(components)`` renders one
combination offline with ``kubectl kustomize`` (a kustomization written to a temporary
folder, as an admin's own would be). ``COMMON`` lists the combinations admins run: the ones
documented, rendered by every test run and — once the real control plane is in the test bed
— the ones to apply to it (``REQUIRES`` says what each component needs in the cluster first).

    from tests.support import installs
    docs = installs.render(("kubernetes-runner", "namespaced"))
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import kubernetes_validate
import yaml

from mlplatform.models.spec import KIND
from tests.support import cel_harness

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "manifests"
COMPONENTS_DIR = MANIFESTS / "components"

# Every component, in the order they are listed when composed (any order gives the same
# objects: components patch by name, never by list position).
COMPONENTS: tuple[str, ...] = (
    "cert-manager",
    "peering",
    "monitoring",
    "kubernetes-runner",
    "namespaced",
    "dev",
)

# The combinations admins run (docs/install.md shows them). The empty one is the base:
# ``kubectl apply -k manifests/``.
COMMON: tuple[tuple[str, ...], ...] = (
    (),
    ("cert-manager",),
    ("cert-manager", "peering", "monitoring"),
    ("kubernetes-runner",),
    ("cert-manager", "peering", "monitoring", "kubernetes-runner"),
    ("kubernetes-runner", "namespaced"),
    ("cert-manager", "peering", "kubernetes-runner", "namespaced"),
)

# What a component needs in the cluster before its objects apply (for a real control plane).
REQUIRES: dict[str, str] = {
    "cert-manager": "cert-manager (the cert-manager.io CRDs and its controller and cainjector)",
    "monitoring": "the Prometheus Operator's monitoring.coreos.com CRDs",
    "namespaced": "the watched namespace `models`",
}

# Kinds of other projects' APIs a component adds; kubernetes-validate has no schema for them.
FOREIGN_KINDS: dict[str, str] = {
    "Certificate": "cert-manager.io/v1",
    "Issuer": "cert-manager.io/v1",
    "ServiceMonitor": "monitoring.coreos.com/v1",
}


def every_combination() -> list[tuple[str, ...]]:
    """All 2^n subsets of ``COMPONENTS``, the empty one (the base) first."""
    return [
        combination
        for size in range(len(COMPONENTS) + 1)
        for combination in itertools.combinations(COMPONENTS, size)
    ]


def kubectl() -> str | None:
    """The ``kubectl`` that renders kustomizations (client only; no cluster is contacted)."""
    return shutil.which("kubectl")


def kustomization(components: tuple[str, ...], *, relative_to: Path) -> dict[str, Any]:
    """The kustomization an admin writes for ``components``, with paths from ``relative_to``."""
    unknown = set(components) - set(COMPONENTS)
    if unknown:
        raise ValueError(f"unknown components: {sorted(unknown)}")

    def path(target: Path) -> str:
        return os.path.relpath(target, relative_to)

    return {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [path(ROOT / "crds"), path(MANIFESTS / "base")],
        "components": [path(COMPONENTS_DIR / name) for name in components],
    }


def render_text(components: tuple[str, ...]) -> str:
    """``kubectl kustomize`` of the base with ``components``, as YAML text."""
    binary = kubectl()
    if binary is None:
        raise RuntimeError("kubectl is not installed: it renders the kustomizations offline")
    with tempfile.TemporaryDirectory(prefix="mlplatform-install-") as folder:
        where = Path(folder)
        (where / "kustomization.yaml").write_text(
            yaml.safe_dump(kustomization(components, relative_to=where), sort_keys=False)
        )
        result = subprocess.run(
            [binary, "kustomize", str(where)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    if result.returncode != 0:
        raise RuntimeError(f"kubectl kustomize {components}: {result.stderr.strip()}")
    return result.stdout


def render(components: tuple[str, ...]) -> list[dict[str, Any]]:
    """The objects of the base with ``components``."""
    return [doc for doc in yaml.safe_load_all(render_text(components)) if doc]


# Kubernetes releases each object is validated for: the newest and the oldest schemas
# kubernetes-validate ships (the supported range) ...
VALIDATED_VERSIONS = (kubernetes_validate.latest_version(), "1.25.0")
# ... but the CRD needs 1.28: its CEL rules name their field (``fieldPath``), which older API
# servers do not know.
CRD_VALIDATED_VERSIONS = (kubernetes_validate.latest_version(), "1.28.0")
_judged: dict[str, list[str]] = {}


def strict_failures(doc: dict[str, Any]) -> list[str]:
    """What is wrong with one rendered object, judged strictly (each distinct object once).

    Kubernetes kinds: ``kubernetes-validate`` in strict mode (unknown fields are errors) for
    ``VALIDATED_VERSIONS``. MLModels: the CRD's schema and CEL rules, offline. The kinds of
    ``FOREIGN_KINDS``: their API version and their metadata (no schema for them offline).
    """
    key = json.dumps(doc, sort_keys=True)
    if key not in _judged:
        where = f"{doc['kind']}/{doc['metadata']['name']}"
        failures: list[str] = []
        if doc["kind"] == KIND:
            failures.extend(f"{where}: {message}" for message in cel_harness.validate(doc))
        elif doc["kind"] in FOREIGN_KINDS:
            if doc["apiVersion"] != FOREIGN_KINDS[doc["kind"]]:
                failures.append(f"{where}: apiVersion {doc['apiVersion']}")
            meta = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": doc["metadata"]}
            failures.extend(_kubernetes_validate(meta, where))
        else:
            failures.extend(_kubernetes_validate(doc, where))
        _judged[key] = failures
    return _judged[key]


def _kubernetes_validate(doc: dict[str, Any], where: str) -> list[str]:
    failures = []
    crd = doc.get("kind") == "CustomResourceDefinition"
    for version in CRD_VALIDATED_VERSIONS if crd else VALIDATED_VERSIONS:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            failures.append(f"{where} ({version}): {error.message}")
    return failures
