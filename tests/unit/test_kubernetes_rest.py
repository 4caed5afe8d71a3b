"""The paths and rules of the plain-JSON requests (``runners/kubernetes/rest.py``)."""

from __future__ import annotations

from mlplatform.kube.api import MLMODEL_STATUS
from mlplatform.runners.kubernetes import api
from mlplatform.runners.kubernetes.rest import Resource


def test_a_core_kind_is_under_api_and_a_grouped_one_under_apis() -> None:
    assert api.RESOURCES[api.SERVICE].path("ns", "m") == "/api/v1/namespaces/ns/services/m"
    deployment = api.RESOURCES[api.DEPLOYMENT]
    assert deployment.path("ns", "m") == "/apis/apps/v1/namespaces/ns/deployments/m"
    assert deployment.path("ns") == "/apis/apps/v1/namespaces/ns/deployments"


def test_without_a_namespace_the_path_spans_every_namespace() -> None:
    assert api.RESOURCES[api.POD].path(None) == "/api/v1/pods"


def test_a_subresource_follows_the_name_and_is_part_of_the_rule() -> None:
    assert MLMODEL_STATUS.path("ns", "m") == (
        "/apis/mlplatform.dev/v1alpha1/namespaces/ns/mlmodels/m/status"
    )
    assert MLMODEL_STATUS.rule("patch") == ("mlplatform.dev", "mlmodels/status", "patch")


def test_names_are_quoted_so_they_stay_one_path_segment() -> None:
    resource = Resource("", "v1", "services")
    assert resource.path("a b", "x/y") == "/api/v1/namespaces/a%20b/services/x%2Fy"
