"""The admission webhook answered over HTTPS, as the API server would call it.

kopf runs with ``mlplatform.kube.admission``'s handlers and its webhook server (our own
certificate) against the KMock harness; each test POSTs real AdmissionReview v1 requests.
"""

from __future__ import annotations

import copy
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from mlplatform.kube import admission, certificates
from tests.support.admission_client import AdmissionClient, patch_ops, webhook_operator
from tests.support.kube_cluster import KubeCluster, kube_cluster, mlmodel

SPEC: dict[str, Any] = {
    "id": "iris:1.0",
    "runner": "docker",
    "suspend": False,
    "debug": False,
    "container": {
        "image": "registry.example.com/iris:1.0",
        "imagePullPolicy": "IfNotPresent",
        "ports": [8080],
        "volumes": ["/storage", "/logs"],
    },
}


@pytest.fixture
async def cluster() -> AsyncIterator[KubeCluster]:
    async with kube_cluster() as cluster:
        yield cluster


@pytest.fixture
async def webhook(cluster: KubeCluster, tmp_path: Path) -> AsyncIterator[AdmissionClient]:
    async with webhook_operator(cluster, tmp_path / "certs") as client:
        yield client


def with_spec(**changes: Any) -> dict[str, Any]:
    spec = copy.deepcopy(SPEC)
    spec.update(changes)
    return spec


async def test_a_valid_object_is_allowed(webhook: AdmissionClient) -> None:
    response = await webhook.review(admission.VALIDATE_ID, mlmodel("iris", spec=SPEC))
    assert response["allowed"] is True
    assert "status" not in response


async def test_an_invalid_object_is_denied_naming_the_field_and_the_rule(
    webhook: AdmissionClient,
) -> None:
    spec = with_spec(container={**SPEC["container"], "volumes": ["/storage/logs", "/logs"]})
    response = await webhook.review(admission.VALIDATE_ID, mlmodel("iris", spec=spec))
    assert response["allowed"] is False
    assert response["status"]["code"] == 422
    assert response["status"]["message"] == (
        'spec.container.volumes: base name "logs" is used twice ("/storage/logs", "/logs"); '
        "volume base names must be unique"
    )


async def test_every_problem_of_an_object_is_in_the_denial(webhook: AdmissionClient) -> None:
    spec = with_spec(id="iris", suspend="yes")
    response = await webhook.review(admission.VALIDATE_ID, mlmodel("iris", spec=spec))
    assert response["allowed"] is False
    lines = response["status"]["message"].split("; ")
    assert any(line.startswith("spec.id: ") for line in lines), lines
    assert any(line.startswith("spec.suspend: must be a boolean") for line in lines), lines


async def test_the_mutating_webhook_adds_the_defaults_as_a_json_patch(
    webhook: AdmissionClient,
) -> None:
    minimal = {"id": "iris:1.0", "container": {"image": "iris:1.0", "ports": [8080]}}
    response = await webhook.review(admission.MUTATE_ID, mlmodel("iris", spec=minimal))
    assert response["allowed"] is True
    ops = patch_ops(response)
    assert sorted((op["op"], op["path"], op["value"]) for op in ops) == [
        ("add", "/spec/container/env", []),
        ("add", "/spec/container/imagePullPolicy", "IfNotPresent"),
        ("add", "/spec/container/terminationGracePeriodSeconds", 10),
        ("add", "/spec/container/volumes", []),
        ("add", "/spec/debug", False),
        ("add", "/spec/runner", "docker"),
        ("add", "/spec/suspend", False),
    ]


async def test_the_mutating_webhook_leaves_a_complete_spec_alone(webhook: AdmissionClient) -> None:
    complete = {
        **SPEC,
        "container": {**SPEC["container"], "env": [], "terminationGracePeriodSeconds": 10},
    }
    response = await webhook.review(admission.MUTATE_ID, mlmodel("iris", spec=complete))
    assert response["allowed"] is True
    assert patch_ops(response) == []


async def test_the_mutating_webhook_leaves_an_invalid_spec_to_the_validator(
    webhook: AdmissionClient,
) -> None:
    broken = {"id": "iris:1.0", "container": {"image": "iris:1.0", "ports": ["8080"]}}
    response = await webhook.review(admission.MUTATE_ID, mlmodel("iris", spec=broken))
    assert response["allowed"] is True
    assert patch_ops(response) == []


async def test_a_duplicate_id_in_another_namespace_is_denied_naming_the_holder(
    cluster: KubeCluster, webhook: AdmissionClient
) -> None:
    await cluster.create(mlmodel("iris", namespace="team-a", spec=SPEC))
    response = await webhook.wait_until_denied(mlmodel("iris-copy", namespace="team-b", spec=SPEC))
    assert response["status"]["code"] == 422
    assert response["status"]["message"] == (
        'spec.id: "iris:1.0" is already used by MLModel team-a/iris; ids of runner docker '
        "models must be unique across the cluster (they name the container and the storage "
        "folder)"
    )


async def test_an_update_of_the_holder_keeps_its_own_id(
    cluster: KubeCluster, webhook: AdmissionClient
) -> None:
    old = await cluster.create(mlmodel("iris", namespace="team-a", spec=SPEC))
    await webhook.wait_until_denied(mlmodel("other", namespace="team-a", spec=SPEC))
    new = copy.deepcopy(old)
    new["spec"]["suspend"] = True
    response = await webhook.review(admission.VALIDATE_ID, new, operation="UPDATE", old=old)
    assert response["allowed"] is True


async def test_an_object_being_deleted_still_holds_its_id(
    cluster: KubeCluster, webhook: AdmissionClient
) -> None:
    await cluster.create(mlmodel("iris", namespace="team-a", spec=SPEC, finalizers=["test/hold"]))
    await cluster.delete("team-a", "iris")
    response = await webhook.wait_for_verdict(
        mlmodel("iris", namespace="team-b", spec=SPEC),
        lambda r: "being deleted" in r.get("status", {}).get("message", ""),
    )
    assert response["allowed"] is False
    assert (
        "MLModel team-a/iris (being deleted; retry once it is gone)"
        in response["status"]["message"]
    )


async def test_an_id_is_free_again_once_its_holder_is_gone(
    cluster: KubeCluster, webhook: AdmissionClient
) -> None:
    await cluster.create(mlmodel("iris", namespace="team-a", spec=SPEC))
    candidate = mlmodel("iris", namespace="team-b", spec=SPEC)
    await webhook.wait_until_denied(candidate)
    await cluster.delete("team-a", "iris")
    await cluster.wait_gone("team-a", "iris")
    response = await webhook.wait_until_allowed(candidate)
    assert "status" not in response


async def test_two_holders_of_an_id_are_both_named(
    cluster: KubeCluster, webhook: AdmissionClient
) -> None:
    # Possible when both were admitted before the index saw the first (or without a webhook).
    await cluster.create(mlmodel("iris", namespace="team-b", spec=SPEC))
    await cluster.create(mlmodel("iris", namespace="team-a", spec=SPEC))
    response = await webhook.wait_for_verdict(
        mlmodel("iris", namespace="team-c", spec=SPEC),
        lambda r: all(
            ref in r.get("status", {}).get("message", "") for ref in ("team-a/iris", "team-b/iris")
        ),
    )
    assert "by MLModel team-a/iris, MLModel team-b/iris;" in response["status"]["message"]


def test_the_certificate_names_its_ips_and_dns_names_and_chains_to_its_ca(tmp_path: Path) -> None:
    files = certificates.generate_certificate(tmp_path, names=["127.0.0.1", "mlplatform.svc"])
    cert = x509.load_pem_x509_certificate(files.certfile.read_bytes())
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert sans.get_values_for_type(x509.DNSName) == ["mlplatform.svc"]
    assert files.pkeyfile.stat().st_mode & 0o077 == 0
    context = ssl.create_default_context(cafile=str(files.cafile))
    context.load_cert_chain(files.certfile, files.pkeyfile)  # the key matches the certificate


def test_a_mounted_certificate_is_used_as_it_is(tmp_path: Path) -> None:
    first = certificates.generate_certificate(tmp_path, names=["a.example"])
    before = first.certfile.read_bytes()
    again = certificates.ensure_certificate(tmp_path, names=["b.example"])
    assert again.certfile.read_bytes() == before


async def test_an_id_that_maps_to_a_held_container_name_is_denied_naming_the_holder(
    cluster: KubeCluster, webhook: AdmissionClient
) -> None:
    # "a-b:1" and "a:b-1" are different ids but both name the container "a-b-1".
    await cluster.create(mlmodel("first", namespace="team-a", spec=with_spec(id="a-b:1")))
    response = await webhook.wait_until_denied(
        mlmodel("second", namespace="team-b", spec=with_spec(id="a:b-1"))
    )
    assert response["status"]["code"] == 422
    assert response["status"]["message"] == (
        'spec.id: "a:b-1" maps to container name "a-b-1", already used by MLModel '
        "team-a/first (a-b:1); ids of runner docker models must be unique across the "
        "cluster (they name the container and the storage folder)"
    )
    allowed = await webhook.wait_until_allowed(
        mlmodel("third", namespace="team-b", spec=with_spec(id="a:b-2"))
    )
    assert allowed["allowed"] is True
