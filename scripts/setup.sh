#!/usr/bin/env bash
# Set up what the project needs on a fresh machine: .venv with the package and its test
# extras, Debian's Lua interpreters (the Argo CD health script's tests), a Docker engine that
# answers, and the Kubernetes control plane built from source (needs the go command). Safe to
# run again; does only what is missing.
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
# lua5.4, and lua5.1 as Argo CD's gopher-lua speaks: tests/unit/test_gitops_health.py runs
# manifests/argocd/mlmodel-health.lua in both.
lua=()
for interpreter in lua5.4 lua5.1; do
  command -v "$interpreter" >/dev/null 2>&1 || lua+=("$interpreter")
done
if [ ${#lua[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "setup: ${lua[*]} missing and I am not root: apt-get install ${lua[*]}" >&2
    exit 1
  fi
  echo "setup: installing ${lua[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq "${lua[@]}" >/dev/null \
    || { apt-get update -qq && apt-get install -y -qq "${lua[@]}" >/dev/null; }
fi
"$root/scripts/ensure-docker.sh"
# The control plane the cluster tests run against, built from Go modules once per machine
# (cached outside the clone; see scripts/kube-build.sh).
"$root/scripts/kube-build.sh" >/dev/null
