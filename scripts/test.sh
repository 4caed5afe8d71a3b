#!/usr/bin/env bash
# The test command (README): set everything up on a fresh machine, then run the checks
# and the whole test suite against a real Docker engine.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
"$root/scripts/setup.sh"
# Helm, built from Go modules once per machine (tests/unit/test_helm_chart.py). Without it
# the other checks still run; the chart's tests then fail, saying why.
"$root/scripts/helm-build.sh" >/dev/null \
  || echo "test: helm could not be built (scripts/helm-build.sh); the chart's tests will fail" >&2

echo "== ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "== mypy --strict"
.venv/bin/mypy
echo "== import-linter"
.venv/bin/lint-imports
echo "== pytest"
.venv/bin/pytest "$@"
