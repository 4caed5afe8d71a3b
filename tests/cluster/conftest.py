"""Fixtures of the suites that run against the real control plane (``scripts/kube-up.sh``).

``control_plane`` is started once per session (or found running) and has the operator's
CRD, namespace and RBAC installed. Each test gets a namespace of its own (``cluster``), and
starts ``mlplatform operator`` processes in it as the operator's ServiceAccount
(``cluster.operator(...)``). At the end of a test its MLModels are deleted while its
operators still run (so finalizers are released as in production), then the operators stop
and the namespace goes.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from mlplatform.kube import certificates
from tests.support.control_plane import ROOT, ControlPlane, OperatorProcess, pem_b64, wait_until
from tests.support.docker_env import DockerEnv, http_get


def free_ports(count: int) -> int:
    """The first of ``count`` consecutive free loopback ports (the control plane takes the
    API server's port and the next five), so that test sessions and a control plane started
    by hand (16443) run side by side."""
    for _ in range(100):
        first = secrets.randbelow(20000) + 20000
        try:
            with contextlib.ExitStack() as held:
                for port in range(first, first + count):
                    sock = held.enter_context(socket.socket())
                    sock.bind(("127.0.0.1", port))
            return first
        except OSError:
            continue
    raise RuntimeError(f"no {count} consecutive free ports on 127.0.0.1")


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    """A control plane of this session's own, new and empty (stopped and wiped at the end);
    with ``MLPLATFORM_KUBE_STATE`` set, that one is used (started if needed) and kept."""
    if os.environ.get("MLPLATFORM_KUBE_STATE"):
        plane = ControlPlane.up()
        wipe = False
    else:
        plane = ControlPlane.up(tmp_path_factory.mktemp("kube"), free_ports(6))
        wipe = True
    try:
        plane.install()
        yield plane
    finally:
        plane.down(wipe=wipe)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def docker_runner_env(env: DockerEnv) -> dict[str, str]:
    """The operator's variables for a Docker runner confined to this test session."""
    return {**env.confined_environ(), "RUNNERS_DOCKER_TIMEOUT": "30"}


@dataclass
class ClusterTest:
    """One test's namespace on the real control plane and the operators it started."""

    plane: ControlPlane
    namespace: str
    folder: Path
    operators: list[OperatorProcess] = field(default_factory=list)
    webhooks: list[str] = field(default_factory=list)
    # A restarted API server refuses requests until its authorizer has read the roles.
    transient_refusals: bool = False

    def operator(
        self,
        env: Mapping[str, str],
        *,
        args: Sequence[str] = (),
        standalone: bool = True,
        namespaces: Sequence[str] | None = None,
        kubeconfig: Path | None = None,
        wait: bool = True,
    ) -> OperatorProcess:
        """Start ``mlplatform operator`` as the operator's ServiceAccount, watching this
        test's namespace (or ``namespaces``); returns once its liveness endpoint answers."""
        index = len(self.operators)
        config = kubeconfig or self.plane.operator_kubeconfig(self.folder / f"op{index}.kubeconfig")
        liveness = f"http://127.0.0.1:{free_port()}/healthz"
        scope: list[str] = []
        for name in namespaces if namespaces is not None else [self.namespace]:
            scope += ["--namespace", name]
        process = OperatorProcess(
            args=[
                *(["--standalone"] if standalone else []),
                *scope,
                "--liveness", liveness, "--metrics-port", "0", "--log-format", "plain",
                "--resync-interval", "30",
                *args,
            ],
            env={"KUBECONFIG": str(config), **env},
            log=self.folder / f"operator-{index}.log",
        ).start()  # fmt: skip
        self.operators.append(process)
        if wait:
            wait_until(
                lambda: http_get(liveness) is not None or _exited(process),
                timeout=60,
                what="the operator's liveness endpoint",
            )
            assert process.running(), process.output()[-3000:]
        return process

    def webhook(self, namespaces: Sequence[str] = ()) -> list[str]:
        """Register the shipped webhooks for this namespace only (or ``namespaces``),
        pointing at an operator on loopback with a CA of its own (``failurePolicy: Fail``);
        the operator's arguments."""
        port = free_port()
        cert_dir = self.folder / "webhook-tls"
        files = certificates.ensure_certificate(cert_dir, names=["127.0.0.1"])
        name = f"mlplatform-test-{self.namespace}"
        rendered = self.plane.kubectl("kustomize", str(ROOT / "manifests")).stdout
        for obj in yaml.safe_load_all(rendered):
            if not obj or not obj["kind"].endswith("WebhookConfiguration"):
                continue
            obj["metadata"] = {"name": name, "labels": {"mlplatform.dev/test": "true"}}
            for hook in obj["webhooks"]:
                path = hook["clientConfig"]["service"]["path"]
                hook["clientConfig"] = {
                    "url": f"https://127.0.0.1:{port}{path}",
                    "caBundle": pem_b64(files.cafile),
                }
                hook["failurePolicy"] = "Fail"
                hook["namespaceSelector"] = {
                    "matchExpressions": [
                        {
                            "key": "kubernetes.io/metadata.name",
                            "operator": "In",
                            "values": list(namespaces or [self.namespace]),
                        }
                    ]
                }
            self.plane.apply([obj])
            self.webhooks.append(f"{obj['kind'].lower()}/{name}")
        return [
            "--webhook-port", str(port), "--webhook-host", "127.0.0.1",
            "--webhook-cert-dir", str(cert_dir),
        ]  # fmt: skip

    def logs(self) -> str:
        return "\n".join(f"--- {op.log.name}\n{op.output()[-6000:]}" for op in self.operators)

    def close(self) -> None:
        # The MLModels go first, while the operators run (their finalizers are released).
        self.plane.kubectl(
            "delete", "mlmodels", "--all", "-n", self.namespace, "--timeout=60s", check=False
        )
        for process in self.operators:
            if process.running():
                with contextlib.suppress(AssertionError):
                    process.stop()
        for webhook in self.webhooks:
            self.plane.kubectl("delete", webhook, "--ignore-not-found", check=False)


def _exited(process: OperatorProcess) -> bool:
    return not process.running()


@pytest.fixture
def cluster(
    control_plane: ControlPlane, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[ClusterTest]:
    with control_plane.namespace("t") as namespace:
        test = ClusterTest(control_plane, namespace, tmp_path)
        try:
            yield test
        finally:
            test.close()
            # The shipped ClusterRole is enough for everything the test made it do.
            refused = [line for line in test.logs().splitlines() if "Forbidden" in line]
            assert test.transient_refusals or not refused, "\n".join(refused[:5])
            report = getattr(request.node, "rep_call", None)
            if report is not None and report.failed:
                print(test.logs())  # shown with the failure


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    setattr(item, f"rep_{report.when}", report)
