#!/usr/bin/env bash
# Set up what the project needs on a fresh machine: .venv with the package and its test
# extras, a Docker engine that answers, and the Kubernetes control plane built from source
# (needs the go command). Safe to run again; does only what is missing.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$python" -m venv .venv
fi
stamp=.venv/.mlplatform-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "setup: installing mlplatform[test] into .venv"
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -e ".[test]"
  touch "$stamp"
fi
"$root/scripts/ensure-docker.sh"
# The control plane the cluster tests run against, built from Go modules once per machine
# (cached outside the clone; see scripts/kube-build.sh).
"$root/scripts/kube-build.sh" >/dev/null
