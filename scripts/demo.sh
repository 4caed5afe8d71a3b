#!/usr/bin/env bash
# The README's main job: set up what is missing, then check the example manifests.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
"$root/scripts/setup.sh"
exec .venv/bin/mlplatform validate manifests/examples
