#!/usr/bin/env bash
# The README's main job: set up what is missing (.venv, a Docker engine, the demo image),
# then run the example manifests with `mlplatform local` until Ctrl-C. Extra arguments go to
# `mlplatform local` (e.g. --once). The models keep running after Ctrl-C; remove them with
#   ./scripts/demo.sh --down   (the same settings as the run: the Docker runner enabled, ...)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

"$root/scripts/setup.sh"
"$root/demo/build-image.sh"

export RUNNERS_DOCKER_ENABLED=true
# Debug ports: the model with `debug: true` (iris) gets its port published on 127.0.0.1 from here.
export RUNNERS_DOCKER_HOST_PORT_DEBUG=${RUNNERS_DOCKER_HOST_PORT_DEBUG:-7000}
export DATA_DIR=${DATA_DIR:-$root/.data}
export MLMODELS_DIR=${MLMODELS_DIR:-$root/.mlmodels}
export STORAGE_DIR=${STORAGE_DIR:-$root/.storage}
mkdir -p "$DATA_DIR" "$MLMODELS_DIR" "$STORAGE_DIR"

port=$RUNNERS_DOCKER_HOST_PORT_DEBUG
cat >&2 <<MSG

demo: running manifests/examples/local with mlplatform local (Ctrl-C stops watching; the
demo: model keeps running). Once iris is Running and Ready, from another terminal:

  curl -s -X POST http://127.0.0.1:$port/predict -d '{"features": [5.1, 3.5, 1.4, 0.2]}'

demo: remove it with: ./scripts/demo.sh --down

MSG
exec .venv/bin/mlplatform local manifests/examples/local "$@"
