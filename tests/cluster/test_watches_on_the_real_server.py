"""The operator's watches when the real API server or etcd goes away and comes back.

A crash of etcd makes every request fail for a while; a crash of kube-apiserver drops every
watch (kopf's on MLModels, the Kubernetes runner's on Deployments, Services, claims and
pods), and the new server refuses requests for a moment after it answers /readyz (its RBAC
authorizer has not yet read the roles: a real server's 403 that the operator must retry
through). After both: nothing lost (changes made after the restarts are applied), nothing
duplicated (one Deployment per model, one "Created" Event).

Not provoked here: a watch answered 410 Gone. The runner relists after every broken watch,
and the watch cache of a fresh server starts where etcd is; an expired resourceVersion would
need the cache's window (at least 75 s of events) to move past a paused client.
"""

from __future__ import annotations

from typing import Any

import yaml

from tests.cluster.conftest import ClusterTest
from tests.support.control_plane import condition, is_ready, mlmodel

RUNNER_ENV = {"RUNNERS_KUBERNETES_ENABLED": "true", "RUNNERS_DOCKER_ENABLED": "false"}


def apply(cluster: ClusterTest, name: str, **container: Any) -> None:
    spec = {
        "id": f"{name}:1",
        "runner": "kubernetes",
        "container": {"image": "registry.example.com/iris:1.0", "ports": [8080], **container},
    }
    obj = mlmodel(name, cluster.namespace, spec)
    cluster.plane.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(obj))


def test_a_crashed_api_server_loses_and_duplicates_nothing_when_it_comes_back(
    cluster: ClusterTest,
) -> None:
    operator = cluster.operator(RUNNER_ENV)
    ns = cluster.namespace
    apply(cluster, "before")
    cluster.plane.wait_for("mlmodel", ns, "before", is_ready, timeout=60)

    cluster.transient_refusals = True  # see the module docstring
    cluster.plane.restart("etcd")
    apply(cluster, "during")
    cluster.plane.restart("kube-apiserver")

    # A new model and a change of the old one, both made after the restart.
    apply(cluster, "after")
    apply(cluster, "before", env=[{"name": "AFTER_RESTART", "value": "1"}])
    for name in ("during", "after", "before"):
        cluster.plane.wait_for(
            "mlmodel", ns, name,
            lambda o: is_ready(o) and condition(o, "Updating").get("status") != "True",
            timeout=120,
        )  # fmt: skip
    deployment = cluster.plane.get("deployment", ns, "before")
    assert deployment is not None
    env = deployment["spec"]["template"]["spec"]["containers"][0].get("env", [])
    assert {"name": "AFTER_RESTART", "value": "1"} in env
    assert len(cluster.plane.items("deployments", ns)) == 3
    created = [e for e in cluster.plane.events(ns, "before") if e["reason"] == "Created"]
    assert len(created) == 1, created
    assert operator.running(), operator.output()[-3000:]
