"""Which replica is active: the controller runs there only (the controller-runtime Manager's rule).

kopf's peering pauses the handling of watch events on every replica but the one with the
highest priority among the live peers of its peering object. Pausing kopf is not enough:
the controller's workers, the orphan-collecting resync and the runner watches are ours, and
a standby replica must run none of them. ``Leadership`` reads the same peering object and
applies kopf's rule, so that the controller starts when this replica becomes the active one
and stops when another takes the lead (the process then ends, as a controller-runtime
manager does, and comes back as a standby).

The rule (``active``): this replica's own record is live, and no other live record has a
priority as high or higher. A record is live until ``lastseen + lifetime`` (kopf renews it
a few seconds before that; a replica that stops cleanly removes its record, one that dies
leaves it to expire). With ``--standalone`` there is no peering and the replica is active
from the start.
"""

from __future__ import annotations

import datetime
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

Records = Mapping[str, Any]  # a peering object's ``status``: identity → record
Now = Callable[[], datetime.datetime]


def _utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def deadline(record: Mapping[str, Any]) -> datetime.datetime | None:
    """When a peer's record expires (``lastseen + lifetime``), None when unreadable."""
    try:
        seen = datetime.datetime.fromisoformat(str(record["lastseen"]))
        lifetime = datetime.timedelta(seconds=int(record.get("lifetime", 60)))
    except (KeyError, TypeError, ValueError):
        return None
    if seen.tzinfo is None:
        seen = seen.replace(tzinfo=datetime.UTC)
    return seen + lifetime


def live(record: Mapping[str, Any], now: datetime.datetime) -> bool:
    """Whether a peer's record has not expired (kopf's ``Peer.is_dead``, negated)."""
    expires = deadline(record)
    return expires is not None and expires > now


def active(records: Records, *, identity: str, priority: int, now: datetime.datetime) -> bool:
    """kopf's rule for one peering object: our record is live and nobody else's live record
    has a priority as high as ours (kopf pauses every replica sharing the top priority)."""
    own = records.get(identity)
    if not isinstance(own, Mapping) or not live(own, now):
        return False
    return not any(
        isinstance(record, Mapping)
        and live(record, now)
        and int(record.get("priority", 0)) >= priority
        for peer, record in records.items()
        if peer != identity
    )


@dataclass(frozen=True)
class Peering:
    """This replica's place in kopf's peering: how to read the peering object(s), and the
    identity and priority it runs kopf with."""

    read: Callable[[], Sequence[Records]]
    identity: str
    priority: int
    # A standby looks every second (the take-over waits on it); the active replica only has
    # to notice a higher priority arriving (kopf pauses it at once meanwhile), so it looks
    # less often: one GET every few seconds, however many models.
    period: float = 1.0
    active_period: float = 5.0


class Leadership:
    """Polls the peering object(s) and starts / stops the controller on the transitions.

    ``peering.read`` returns the ``status`` of each peering object this replica takes part in
    (one cluster-wide, or one per watched namespace); the replica is active when it is active
    in every one. ``on_lead`` runs once, when it first becomes active; ``on_lost`` once, when
    it stops being active after that: another replica took the lead, or the peering could not
    be read until this replica's own record expired (the others may have taken over by then,
    as controller-runtime's renew deadline has it). Both run in the polling thread.
    """

    def __init__(
        self,
        peering: Peering,
        *,
        on_lead: Callable[[], None],
        on_lost: Callable[[str], None],
        now: Now = _utcnow,
    ) -> None:
        self.peering = peering
        self._on_lead = on_lead
        self._on_lost = on_lost
        self._now = now
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._own_deadline: datetime.datetime | None = None  # our record's, as last read
        self.leading = False

    @property
    def identity(self) -> str:
        return self.peering.identity

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="mlplatform-leadership", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(10)

    def check(self) -> bool | None:
        """One look: True/False, or None when the peering could not be read (no change,
        unless our own record has expired meanwhile: then False)."""
        now = self._now()
        try:
            objects = self.peering.read()
        except Exception as error:  # an API outage: keep the current role while it can hold
            if self._own_deadline is not None and now >= self._own_deadline:
                log.warning("Could not read the peering (%s) until our record expired", error)
                return False
            log.warning("Could not read the peering (%s); keeping the current role", error)
            return None
        identity, priority = self.peering.identity, self.peering.priority
        own = [records.get(identity) for records in objects]
        deadlines = [deadline(record) for record in own if isinstance(record, Mapping)]
        self._own_deadline = min((d for d in deadlines if d is not None), default=None)
        return bool(objects) and all(
            active(records, identity=identity, priority=priority, now=now) for records in objects
        )

    def step(self) -> bool:
        """One look and the transition it calls for; False once the lead was lost (the
        polling ends: a replica that lost the lead does not take it again)."""
        leading = self.check()
        if leading and not self.leading:
            self.leading = True
            log.info("This replica is the active one (%s): starting the controller", self.identity)
            self._on_lead()
        elif leading is False and self.leading:
            self.leading = False
            log.warning("This replica is no longer the active one: stopping the controller")
            self._on_lost("this replica is no longer the active one")
            return False
        return True

    def _run(self) -> None:
        peering = self.peering
        while not self._stop.is_set() and self.step():
            self._stop.wait(peering.active_period if self.leading else peering.period)
