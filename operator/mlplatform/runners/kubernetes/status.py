"""A model's status from the cluster's own facts: its Deployment, and the pods of its revision.

Pure: ``read_status`` takes the objects as the API returns them (plain dicts) and says what
runs. The rules:

- A new model is Ready when its first rollout is complete: the Deployment's
  ``observedGeneration`` has caught up with its ``generation`` and the updated, ready and
  available replicas equal the desired ones.
- While a spec change rolls out, the previous revision's pod keeps serving (maxUnavailable
  0), so the model stays Ready (one meaning of Ready for every runner: the model answers at
  its endpoint); the rollout's progress, and why its new pod does not come up, is reported
  beside it (the message) and never turns the serving model Failed.
- Why a pod of the current revision is not serving, from the kubelet and the scheduler:
  ``ErrImagePull``/``ImagePullBackOff`` → ImagePullFailed (the kubelet's message);
  ``CrashLoopBackOff`` → CrashLoopBackOff with the last termination (exit code);
  a last termination ``OOMKilled`` → OOMKilled; ``PodScheduled`` False → Unschedulable (the
  scheduler's message); the Deployment's ``ProgressDeadlineExceeded`` → the rollout failed.
- ``restartCount`` is the kubelet's, from the pod.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from mlplatform.models import timestamps
from mlplatform.models.status import Reason
from mlplatform.runners import base
from mlplatform.runners.kubernetes import plan

_PULL_FAILURES = frozenset({"ErrImagePull", "ImagePullBackOff", "InvalidImageName"})
_START_FAILURES = frozenset(
    {"CreateContainerConfigError", "CreateContainerError", "RunContainerError"}
)

Obj = Mapping[str, Any]


def replicas(deployment: Obj) -> dict[str, int]:
    """The Deployment's desired and reported replica counts (absent counts are zero)."""
    spec = deployment.get("spec") or {}
    status = deployment.get("status") or {}
    return {
        "desired": int(spec.get("replicas", 1)),
        "current": int(status.get("replicas") or 0),
        "updated": int(status.get("updatedReplicas") or 0),
        "ready": int(status.get("readyReplicas") or 0),
        "available": int(status.get("availableReplicas") or 0),
    }


def rollout_complete(deployment: Obj) -> bool:
    """The Deployment controller has seen the latest spec and every replica runs it, ready."""
    meta = deployment.get("metadata") or {}
    observed = (deployment.get("status") or {}).get("observedGeneration")
    counts = replicas(deployment)
    desired = counts["desired"]
    return (
        observed is not None
        and int(observed) >= int(meta.get("generation") or 0)
        and counts["updated"] == desired
        and counts["ready"] == desired
        and counts["available"] == desired
        and counts["current"] == desired
    )


def current_pods(deployment: Obj, pods: Sequence[Obj]) -> list[Obj]:
    """The pods of the Deployment's current template (by its spec-hash annotation)."""
    template = ((deployment.get("spec") or {}).get("template") or {}).get("metadata") or {}
    wanted = (template.get("annotations") or {}).get(plan.ANNOTATION_SPEC_HASH)
    found = [
        pod
        for pod in pods
        if not (pod.get("metadata") or {}).get("deletionTimestamp")
        and ((pod.get("metadata") or {}).get("annotations") or {}).get(plan.ANNOTATION_SPEC_HASH)
        == wanted
    ]
    return sorted(found, key=_created)


def _created(pod: Obj) -> float:
    """When the pod was created (oldest first); one without a readable time sorts last."""
    stamp = (pod.get("metadata") or {}).get("creationTimestamp")
    try:
        return timestamps.parse(stamp) if isinstance(stamp, str) else math.inf
    except ValueError:
        return math.inf


def _model_container(pod: Obj) -> Obj:
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        if status.get("name") == plan.CONTAINER_NAME:
            return dict(status)
    return {}


def _termination(terminated: Obj) -> base.Termination:
    return base.Termination(
        exit_code=terminated.get("exitCode"),
        oom_killed=terminated.get("reason") == "OOMKilled",
        reason=str(terminated.get("reason") or ""),
        message=str(terminated.get("message") or ""),
        finished_at=terminated.get("finishedAt"),
    )


def pod_problem(
    pod: Obj,
) -> tuple[base.Problem | None, base.Termination | None]:
    """Why one pod is not serving, and how its container last ended (if it did)."""
    pod_name = (pod.get("metadata") or {}).get("name", "")
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
            message = condition.get("message") or condition.get("reason") or "not scheduled"
            return base.Problem(Reason.UNSCHEDULABLE, f"pod {pod_name}: {message}"), None
    container = _model_container(pod)
    state = container.get("state") or {}
    last = (container.get("lastState") or {}).get("terminated")
    now_terminated = state.get("terminated")
    ended = last or now_terminated
    termination = _termination(ended) if isinstance(ended, Mapping) else None
    waiting = state.get("waiting") or {}
    reason = waiting.get("reason")
    detail = waiting.get("message") or reason or ""
    if reason in _PULL_FAILURES:
        return base.Problem(Reason.IMAGE_PULL_FAILED, f"{reason}: {detail}"), termination
    if reason in _START_FAILURES:
        return base.Problem(Reason.START_FAILED, f"{reason}: {detail}"), termination
    if termination is not None and termination.oom_killed and not state.get("running"):
        return base.Problem(
            Reason.OOM_KILLED, f"container was OOM-killed (pod {pod_name}); {detail}".rstrip("; ")
        ), termination
    if reason == "CrashLoopBackOff":
        code = termination.exit_code if termination else None
        return base.Problem(
            Reason.CRASH_LOOP, f"container exited with code {code}; {detail}"
        ), termination
    if now_terminated:
        assert termination is not None
        return base.Problem(
            Reason.CONTAINER_EXITED, f"container exited with code {termination.exit_code}"
        ), termination
    return None, termination


def _progress_deadline(deployment: Obj) -> base.Problem | None:
    for condition in (deployment.get("status") or {}).get("conditions") or []:
        if (
            condition.get("type") == "Progressing"
            and condition.get("status") == "False"
            and condition.get("reason") == "ProgressDeadlineExceeded"
        ):
            return base.Problem(
                Reason.PROGRESS_DEADLINE_EXCEEDED,
                f"the rollout failed: {condition.get('message') or 'progress deadline exceeded'}",
            )
    return None


def read_status(
    made: plan.KubernetesPlan,
    deployment: Obj | None,
    pods: Sequence[Obj],
    *,
    service_exists: bool,
    action: base.Action = base.Action.NONE,
) -> base.RunnerStatus:
    """What the cluster says of one model (``deployment`` None: there is none)."""
    if deployment is None:
        return base.RunnerStatus(
            state=base.State.MISSING,
            action=action,
            workload_name=made.name,
            ready=False,
            message=f"Deployment {made.namespace}/{made.name} does not exist",
            details=_details(made, None, service_exists),
        )
    meta = deployment.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    counts = replicas(deployment)
    details = _details(made, deployment, service_exists)
    common: dict[str, Any] = {
        "action": action,
        "workload_id": meta.get("uid"),
        "workload_name": meta.get("name"),
        "revision": annotations.get(plan.ANNOTATION_SPEC_HASH),
        "details": details,
    }
    if counts["desired"] == 0:
        left = counts["current"]
        return base.RunnerStatus(
            state=base.State.REMOVED if left == 0 else base.State.RUNNING,
            ready=False,
            restart_count=0,
            message="scaled to 0 (suspended); Service and storage kept"
            if left == 0
            else f"scaling to 0: {left} pod(s) terminating",
            **common,
        )
    current = current_pods(deployment, pods)
    problem: base.Problem | None = None
    termination: base.Termination | None = None
    restarts = 0
    started_at: str | None = None
    for pod in current:
        found, ended = pod_problem(pod)
        container = _model_container(pod)
        restarts = max(restarts, int(container.get("restartCount") or 0))
        running = (container.get("state") or {}).get("running") or {}
        started_at = running.get("startedAt") or started_at
        problem = problem or found
        termination = termination or ended
    problem = _progress_deadline(deployment) or problem
    complete = rollout_complete(deployment)
    # Some pod answers behind the Service: the finished rollout's, or during an update the
    # previous revision's (maxUnavailable 0 keeps it until the new one is available).
    serving = counts["available"] > 0 and service_exists
    if complete:
        state = base.State.RUNNING
        message = ""
    elif serving:
        state = base.State.RUNNING
        message = _rollout_message(deployment, counts, old_serving=True)
    else:
        state = base.State.STARTING
        message = _rollout_message(deployment, counts, old_serving=False)
    if serving and not complete:
        # An update: the previous revision serves, the new one comes up behind it. The
        # status describes the serving pod; the new revision and its trouble go in
        # ``rollout`` (the kubelet retries by itself: its trouble is a wait, not a failure
        # for the core to count).
        return _updating(
            made,
            deployment,
            pods,
            current=current,
            problem=problem,
            progress=message,
            common=common,
        )
    if problem is not None and not complete:
        message = problem.message if not message else f"{message}; {problem.message}"
    return base.RunnerStatus(
        state=state,
        endpoints=list(made.endpoints) if serving else [],
        started_at=started_at,
        termination=termination,
        restart_count=restarts,
        ready=serving,
        problem=problem,
        message=message,
        **common,
    )


# How soon the core looks again at an update in progress; the pod watch wakes it sooner.
ROLLOUT_RECHECK = 5.0


def _updating(
    made: plan.KubernetesPlan,
    deployment: Obj,
    pods: Sequence[Obj],
    *,
    current: Sequence[Obj],
    problem: base.Problem | None,
    progress: str,
    common: dict[str, Any],
) -> base.RunnerStatus:
    revision = _revision(deployment)
    serving = [
        pod
        for pod in pods
        if not (pod.get("metadata") or {}).get("deletionTimestamp")
        and _revision_of(pod) != revision
        and _model_container(pod).get("ready")
    ]
    old = serving[0] if serving else None
    old_container = _model_container(old) if old is not None else {}
    new = current[-1] if current else None
    new_container = _model_container(new) if new is not None else {}
    new_meta = (new.get("metadata") or {}) if new is not None else {}
    return base.RunnerStatus(
        **{
            **common,
            # The serving pod's revision while it serves (the new one once it does).
            "revision": _revision_of(old) if old is not None else common["revision"],
        },
        state=base.State.RUNNING,
        endpoints=list(made.endpoints),
        started_at=((old_container.get("state") or {}).get("running") or {}).get("startedAt"),
        restart_count=int(old_container.get("restartCount") or 0),
        ready=True,
        rollout=base.Rollout(
            revision=revision,
            workload_name=new_meta.get("name"),
            workload_id=new_meta.get("uid"),
            started_at=((new_container.get("state") or {}).get("running") or {}).get("startedAt"),
            waiting=problem,
            message=progress,
            recheck_after=ROLLOUT_RECHECK,
        ),
        message=progress if problem is None else f"{progress}; {problem.message}",
    )


def _revision(deployment: Obj) -> str | None:
    template = ((deployment.get("spec") or {}).get("template") or {}).get("metadata") or {}
    value = (template.get("annotations") or {}).get(plan.ANNOTATION_SPEC_HASH)
    return str(value) if value else None


def _revision_of(pod: Obj) -> str | None:
    value = ((pod.get("metadata") or {}).get("annotations") or {}).get(plan.ANNOTATION_SPEC_HASH)
    return str(value) if value else None


def _rollout_message(deployment: Obj, counts: Mapping[str, int], *, old_serving: bool) -> str:
    meta = deployment.get("metadata") or {}
    observed = (deployment.get("status") or {}).get("observedGeneration")
    generation = meta.get("generation")
    if observed is None or int(observed) < int(generation or 0):
        head = f"waiting for the Deployment controller to observe generation {generation}"
    else:
        head = (
            f"rolling out: {counts['updated']} of {counts['desired']} updated, "
            f"{counts['available']} available"
        )
    return f"{head} (the previous pod keeps serving)" if old_serving else head


def _details(made: plan.KubernetesPlan, deployment: Obj | None, service: bool) -> dict[str, Any]:
    counts = replicas(deployment) if deployment is not None else {}
    return {
        "deployment": made.name if deployment is not None else None,
        "service": made.name if service else None,
        "claim": made.claim_name,
        "namespace": made.namespace,
        "replicas": {k: counts[k] for k in ("desired", "updated", "ready", "available")}
        if counts
        else {},
    }
