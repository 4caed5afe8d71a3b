"""The Kubernetes runner's objects: what the plan makes of a spec; Kubernetes accepts them."""

from __future__ import annotations

import copy
from typing import Any

import kubernetes_validate
import pytest
from kubernetes_validate import utils as kv_utils

from mlplatform import errors
from mlplatform.config import Settings
from mlplatform.models.resource import parse_object
from mlplatform.models.spec import MLModelSpec
from mlplatform.runners import base
from mlplatform.runners.kubernetes import plan
from tests.support import corpus

OWNER = base.Owner(namespace="models", name="iris", uid="0f5c3c9e-uid")
SETTINGS = Settings.load(
    {"RUNNERS_KUBERNETES_DATA_CLAIM": "datasets", "RUNNERS_KUBERNETES_MODELS_CLAIM": "weights"}
)


def _versions() -> list[str]:
    return sorted(kv_utils.all_versions(), key=lambda v: tuple(int(p) for p in v.split(".")))


# The supported range the README states: the oldest and the newest schema the package ships.
OLDEST, NEWEST = _versions()[0], _versions()[-1]


def _spec(**changes: Any) -> MLModelSpec:
    container = {"image": "registry.example.com/iris:1.0", "ports": [8080]}
    container.update(changes.pop("container", {}))
    return MLModelSpec.model_validate(
        {"id": "iris:1.0", "runner": "kubernetes", "container": container, **changes}
    )


def _plan(spec: MLModelSpec, settings: Settings = SETTINGS) -> plan.KubernetesPlan:
    return plan.plan(base.Workload(owner=OWNER, spec=spec), settings)


def _container(made: plan.KubernetesPlan) -> dict[str, Any]:
    container: dict[str, Any] = made.deployment["spec"]["template"]["spec"]["containers"][0]
    return container


def test_the_deployment_runs_one_pod_and_rolls_out_without_dropping_the_serving_one() -> None:
    made = _plan(_spec())
    spec = made.deployment["spec"]
    assert made.deployment["metadata"]["name"] == "iris"
    assert made.deployment["metadata"]["namespace"] == "models"
    assert spec["replicas"] == 1
    assert spec["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
    }
    assert spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()


def test_suspend_scales_to_zero_and_changes_nothing_else() -> None:
    running, suspended = _plan(_spec()), _plan(_spec(suspend=True))
    assert suspended.deployment["spec"]["replicas"] == 0
    assert suspended.spec_hash == running.spec_hash
    assert suspended.deployment["spec"]["template"] == running.deployment["spec"]["template"]


def test_the_container_carries_the_spec() -> None:
    made = _plan(
        _spec(
            container={
                "ports": [8080, 9090],
                "imagePullPolicy": "Always",
                "env": [{"name": "LOG_LEVEL", "value": "debug"}],
                "command": ["/bin/serve"],
                "args": ["--port", "8080"],
                "resources": {"cpu": "0.5", "memory": "0.5Gi"},
                "readinessProbe": {"httpGet": {"path": "/health", "port": 9090}},
            }
        )
    )
    main = _container(made)
    assert main["image"] == "registry.example.com/iris:1.0"
    assert main["imagePullPolicy"] == "Always"
    assert [(p["name"], p["containerPort"]) for p in main["ports"]] == [
        ("http-8080", 8080),
        ("http-9090", 9090),
    ]
    assert main["env"] == [{"name": "LOG_LEVEL", "value": "debug"}]
    assert (main["command"], main["args"]) == (["/bin/serve"], ["--port", "8080"])
    # requests = limits, in the API server's canonical form (no spurious diffs later).
    assert main["resources"] == {
        "requests": {"cpu": "500m", "memory": "512Mi"},
        "limits": {"cpu": "500m", "memory": "512Mi"},
    }
    probe = main["readinessProbe"]
    assert probe["httpGet"] == {"path": "/health", "port": "http-9090", "scheme": "HTTP"}
    assert probe["failureThreshold"] == 1


def test_the_pod_is_confined() -> None:
    pod = _plan(_spec()).deployment["spec"]["template"]["spec"]
    main = pod["containers"][0]
    assert pod["automountServiceAccountToken"] is False
    assert (pod["hostNetwork"], pod["hostPID"], pod["hostIPC"]) == (False, False, False)
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    context = main["securityContext"]
    assert context["allowPrivilegeEscalation"] is False
    assert context["privileged"] is False
    assert context["capabilities"]["drop"] == ["ALL"]
    assert not {"NET_RAW", "SYS_ADMIN", "MKNOD", "SYS_CHROOT"} & set(context["capabilities"]["add"])


def test_the_service_has_one_named_port_per_spec_port_and_gives_the_endpoints() -> None:
    made = _plan(_spec(container={"ports": [8080, 9090]}))
    service = made.service
    assert service["metadata"]["name"] == "iris"
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["selector"] == made.deployment["spec"]["selector"]["matchLabels"]
    assert [(p["name"], p["port"], p["targetPort"]) for p in service["spec"]["ports"]] == [
        ("http-8080", 8080, "http-8080"),
        ("http-9090", 9090, "http-9090"),
    ]
    assert made.endpoints == ["http://iris.models.svc:8080", "http://iris.models.svc:9090"]


def test_storage_is_one_claim_with_a_subpath_per_volume_and_read_only_data_and_models() -> None:
    made = _plan(_spec(container={"volumes": ["/storage", "/var/logs", "/data", "/models"]}))
    pod = made.deployment["spec"]["template"]["spec"]
    mounts = {m["mountPath"]: m for m in _container(made)["volumeMounts"]}
    assert made.claim is not None and made.claim_name == "iris-storage"
    assert made.claim["spec"]["resources"]["requests"]["storage"] == "1Gi"
    assert "storageClassName" not in made.claim["spec"]  # the cluster's default class
    assert mounts["/storage"] == {"name": "storage", "mountPath": "/storage", "subPath": "storage"}
    assert mounts["/var/logs"]["subPath"] == "logs"
    assert mounts["/data"]["readOnly"] is True and mounts["/models"]["readOnly"] is True
    volumes = {v["name"]: v["persistentVolumeClaim"] for v in pod["volumes"]}
    assert volumes == {
        "storage": {"claimName": "iris-storage"},
        "data": {"claimName": "datasets", "readOnly": True},
        "models": {"claimName": "weights", "readOnly": True},
    }
    # The claim is ReadWriteOnce: a surge pod must join the serving one on its node.
    affinity = pod["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert affinity[0]["topologyKey"] == "kubernetes.io/hostname"


def test_storage_size_and_class_come_from_the_settings() -> None:
    settings = Settings.load(
        {"RUNNERS_KUBERNETES_STORAGE_SIZE": "20Gi", "RUNNERS_KUBERNETES_STORAGE_CLASS": "fast"}
    )
    made = _plan(_spec(container={"volumes": ["/storage"]}), settings)
    assert made.claim is not None
    assert made.claim["spec"]["resources"]["requests"]["storage"] == "20Gi"
    assert made.claim["spec"]["storageClassName"] == "fast"


def test_a_model_without_storage_volumes_gets_no_claim() -> None:
    made = _plan(_spec())
    assert made.claim is None and made.claim_name is None
    assert made.deployment["spec"]["template"]["spec"]["volumes"] == []
    assert "affinity" not in made.deployment["spec"]["template"]["spec"]


@pytest.mark.parametrize(("path", "setting"), [("/data", "DATA"), ("/models", "MODELS")])
def test_data_or_models_without_a_configured_claim_is_refused_with_the_setting_named(
    path: str, setting: str
) -> None:
    with pytest.raises(errors.StorageNotConfigured) as refused:
        _plan(_spec(container={"volumes": [path]}), Settings.load({}))
    assert f"RUNNERS_KUBERNETES_{setting}_CLAIM" in refused.value.message
    assert path in refused.value.message


def test_every_object_is_labelled_annotated_and_owned_by_the_mlmodel() -> None:
    made = _plan(_spec(container={"volumes": ["/storage"]}))
    for obj in (made.deployment, made.service):
        meta = obj["metadata"]
        assert meta["labels"]["mlplatform.dev/managed-by"] == "mlplatform"
        assert meta["labels"]["mlplatform.dev/model-id"] == "iris_1.0"
        assert meta["labels"]["mlplatform.dev/owner-uid"] == OWNER.uid
        assert meta["annotations"]["mlplatform.dev/model-id"] == "iris:1.0"
        assert meta["annotations"]["mlplatform.dev/spec-hash"] == made.spec_hash
        assert meta["ownerReferences"] == [
            {
                "apiVersion": "mlplatform.dev/v1alpha1",
                "kind": "MLModel",
                "name": "iris",
                "uid": OWNER.uid,
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
    # The claim outlives the MLModel unless the settings say otherwise.
    assert made.claim is not None and "ownerReferences" not in made.claim["metadata"]
    deleting = Settings.load({"RUNNERS_KUBERNETES_DELETE_CLAIM": "true"})
    claim = _plan(_spec(container={"volumes": ["/storage"]}), deleting).claim
    assert claim is not None and claim["metadata"]["ownerReferences"][0]["uid"] == OWNER.uid


def test_the_label_safe_id_is_one_to_one_and_fits_a_label() -> None:
    assert plan.label_safe_id("a-b:c") != plan.label_safe_id("a:b-c")
    longest = "a" * 30 + ":" + "b" * 33
    assert len(longest) == 64
    safe = plan.label_safe_id(longest)
    assert len(safe) <= 63 and safe[-1].isalnum()
    assert plan.label_safe_id(longest) != plan.label_safe_id("a" * 30 + ":" + "b" * 32 + "c")


def test_the_spec_hash_moves_with_the_container_and_only_with_it() -> None:
    first = _plan(_spec())
    assert _plan(_spec()).spec_hash == first.spec_hash
    assert _plan(_spec(container={"image": "registry.example.com/iris:1.1"})).spec_hash != (
        first.spec_hash
    )
    assert _plan(_spec(container={"ports": [8081]})).spec_hash != first.spec_hash


# --- Kubernetes' own schemas -------------------------------------------------------------


def _kubernetes_examples() -> list[tuple[str, dict[str, Any]]]:
    found = [
        (where, obj)
        for where, obj in corpus.valid_objects()
        if (obj.get("spec") or {}).get("runner") == "kubernetes"
    ]
    assert len(found) >= 2, "the valid corpus has no runner: kubernetes manifests"
    return found


@pytest.mark.parametrize("version", [OLDEST, NEWEST])
@pytest.mark.parametrize(("where", "obj"), _kubernetes_examples(), ids=lambda x: str(x)[:40])
def test_every_generated_object_passes_kubernetes_validate_strictly(
    version: str, where: str, obj: dict[str, Any]
) -> None:
    model = parse_object(obj)
    owner = base.Owner(namespace=model.namespace or "default", name=model.name, uid="uid-1")
    made = plan.plan(base.Workload(owner=owner, spec=model.spec), SETTINGS)
    assert made.objects()
    for generated in made.objects():
        kubernetes_validate.validate(generated, version, strict=True)


def test_the_strict_validation_would_catch_a_broken_object() -> None:
    # The check above can fail: an unknown field in the pod spec is refused.
    broken = copy.deepcopy(_plan(_spec()).deployment)
    broken["spec"]["template"]["spec"]["privilegedMode"] = True
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, NEWEST, strict=True)


def test_the_readme_states_the_range_the_objects_are_validated_against() -> None:
    readme = (corpus.ROOT / "README.md").read_text(encoding="utf-8")
    oldest, newest = (".".join(v.split(".")[:2]) for v in (OLDEST, NEWEST))
    assert f"Kubernetes {oldest} to {newest}" in readme
