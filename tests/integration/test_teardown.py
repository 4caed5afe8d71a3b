"""Teardown stops containers together, each within its grace period (real engine)."""

from __future__ import annotations

import time

from tests.support.local_cli import LocalCli

GRACE = 5
# busybox httpd as PID 1 has no SIGTERM handler: the kernel ignores the signal, so every stop
# waits out the whole grace period, as for many real servers.
IGNORES_SIGTERM = ["httpd", "-f", "-p", "8080", "-h", "/www"]
MODELS = 20


def test_down_of_20_models_takes_at_most_two_grace_periods(local: LocalCli) -> None:
    names = [f"down{i}" for i in range(MODELS)]
    for name in names:
        local.write(
            name,
            container={"command": IGNORES_SIGTERM, "terminationGracePeriodSeconds": GRACE},
        )
    started = local.run("--once", "--timeout", "120", timeout=180)
    assert started.returncode == 0, started.stdout + started.stderr
    assert set(local.containers()) == local.ids(*names)

    begun = time.monotonic()
    down = local.run("--down", timeout=180)
    took = time.monotonic() - begun

    assert down.returncode == 0, down.stderr
    assert local.by_model(running=False) == {}
    # At least one grace period: the stops waited for the servers (the spec's 5 s, not
    # Docker's 10 s default); at most two: they ran together, not one after another.
    assert GRACE <= took <= 2 * GRACE, f"--down of {MODELS} models took {took:.1f}s"
