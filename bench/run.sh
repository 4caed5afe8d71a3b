#!/usr/bin/env bash
# The bench in one command: set up .venv and the Docker engine, install the bench extra
# (matplotlib), build the test images, then measure. Usage: ./bench/run.sh [--quick] [...]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/setup.sh
if ! .venv/bin/python -c "import matplotlib" 2>/dev/null; then
  echo "bench: installing mlplatform[bench] into .venv"
  .venv/bin/python -m pip install --quiet -e '.[bench]'
fi
exec .venv/bin/python -m bench.run "$@"
