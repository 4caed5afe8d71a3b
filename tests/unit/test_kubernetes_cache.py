"""The Kubernetes runner's object cache: what its watches delivered, read without requests."""

from __future__ import annotations

from typing import Any

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


def test_a_kind_is_read_from_the_cache_only_between_its_listing_and_the_end_of_its_watch() -> None:
    cache = ObjectCache()
    assert not cache.synced("Deployment")
    cache.replace("Deployment", [obj("iris", "1")])
    assert cache.synced("Deployment") and not cache.synced("Deployment", "Service")
    assert cache.get("Deployment", "models", "iris") == obj("iris", "1")
    cache.drop("Deployment")
    assert not cache.synced("Deployment")
    assert cache.get("Deployment", "models", "iris") is None


def test_watch_events_add_modify_and_delete() -> None:
    cache = ObjectCache()
    cache.replace("Service", [])
    cache.apply("Service", "ADDED", obj("iris", "1"))
    cache.apply("Service", "MODIFIED", obj("iris", "2"))
    assert cache.get("Service", "models", "iris") == obj("iris", "2")
    cache.apply("Service", "DELETED", obj("iris", "3"))
    assert cache.get("Service", "models", "iris") is None
    # Events of a kind that is not synced are not kept (its next listing starts afresh).
    cache.apply("Pod", "ADDED", obj("p", "1"))
    cache.replace("Pod", [])
    assert cache.get("Pod", "models", "p") is None


def test_a_new_listing_replaces_what_was_held_of_that_kind_only() -> None:
    cache = ObjectCache()
    cache.replace("Deployment", [obj("old", "1")])
    cache.replace("Service", [obj("old", "1")])
    cache.replace("Deployment", [obj("new", "2")])
    assert cache.get("Deployment", "models", "old") is None
    assert cache.get("Deployment", "models", "new") is not None
    assert cache.get("Service", "models", "old") is not None


def test_select_finds_the_objects_carrying_every_label_in_one_namespace() -> None:
    cache = ObjectCache()
    cache.replace(
        "Pod",
        [
            obj("a", "1", owner="u1", app="x"),
            obj("b", "1", owner="u2", app="x"),
            obj("c", "1", namespace="other", owner="u1", app="x"),
        ],
    )
    found = cache.select("Pod", "models", {"owner": "u1", "app": "x"})
    assert [p["metadata"]["name"] for p in found] == ["a"]
    assert cache.select("Pod", "models", {"owner": "u3"}) == []


def test_the_runners_own_write_is_kept_unless_the_watch_delivered_a_version_meanwhile() -> None:
    cache = ObjectCache()
    cache.replace("Deployment", [obj("patched", "1")])
    # A create whose event has not come yet: the answer stands in for it.
    cache.written("Deployment", obj("created", "5"), None)
    assert cache.get("Deployment", "models", "created") == obj("created", "5")
    # A patch of version 1 while the cache still holds version 1.
    cache.written("Deployment", obj("patched", "6"), obj("patched", "1"))
    assert cache.get("Deployment", "models", "patched") == obj("patched", "6")
    # The watch brought version 8 before the answer of a patch of version 6 came back.
    cache.apply("Deployment", "MODIFIED", obj("patched", "8"))
    cache.written("Deployment", obj("patched", "7"), obj("patched", "6"))
    assert cache.get("Deployment", "models", "patched") == obj("patched", "8")
    # A create whose ADDED event (and a later change) arrived first is not replaced.
    cache.apply("Deployment", "ADDED", obj("raced", "9"))
    cache.written("Deployment", obj("raced", "8"), None)
    assert cache.get("Deployment", "models", "raced") == obj("raced", "9")
    # Nothing is kept for a kind whose watch is not running.
    cache.drop("Deployment")
    cache.written("Deployment", obj("late", "1"), None)
    cache.replace("Deployment", [])
    assert cache.get("Deployment", "models", "late") is None
