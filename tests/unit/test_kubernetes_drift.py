"""Drift of a live object from the plan: what counts, what does not, and the restoring patch."""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch

from mlplatform.runners.kubernetes import drift


def _deployment() -> dict[str, Any]:
    return {
        "metadata": {
            "name": "iris",
            "labels": {"mlplatform.dev/managed-by": "mlplatform", "app": "iris"},
            "annotations": {"mlplatform.dev/spec-hash": "abc"},
            "ownerReferences": [{"kind": "MLModel", "name": "iris", "uid": "u1"}],
        },
        "spec": {
            "replicas": 1,
            "template": {
                "spec": {
                    "hostNetwork": False,
                    "volumes": [],
                    "containers": [
                        {
                            "name": "model",
                            "image": "iris:1",
                            "resources": {"limits": {"cpu": "0.5", "memory": "1Gi"}},
                        }
                    ],
                }
            },
        },
    }


def test_server_defaults_zero_values_and_quantity_forms_are_not_drift() -> None:
    desired = _deployment()
    live = copy.deepcopy(desired)
    template = live["spec"]["template"]["spec"]
    del template["hostNetwork"]  # false is dropped when stored
    del template["volumes"]  # so is an empty list
    template["dnsPolicy"] = "ClusterFirst"  # a server default
    template["containers"][0]["terminationMessagePath"] = "/dev/termination-log"
    template["containers"][0]["resources"]["limits"] = {"cpu": "500m", "memory": "1024Mi"}
    live["metadata"]["labels"]["team"] = "nlp"  # someone else's label
    assert drift.object_differences("Deployment", desired, live) == []


def test_hand_edits_of_owned_fields_are_drift_and_the_patch_restores_them() -> None:
    desired = _deployment()
    live = copy.deepcopy(desired)
    live["spec"]["replicas"] = 3
    live["spec"]["template"]["spec"]["containers"][0]["image"] = "evil:1"
    del live["metadata"]["labels"]["mlplatform.dev/managed-by"]
    live["metadata"]["ownerReferences"] = []
    found = drift.object_differences("Deployment", desired, live)
    assert set(found) == {
        "/spec/replicas",
        "/spec/template/spec/containers/0/image",
        "/metadata/labels/mlplatform.dev~1managed-by",
        "/metadata/ownerReferences",
    }
    restored = jsonpatch.apply_patch(live, drift.restore_ops("Deployment", desired, live))
    assert drift.object_differences("Deployment", desired, restored) == []
    assert restored["metadata"]["labels"]["mlplatform.dev/managed-by"] == "mlplatform"


def test_an_extra_container_is_drift_an_extra_label_is_not() -> None:
    desired = _deployment()
    live = copy.deepcopy(desired)
    live["spec"]["template"]["spec"]["containers"].append({"name": "miner", "image": "x"})
    assert drift.object_differences("Deployment", desired, live) == [
        "/spec/template/spec/containers"
    ]


def test_a_claims_spec_is_not_owned() -> None:
    desired = {"metadata": {"labels": {"a": "b"}}, "spec": {"resources": {"requests": {}}}}
    live = {"metadata": {"labels": {"a": "b"}}, "spec": {"volumeName": "pv-1"}}
    assert drift.object_differences("PersistentVolumeClaim", desired, live) == []
