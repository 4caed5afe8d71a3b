"""The one controller with several runners (the operator with Docker and Kubernetes enabled).

Each runner's event stream is watched, each runner's workloads are listed by the resync, and
a runner judges only the models that run on it: a Kubernetes model is not "stale" because
the Docker engine has no container for it. Same harness as ``test_controller``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from mlplatform import errors
from mlplatform.core.backoff import BackoffPolicy
from mlplatform.core.controller import Controller
from mlplatform.core.reconcile import Reconciler
from mlplatform.runners.base import OwnedWorkload, State, Workload
from tests.support.fake_clock import FakeClock
from tests.unit.test_controller import WAIT, Models, Runner, workload


class KindRunner(Runner):
    """The test runner answering for one ``spec.runner`` kind."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.type = kind


class Two:
    def __init__(self, **options: Any) -> None:
        self.clock = FakeClock()
        self.docker = KindRunner("docker")
        self.kubernetes = KindRunner("kubernetes")
        self.models = Models()
        by_kind = {"docker": self.docker, "kubernetes": self.kubernetes}
        self.controller = Controller(
            reconciler=Reconciler(
                lambda kind: by_kind[kind], min_ready=0, clock=lambda: time.time() + 1
            ),
            runner=self.docker,
            more_runners=[self.kubernetes],
            source=self.models,
            sink=self.models,
            clock=self.clock,
            workers=2,
            resync_interval=None,
            retry=BackoffPolicy(base=0.5, cap=10.0),
            **options,
        )

    def settle(self) -> None:
        assert self.controller.queue.wait_idle(WAIT), "the controller did not go idle"


@pytest.fixture
def two() -> Iterator[Two]:
    built = Two(watch_runner=False)
    yield built
    built.controller.stop(timeout=WAIT)


def converge(two: Two, *workloads: Workload) -> None:
    for each in workloads:
        two.controller.enqueue(two.models.desire(each))
    two.controller.start()
    two.settle()


def test_a_resync_lists_each_runner_once_and_finds_every_model_in_sync(two: Two) -> None:
    converge(two, workload("boat"), workload("iris", runner="kubernetes"))
    assert set(two.docker.containers) == {"boat-1.0"}
    assert set(two.kubernetes.containers) == {"iris-1.0"}
    applies = two.docker.count("apply") + two.kubernetes.count("apply")
    lists = (two.docker.count("list_owned"), two.kubernetes.count("list_owned"))

    result = two.controller.resync()
    two.settle()

    assert result is not None
    assert result.stale == frozenset() and result.removed == ()
    assert two.docker.count("list_owned") == lists[0] + 1
    assert two.kubernetes.count("list_owned") == lists[1] + 1
    assert two.docker.count("apply") + two.kubernetes.count("apply") == applies


def test_a_resync_repairs_and_collects_on_each_runner(two: Two) -> None:
    converge(two, workload("boat"), workload("iris", runner="kubernetes"))
    two.kubernetes.containers.clear()  # someone deleted the Deployment
    two.docker.apply(workload("ghost", uid="uid-gone"))  # an orphan on the Docker side

    result = two.controller.resync()
    two.settle()

    assert result is not None
    assert result.stale == frozenset({"uid-iris"})
    assert [o.owner.uid for o in result.removed] == ["uid-gone"]
    assert set(two.kubernetes.containers) == {"iris-1.0"}  # restored by the reconcile
    assert set(two.docker.containers) == {"boat-1.0"}


def test_one_runner_down_makes_only_its_models_look_again(two: Two) -> None:
    converge(two, workload("boat"), workload("iris", runner="kubernetes"))
    docker_observes = two.docker.count("observe")
    kubernetes_observes = two.kubernetes.count("observe")

    def down() -> list[OwnedWorkload]:
        raise errors.RunnerUnavailable("the Kubernetes API does not answer")

    two.kubernetes.list_owned = down  # type: ignore[method-assign]
    result = two.controller.resync()
    two.settle()

    assert result is not None  # the Docker side was listed
    assert two.docker.count("observe") == docker_observes
    assert two.kubernetes.count("observe") == kubernetes_observes + 1


def test_each_runners_events_wake_the_owner() -> None:
    built = Two()
    try:
        converge(built, workload("boat"), workload("iris", runner="kubernetes"))
        observes = built.kubernetes.count("observe", "models/iris")
        owner = workload("iris", runner="kubernetes").owner
        built.kubernetes.containers["iris-1.0"].state = State.EXITED
        built.kubernetes.emit(owner, "deployment-modified")
        built.kubernetes.drained()
        built.settle()
        assert built.kubernetes.count("observe", "models/iris") > observes
        assert len(built.docker.streams) == 1 and len(built.kubernetes.streams) == 1
    finally:
        built.controller.stop(timeout=WAIT)
