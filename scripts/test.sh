#!/usr/bin/env bash
# The test command (README): set everything up on a fresh machine, then run the checks
# and the whole test suite against a real Docker engine.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
"$root/scripts/setup.sh"

echo "== ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "== mypy --strict"
.venv/bin/mypy
echo "== import-linter"
.venv/bin/lint-imports
echo "== pytest"
.venv/bin/pytest "$@"
