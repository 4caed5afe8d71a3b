"""The real control plane for the tests: ``scripts/kube-up.sh``, the operator's manifests, tokens.

kube-apiserver, etcd, kube-controller-manager and kube-scheduler built from source, with
kwok's simulated nodes (``docs/kubernetes-runner.md``, "Tested against"). A test session
starts it once (``ControlPlane.up``) when it does not answer yet, and stops what it started
at the end; a control plane someone already runs (``scripts/kube-up.sh`` by hand) is used
as it is and left running.

What a session installs, as an admin would (``install``): everything ``kubectl kustomize
manifests`` renders except the operator's own Deployment and webhook Service (the operator
under test runs outside the cluster, as a process of the test) and the webhook
configurations, which point at that Service: a test that needs the webhook registers its
own, pointing at the process (``Webhook``). The peering CRDs come from the peering overlay.

The operator under test authenticates with a token of its own ServiceAccount
(``operator_kubeconfig``), so the real RBAC authorizer enforces the ClusterRole we ship.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import kubernetes
import yaml

ROOT = Path(__file__).resolve().parents[2]
OPERATOR_NAMESPACE = "mlplatform-system"
OPERATOR_ACCOUNT = "mlplatform-operator"
# Rendered by the tests' own installation instead (see the module docstring).
_NOT_INSTALLED = {
    "Deployment",
    "Service",
    "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration",
}
T = TypeVar("T")


def wait_until(
    check: Callable[[], T | None], *, timeout: float, what: str, every: float = 0.2
) -> T:
    """Poll ``check`` until it returns something other than ``None``/``False``; return it."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value is not None and value is not False:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what}: not within {timeout:g} s")
        time.sleep(every)


@dataclass(frozen=True)
class ControlPlane:
    """A running control plane: its state folder, admin kubeconfig, and whether this session
    started it (then it stops it too)."""

    state: Path
    port: int
    started_here: bool

    @classmethod
    def up(cls, state: Path | None = None, port: int | None = None) -> ControlPlane:
        """Start the control plane of ``state`` (default: ``scripts/kube-up.sh``'s) on
        ``port`` unless it already answers."""
        state = state or default_state_folder()
        port = port or int(os.environ.get("MLPLATFORM_KUBE_PORT", "16443"))
        admin = state / "admin.kubeconfig"
        answering = admin.exists() and _answers(admin)
        done = subprocess.run(
            [str(ROOT / "scripts" / "kube-up.sh")],
            capture_output=True,
            text=True,
            check=False,
            env=_environ(state, port),
        )
        if done.returncode != 0:
            raise RuntimeError(f"scripts/kube-up.sh failed:\n{done.stderr[-4000:]}")
        line = done.stdout.strip().splitlines()[-1]
        assert line == f"export KUBECONFIG={admin}", done.stdout
        return cls(state=state, port=port, started_here=not answering)

    def down(self, *, wipe: bool = False) -> None:
        """Stop the control plane if this session started it (``wipe``: and its data)."""
        if self.started_here:
            subprocess.run(
                [str(ROOT / "scripts" / "kube-down.sh"), *(["--wipe"] if wipe else [])],
                check=False,
                env=_environ(self.state, self.port),
            )

    @property
    def kubeconfig(self) -> Path:
        return self.state / "admin.kubeconfig"

    def restart(self, component: str) -> None:
        """Kill one process of the control plane (as a crash would) and start it again with
        the same command line; returns once the API server answers again."""
        state = self.state
        pid_file = state / "run" / f"{component}.pid"
        pid = int(pid_file.read_text())
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:-1]
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: not Path(f"/proc/{pid}").exists() or _zombie(pid), timeout=30,
                   what=f"{component} gone")  # fmt: skip

        def started() -> bool:
            # A port the dead process held can take a moment to be free: start it again.
            with (state / "logs" / f"{component}.log").open("ab") as log:
                process = subprocess.Popen(
                    [part.decode() for part in command],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            try:
                process.wait(timeout=3)
            except subprocess.TimeoutExpired:
                pid_file.write_text(f"{process.pid}\n")
                return True
            return False

        wait_until(started, timeout=60, what=f"{component} started again", every=1)
        wait_until(lambda: _answers(self.kubeconfig), timeout=120, what=f"{component} back")

    @property
    def config(self) -> dict[str, Any]:
        loaded: dict[str, Any] = yaml.safe_load(self.kubeconfig.read_text())
        return loaded

    @property
    def server(self) -> str:
        return str(self.config["clusters"][0]["cluster"]["server"])

    @property
    def ca_file(self) -> Path:
        return Path(self.config["clusters"][0]["cluster"]["certificate-authority"])

    def kubectl(
        self,
        *args: str,
        stdin: str | None = None,
        kubeconfig: Path | None = None,
        check: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        """``kubectl ARGS`` as the admin (or ``kubeconfig``); raises on failure if ``check``."""
        done = subprocess.run(
            ["kubectl", "--kubeconfig", str(kubeconfig or self.kubeconfig), *args],
            input=stdin,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        if check and done.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)}: {done.stderr.strip()}")
        return done

    def apply(
        self, objects: Sequence[Mapping[str, Any]], *, kubeconfig: Path | None = None
    ) -> None:
        """``kubectl apply --server-side`` of these objects."""
        self.kubectl(
            "apply", "--server-side", "--force-conflicts", "-f", "-",
            stdin=yaml.safe_dump_all(list(objects)), kubeconfig=kubeconfig,
        )  # fmt: skip

    def api_client(self, kubeconfig: Path | None = None) -> kubernetes.client.ApiClient:
        """An official client as the admin (or as ``kubeconfig`` says)."""
        configuration = kubernetes.client.Configuration()
        kubernetes.config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=str(kubeconfig or self.kubeconfig), client_configuration=configuration
        )
        return kubernetes.client.ApiClient(configuration)

    def install(self) -> None:
        """The CRD, namespace and RBAC of ``manifests/``, and kopf's peering CRDs."""
        rendered = self.kubectl("kustomize", str(ROOT / "manifests")).stdout
        objects = [doc for doc in yaml.safe_load_all(rendered) if doc]
        self.apply([obj for obj in objects if obj["kind"] not in _NOT_INSTALLED])
        peering = ROOT / "manifests" / "components" / "peering" / "peering-crds.yaml"
        self.apply([doc for doc in yaml.safe_load_all(peering.read_text()) if doc])
        for crd in ("mlmodels.mlplatform.dev",):
            self.kubectl("wait", "--for=condition=Established", f"crd/{crd}", "--timeout=60s")

    def operator_kubeconfig(self, path: Path, *, account: str = OPERATOR_ACCOUNT) -> Path:
        """A kubeconfig with a new token of the operator's ServiceAccount (kubectl create token)."""
        token = self.kubectl(
            "create", "token", account, "-n", OPERATOR_NAMESPACE, "--duration=24h"
        ).stdout.strip()
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "test",
                    "cluster": {"server": self.server, "certificate-authority": str(self.ca_file)},
                }
            ],
            "users": [{"name": account, "user": {"token": token}}],
            "contexts": [{"name": "operator", "context": {"cluster": "test", "user": account}}],
            "current-context": "operator",
        }
        path.write_text(yaml.safe_dump(config))
        path.chmod(0o600)
        return path

    @contextlib.contextmanager
    def namespace(self, prefix: str = "t") -> Iterator[str]:
        """A namespace of its own for one test, deleted after (without waiting)."""
        name = f"{prefix}-{secrets.token_hex(3)}"
        self.kubectl("create", "namespace", name)
        try:
            yield name
        finally:
            self.kubectl("delete", "namespace", name, "--wait=false", check=False)

    # --- objects ----------------------------------------------------------------------------

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """The object as JSON, ``None`` when it does not exist."""
        done = self.kubectl(
            "get", kind, name, "-n", namespace, "-o", "json", "--ignore-not-found", check=False
        )
        if done.returncode != 0:
            raise RuntimeError(done.stderr.strip())
        if not done.stdout.strip():
            return None
        found: dict[str, Any] = json.loads(done.stdout)
        return found

    def items(self, kind: str, namespace: str, *selector: str) -> list[dict[str, Any]]:
        args = ["get", kind, "-n", namespace, "-o", "json"]
        if selector:
            args += ["-l", ",".join(selector)]
        listed: list[dict[str, Any]] = json.loads(self.kubectl(*args).stdout)["items"]
        return listed

    def wait_for(
        self,
        kind: str,
        namespace: str,
        name: str,
        predicate: Callable[[dict[str, Any]], bool],
        *,
        timeout: float = 60,
        what: str = "",
    ) -> dict[str, Any]:
        """Poll the object until ``predicate`` holds; the last state is in the error otherwise."""
        last: list[dict[str, Any] | None] = [None]

        def check() -> dict[str, Any] | None:
            last[0] = self.get(kind, namespace, name)
            return last[0] if last[0] is not None and predicate(last[0]) else None

        try:
            return wait_until(check, timeout=timeout, what=what or f"{kind} {namespace}/{name}")
        except TimeoutError as error:
            status = (last[0] or {}).get("status")
            raise TimeoutError(f"{error}; last status: {json.dumps(status)[:3000]}") from None

    def wait_gone(self, kind: str, namespace: str, name: str, *, timeout: float = 60) -> None:
        wait_until(
            lambda: self.get(kind, namespace, name) is None,
            timeout=timeout,
            what=f"{kind} {namespace}/{name} gone",
        )

    def events(self, namespace: str, name: str) -> list[dict[str, Any]]:
        """The core/v1 Events about the object ``name`` in ``namespace``, oldest first."""
        events = self.items("events", namespace)
        return [e for e in events if e.get("involvedObject", {}).get("name") == name]


def condition(obj: Mapping[str, Any], kind: str) -> dict[str, Any]:
    """The status condition of that type, ``{}`` when absent."""
    for found in (obj.get("status") or {}).get("conditions") or []:
        if found.get("type") == kind:
            return dict(found)
    return {}


def is_ready(obj: Mapping[str, Any]) -> bool:
    """Ready is True for the object's current generation."""
    ready = condition(obj, "Ready")
    generation = obj["metadata"].get("generation")
    return ready.get("status") == "True" and ready.get("observedGeneration") == generation


def mlmodel(name: str, namespace: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "mlplatform.dev/v1alpha1",
        "kind": "MLModel",
        "metadata": {"name": name, "namespace": namespace},
        "spec": dict(spec),
    }


@dataclass
class OperatorProcess:
    """``mlplatform operator`` as a process of the test, logged to a file; SIGTERM to stop."""

    args: Sequence[str]
    env: Mapping[str, str]
    log: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self) -> OperatorProcess:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "mlplatform", "operator", *self.args],
                env={**os.environ, **self.env},
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        return self

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 40) -> int:
        """Stop it (SIGTERM, or SIGKILL as a crash would); its exit code."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
            raise AssertionError(f"the operator did not stop within {timeout} s") from None


def pem_b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def _environ(state: Path, port: int) -> dict[str, str]:
    return {**os.environ, "MLPLATFORM_KUBE_STATE": str(state), "MLPLATFORM_KUBE_PORT": str(port)}


def default_state_folder() -> Path:
    """Where ``scripts/kube-up.sh`` keeps its control plane (``MLPLATFORM_KUBE_STATE``)."""
    explicit = os.environ.get("MLPLATFORM_KUBE_STATE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "mlplatform" / "kube"


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except OSError:
        return True


def _answers(kubeconfig: Path) -> bool:
    done = subprocess.run(
        ["kubectl", "--kubeconfig", str(kubeconfig), "get", "--raw", "/readyz"],
        capture_output=True,
        check=False,
        timeout=30,
    )
    return done.returncode == 0
