"""The Kubernetes runner's object cache: what its watches delivered, read without requests."""

from __future__ import annotations

from typing import Any

import pytest

from mlplatform import errors
from mlplatform.runners.kubernetes import api, watch
from mlplatform.runners.kubernetes.cache import ObjectCache


def obj(name: str, version: str, namespace: str = "models", **labels: str) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "namespace": namespace,
            "resourceVersion": version,
            "labels": labels,
        }
    }


def test_it_is_read_only_between_a_listing_and_the_end_of_its_stream() -> None:
    cache = ObjectCache()
    assert not cache.synced()
    epoch = cache.replace({"Deployment": [obj("iris", "1")], "Service": []})
    assert cache.synced()
    assert cache.get("Deployment", "models", "iris") == obj("iris", "1")
    cache.drop(epoch)
    assert not cache.synced()
    assert cache.get("Deployment", "models", "iris") is None


def test_watch_events_add_modify_and_delete() -> None:
    cache = ObjectCache()
    epoch = cache.replace({"Service": []})
    cache.apply(epoch, "Service", "ADDED", obj("iris", "1"))
    cache.apply(epoch, "Service", "MODIFIED", obj("iris", "2"))
    assert cache.get("Service", "models", "iris") == obj("iris", "2")
    cache.apply(epoch, "Service", "DELETED", obj("iris", "3"))
    assert cache.get("Service", "models", "iris") is None


def test_a_closed_stream_can_neither_write_into_nor_empty_the_next_listing() -> None:
    cache = ObjectCache()
    old = cache.replace({"Pod": [obj("p", "1")]})
    cache.drop(old)
    new = cache.replace({"Pod": [obj("p", "5")]})
    # The old stream's threads, late: an event they held, then their own end.
    cache.apply(old, "Pod", "DELETED", obj("p", "2"))
    cache.apply(old, "Pod", "ADDED", obj("q", "2"))
    cache.drop(old)
    assert cache.synced()
    assert cache.get("Pod", "models", "p") == obj("p", "5")
    assert cache.get("Pod", "models", "q") is None
    cache.drop(new)
    assert not cache.synced()


def test_a_new_listing_replaces_everything_held() -> None:
    cache = ObjectCache()
    cache.replace({"Deployment": [obj("old", "1")], "Service": [obj("old", "1")]})
    cache.replace({"Deployment": [obj("new", "2")], "Service": []})
    assert cache.get("Deployment", "models", "old") is None
    assert cache.get("Service", "models", "old") is None
    assert cache.get("Deployment", "models", "new") is not None


def test_select_finds_the_objects_carrying_every_label_in_one_namespace() -> None:
    cache = ObjectCache()
    cache.replace(
        {
            "Pod": [
                obj("a", "1", owner="u1", app="x"),
                obj("b", "1", owner="u2", app="x"),
                obj("c", "1", namespace="other", owner="u1", app="x"),
            ]
        }
    )
    found = cache.select("Pod", "models", {"owner": "u1", "app": "x"})
    assert [p["metadata"]["name"] for p in found] == ["a"]
    assert cache.select("Pod", "models", {"owner": "u3"}) == []


def test_the_runners_own_write_is_kept_unless_the_watch_delivered_a_version_meanwhile() -> None:
    cache = ObjectCache()
    epoch = cache.replace({"Deployment": [obj("patched", "1")]})
    # A create whose event has not come yet: the answer stands in for it.
    cache.written("Deployment", obj("created", "5"), None)
    assert cache.get("Deployment", "models", "created") == obj("created", "5")
    # A patch of version 1 while the cache still holds version 1.
    cache.written("Deployment", obj("patched", "6"), obj("patched", "1"))
    assert cache.get("Deployment", "models", "patched") == obj("patched", "6")
    # The watch brought version 8 before the answer of a patch of version 6 came back.
    cache.apply(epoch, "Deployment", "MODIFIED", obj("patched", "8"))
    cache.written("Deployment", obj("patched", "7"), obj("patched", "6"))
    assert cache.get("Deployment", "models", "patched") == obj("patched", "8")
    # A create whose ADDED event (and a later change) arrived first is not replaced.
    cache.apply(epoch, "Deployment", "ADDED", obj("raced", "9"))
    cache.written("Deployment", obj("raced", "8"), None)
    assert cache.get("Deployment", "models", "raced") == obj("raced", "9")
    # Nothing is kept while no stream runs.
    cache.drop(epoch)
    cache.written("Deployment", obj("late", "1"), None)
    cache.replace({"Deployment": []})
    assert cache.get("Deployment", "models", "late") is None


class _ServicesRefused(api.KubeObjects):
    """Lists Deployments; refuses to list Services (a missing RBAC rule, say)."""

    def __init__(self) -> None:
        super().__init__(None, timeout=1.0)

    def list(
        self, kind: str, *, namespace: str | None, selector: str
    ) -> tuple[list[dict[str, Any]], str]:
        if kind == api.SERVICE:
            raise errors.RunnerUnavailable("the operator is not allowed to list services")
        return [], "1"


def test_a_stream_whose_listings_fail_halfway_leaves_the_cache_unsynced() -> None:
    cache = ObjectCache()
    with pytest.raises(errors.RunnerUnavailable, match="not allowed"):
        watch.WorkloadEvents(_ServicesRefused(), "a=b", "operator", cache=cache)
    assert not cache.synced()  # the Deployments listed first are not served alone
