"""The install paths, sent to the real API server: kustomize with components, the bundle.

``kubectl apply --server-side --dry-run=server`` of each common combination (those needing
cert-manager's or the Prometheus Operator's CRDs left out: neither runs here): the real
server's schemas, defaulting and admission judge every object, and nothing is changed (the
session's own install of the CRD and RBAC stays as it is). The operator itself is not started
from these objects: it runs outside the cluster in the other tests (its image needs a
registry, and kwok would only pretend to run it).
"""

from __future__ import annotations

import pytest

from tests.support import installs
from tests.support.control_plane import ROOT, ControlPlane

NEEDS_FOREIGN_CRDS = {"cert-manager", "monitoring"}
APPLIED = [c for c in installs.COMMON if not NEEDS_FOREIGN_CRDS & set(c)]


def server_dry_run(plane: ControlPlane, text: str) -> str:
    done = plane.kubectl(
        "apply", "--server-side", "--force-conflicts", "--dry-run=server", "-f", "-",
        stdin=text, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("components", APPLIED, ids=lambda c: "+".join(c) or "base")
def test_each_common_combination_of_components_is_accepted_by_the_real_server(
    control_plane: ControlPlane, components: tuple[str, ...]
) -> None:
    with control_plane.namespace("models-check") as watched:
        text = installs.render_text(components)
        if "namespaced" in components:  # the Role goes into the watched namespace
            text = text.replace("namespace: models\n", f"namespace: {watched}\n")
        applied = server_dry_run(control_plane, text)
    assert "deployment.apps/mlplatform-operator serverside-applied (server dry run)" in applied
    assert "customresourcedefinition.apiextensions.k8s.io/mlmodels.mlplatform.dev" in applied


def test_the_bundle_is_accepted_by_the_real_server(control_plane: ControlPlane) -> None:
    applied = server_dry_run(control_plane, (ROOT / "dist" / "install.yaml").read_text())
    assert "validatingwebhookconfiguration.admissionregistration.k8s.io" in applied
    assert "clusterrole.rbac.authorization.k8s.io/mlplatform-operator" in applied
