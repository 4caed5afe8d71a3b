"""``mlplatform operator`` as a process: KUBECONFIG honoured, liveness and metrics served."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.docker_env import DockerEnv, http_get
from tests.support.images import TestImages
from tests.support.kube_cluster import free_port, kube_cluster, mlmodel, until

pytestmark = pytest.mark.docker


async def test_the_operator_command_runs_models_from_the_kubeconfig_and_serves_probes(
    docker_env: DockerEnv, test_images: TestImages, tmp_path: Path
) -> None:
    liveness, metrics = free_port(), free_port()
    async with kube_cluster() as cluster:
        kubeconfig = cluster.write_kubeconfig(tmp_path / "kubeconfig")
        settings = docker_env.settings()
        env = {
            **os.environ,
            "KUBECONFIG": str(kubeconfig),
            "RUNNERS_DOCKER_ENABLED": "true",
            "RUNNERS_DOCKER_NETWORK": settings.runners_docker_network,
            "MLPLATFORM_CONTROLLER": settings.controller,
            "STORAGE_DIR": str(settings.storage_dir),
            "DATA_DIR": str(settings.data_dir),
            "MLMODELS_DIR": str(settings.mlmodels_dir),
        }
        command = [
            sys.executable, "-m", "mlplatform", "operator", "--standalone",
            "--liveness", f"http://127.0.0.1:{liveness}/healthz",
            "--metrics-port", str(metrics), "--log-format", "json",
        ]  # fmt: skip
        process = subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        try:
            spec = {
                "id": docker_env.model_id("cmd"),
                "container": {"image": test_images.http, "ports": [8080]},
            }
            await cluster.create(mlmodel("cmd", namespace="models", spec=spec))
            obj = await cluster.wait_for_condition("models", "cmd", "Ready", timeout=60)
            assert obj["status"]["observedGeneration"] == 1
            await until(
                lambda: http_get(f"http://127.0.0.1:{liveness}/healthz") is not None,
                timeout=20,
                what="the liveness endpoint",
            )
            exposed = http_get(f"http://127.0.0.1:{metrics}/metrics") or ""
            assert 'mlplatform_models{phase="Running"} 1.0' in exposed
            assert 'mlplatform_reconcile_total{result="ok"}' in exposed
        finally:
            process.send_signal(signal.SIGTERM)
            output, _ = process.communicate(timeout=30)
            print(output.decode(errors="replace")[-5000:])  # shown when the test fails
        assert process.returncode == 0, output.decode()[-3000:]
        assert output.lstrip().startswith(b"{")  # JSON log lines
