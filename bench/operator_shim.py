"""``mlplatform`` with kopf's default login handlers, for the operator bench.

``mlplatform.kube.main.run`` builds a plain ``kopf.OperatorRegistry()``, which has no login
handler (kopf adds ``login_via_client`` only to ``SmartOperatorRegistry``, its default
registry), so the real process cannot authenticate with a kubeconfig: "Ran out of valid
credentials". Until that is fixed in the operator, the bench runs the unchanged CLI with the
registry class swapped for kopf's smart one (a subclass that only adds the fallback logins).
When the operator registers a login handler itself, the swap changes nothing.
"""

from __future__ import annotations

import sys

import kopf
from kopf._core.intents import registries

from mlplatform import cli

if __name__ == "__main__":
    kopf.OperatorRegistry = registries.SmartOperatorRegistry  # type: ignore[misc,attr-defined,unused-ignore]
    sys.exit(cli.main(sys.argv[1:]))
