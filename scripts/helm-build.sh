#!/usr/bin/env bash
# Build Helm from Go modules (helm.sh/helm/v4 at the release tests/helm/build/go.mod pins, its
# dependencies pinned by go.sum) and cache it machine-wide by version:
#   ${XDG_CACHE_HOME:-$HOME/.cache}/mlplatform/helm/<version>/helm
# Prints that path. Built once per version (6 min on 2 cores under load, docs/install.md);
# later calls only print it. No registry serves a helm binary here; the Go module proxy
# serves the sources. scripts/test.sh calls this before the tests (tests/unit/test_helm_chart.py).
#   --path   print the path without building (exit 1 when it is not built yet)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
module=$root/tests/helm/build
version=$(awk '$1 == "require" && $2 == "helm.sh/helm/v4" { print $3 }' "$module/go.mod")
[ -n "$version" ] || { echo "helm-build: no helm.sh/helm/v4 in $module/go.mod" >&2; exit 1; }
dir=${XDG_CACHE_HOME:-$HOME/.cache}/mlplatform/helm/$version
binary=$dir/helm

if [ "${1:-}" = --path ]; then
  echo "$binary"
  [ -x "$binary" ]
  exit
fi
if [ -x "$binary" ]; then
  echo "$binary"
  exit 0
fi
command -v go >/dev/null 2>&1 || { echo "helm-build: go is needed (https://go.dev/dl)" >&2; exit 1; }
mkdir -p "$dir"
# One build at a time per version, whoever asks (worktrees share the cache).
exec 9>"$dir/.lock"
flock 9
if [ ! -x "$binary" ]; then
  echo "helm-build: building helm $version from Go modules (once per machine)" >&2
  started=$(date +%s)
  (
    cd "$module"
    CGO_ENABLED=0 nice -n 10 go build -trimpath -buildvcs=false -o "$binary.partial" \
      -ldflags "-s -w -X helm.sh/helm/v4/internal/version.version=$version \
        -X helm.sh/helm/v4/internal/version.metadata= \
        -X helm.sh/helm/v4/internal/version.gitTreeState=clean" \
      helm.sh/helm/v4/cmd/helm
  ) >"$dir/build.log" 2>&1 || {
    echo "helm-build: go build failed; see $dir/build.log" >&2
    tail -n 20 "$dir/build.log" >&2
    exit 1
  }
  mv "$binary.partial" "$binary"
  echo "helm-build: built in $(( $(date +%s) - started )) s" >&2
fi
echo "$binary"
