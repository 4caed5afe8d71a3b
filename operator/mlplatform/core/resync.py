"""The safety net for missed events, and one workload per owner.

``run`` is the resync: one listing of the runner's workloads says which models are stale
(what runs disagrees with their status) and which workloads are orphans (their owner is
gone) or extras (an owner's second workload), and removes the latter. ``retire_old_ids``
removes an owner's workloads of an id it no longer has, once the new one serves.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass

from mlplatform.core.step import Event
from mlplatform.models.status import MLModelStatus, Phase
from mlplatform.runners.base import OwnedWorkload, Runner, State, Workload


@dataclass(frozen=True)
class Resync:
    """What one resync found: models whose workload disagrees with their status, orphans."""

    stale: frozenset[str]  # owner uids to reconcile
    removed: tuple[OwnedWorkload, ...]  # orphaned workloads, now removed


def run(
    runner: Runner,
    statuses: Mapping[str, MLModelStatus | None],
    live_uids: Callable[[], Collection[str]],
    *,
    scope: Callable[[OwnedWorkload], bool] = lambda _: True,
) -> Resync:
    """The safety net for missed events, in one listing of the runner's workloads.

    ``statuses`` maps the owner uid of each model served to its last status. A model is
    stale (to be reconciled) unless what runs matches its status: Running with the same
    container, still running; Stopped with none. So a resync of steady models costs one
    request, however many there are. Only workloads in ``scope`` are looked at: the
    front end's own (the operator: its namespaces; local mode: made from its manifests
    and not held by an invalid one). Those whose owner is not among ``live_uids()`` are
    removed — listed before the owners, so that a model created in between can never
    lose its new workload.

    One workload per owner: an owner may briefly have two (its id changed; the old
    workload goes once the new one runs). When the status says the model runs and its
    workload is listed running, the owner's other workloads are removed here too — except
    one not started yet, which a step in flight may be making: the model is stale instead,
    and its reconcile (never two at once for one model) finishes or removes it; otherwise
    the model is stale and its reconcile finishes the hand-over. While an
    update runs (``Updating``), two are expected (the serving one and the new revision):
    the model's own reconcile moves it on, the resync removes neither.
    """
    owned = [o for o in runner.list_owned() if scope(o)]
    by_owner: dict[str, list[OwnedWorkload]] = {}
    for o in owned:
        by_owner.setdefault(o.owner.uid, []).append(o)
    stale: set[str] = set()
    extras: list[OwnedWorkload] = []
    for uid, status in statuses.items():
        group = by_owner.get(uid, [])
        current = _current(status, group)
        if len(group) > 1 and status is not None and status.updating:
            continue  # its reconcile is already looking at it (a requeue is due)
        if len(group) > 1 and current is not None and _in_sync(status, current):
            others = [o for o in group if o is not current]
            extras.extend(o for o in others if o.state != State.STARTING)
            if any(o.state == State.STARTING for o in others):
                # Not started yet: a step in flight may be making it (an in-place
                # replacement creates the new workload before the old one goes); the
                # model's own reconcile, after that step, removes it if it is left over.
                stale.add(uid)
        elif len(group) > 1 or not _in_sync(status, group[0] if group else None):
            stale.add(uid)
    if not owned:
        return Resync(frozenset(stale), ())
    live = live_uids()
    orphans = tuple(o for o in owned if o.owner.uid not in live)
    removed = (*orphans, *(o for o in extras if o not in orphans))
    for workload in removed:
        runner.remove_owned(workload)
    return Resync(frozenset(stale), removed)


def retire_old_ids(runner: Runner, workload: Workload, status: MLModelStatus) -> list[Event]:
    """Remove the owner's workloads of other ids (its ``spec.id`` changed): one per owner.

    Called once the workload of the current id runs, so a rename never leaves the model
    without a server. Only workloads of the same source are touched (local mode: the
    same manifest file; the operator records none), never the one that serves.

    For a runner that brings the new id up beside the old one and reports it as the
    model's workload; runners with ``one_workload_per_owner`` (Docker, Kubernetes) hand
    over themselves and are not asked. Never while an update runs (``Updating``): the
    old workload is then the serving one.
    """
    if status.updating:
        return []
    serving = status.runner.workload_id if status.runner else None
    events = []
    for owned in runner.list_owned():
        if (
            owned.owner.uid == workload.owner.uid
            and owned.model_id != workload.spec.id
            and owned.source == workload.source
            and owned.workload_id != serving
        ):
            runner.remove_owned(owned)
            events.append(
                Event(
                    "Normal",
                    "Removed",
                    f"Removed workload {owned.workload_name} of the old id "
                    f"{owned.model_id} (the model runs as {workload.spec.id})",
                )
            )
    return events


def _current(status: MLModelStatus | None, group: list[OwnedWorkload]) -> OwnedWorkload | None:
    """The workload ``status`` describes among an owner's workloads."""
    if status is None or status.runner is None or not status.runner.workload_id:
        return None
    return next((o for o in group if o.workload_id == status.runner.workload_id), None)


def _in_sync(status: MLModelStatus | None, found: OwnedWorkload | None) -> bool:
    """Whether the workload the runner lists is the one ``status`` describes."""
    if status is None:
        return False
    if status.phase == Phase.STOPPED:
        # Suspended: nothing, or a workload scaled to nothing (a Kubernetes Deployment at 0).
        return found is None or found.state == State.REMOVED
    return (
        status.phase == Phase.RUNNING
        and found is not None
        and found.state == State.RUNNING
        and status.runner is not None
        and found.workload_id == status.runner.workload_id
    )
