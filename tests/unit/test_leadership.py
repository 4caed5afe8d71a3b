"""kopf's peering rule as the controller applies it, and the start/stop transitions."""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

from mlplatform.kube.leadership import Leadership, Peering, Records, active, live

NOW = datetime.datetime(2026, 12, 7, 12, 0, 0, tzinfo=datetime.UTC)


def record(priority: int, *, seen_ago: float = 1.0, lifetime: int = 60) -> dict[str, Any]:
    seen = NOW - datetime.timedelta(seconds=seen_ago)
    return {"priority": priority, "lifetime": lifetime, "lastseen": seen.isoformat()}


def test_a_record_lives_until_its_lifetime_has_passed_since_it_was_seen() -> None:
    assert live(record(1, seen_ago=59), NOW)
    assert not live(record(1, seen_ago=60), NOW)
    assert not live({"priority": 1}, NOW)  # never seen: not a live peer


def test_the_highest_live_priority_is_active_and_the_others_wait() -> None:
    records = {"a": record(10), "b": record(5)}
    assert active(records, identity="a", priority=10, now=NOW)
    assert not active(records, identity="b", priority=5, now=NOW)


def test_a_dead_peer_of_higher_priority_no_longer_blocks() -> None:
    records = {"a": record(10, seen_ago=61), "b": record(5)}
    assert active(records, identity="b", priority=5, now=NOW)


def test_two_peers_sharing_the_top_priority_both_wait_as_kopf_pauses_both() -> None:
    records = {"a": record(7), "b": record(7)}
    assert not active(records, identity="a", priority=7, now=NOW)
    assert not active(records, identity="b", priority=7, now=NOW)


def test_a_replica_whose_own_record_is_missing_or_expired_is_not_active() -> None:
    assert not active({}, identity="a", priority=1, now=NOW)
    assert not active({"a": record(1, seen_ago=120)}, identity="a", priority=1, now=NOW)


class Script:
    """A peering object whose status the test changes between looks."""

    def __init__(self) -> None:
        self.records: Sequence[Records] = []
        self.failing = False

    def __call__(self) -> Sequence[Records]:
        if self.failing:
            raise OSError("the API server does not answer")
        return self.records


def test_the_controller_starts_once_on_the_lead_and_is_told_when_the_lead_is_lost() -> None:
    script = Script()
    calls: list[str] = []
    leadership = Leadership(
        Peering(script, identity="b", priority=5),
        on_lead=lambda: calls.append("lead"),
        on_lost=lambda why: calls.append(f"lost: {why}"),
        now=lambda: NOW,
    )
    script.records = [{"a": record(10), "b": record(5)}]
    assert leadership.step() and calls == []
    script.records = [{"b": record(5)}]
    assert leadership.step() and leadership.step()
    assert calls == ["lead"]  # once
    script.failing = True
    assert leadership.step() and calls == ["lead"]  # an outage changes no role
    script.failing = False
    # Active only where active in every namespace's peering.
    script.records = [{"b": record(5)}, {"b": record(5), "c": record(9)}]
    assert not leadership.step()
    assert calls == ["lead", "lost: this replica is no longer the active one"]


def test_an_active_replica_that_cannot_read_the_peering_steps_down_once_its_record_expired() -> (
    None
):
    script = Script()
    clock = [NOW]
    calls: list[str] = []
    leadership = Leadership(
        Peering(script, identity="b", priority=5),
        on_lead=lambda: calls.append("lead"),
        on_lost=lambda why: calls.append("lost"),
        now=lambda: clock[0],
    )
    script.records = [{"b": record(5, seen_ago=0, lifetime=60)}]
    assert leadership.step() and calls == ["lead"]
    script.failing = True
    clock[0] = NOW + datetime.timedelta(seconds=59)
    assert leadership.step() and calls == ["lead"]  # the record still holds: keep the lead
    clock[0] = NOW + datetime.timedelta(seconds=60)
    assert not leadership.step()  # expired: a standby may have taken over meanwhile
    assert calls == ["lead", "lost"]
