#!/usr/bin/env bash
# Build the control plane the tests run against, once per machine: etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler and kwok (the simulated nodes), from the Go modules
# pinned in tests/cluster/build/ (go.mod, go.sum). No prebuilt binary is downloaded.
#
# The binaries go to a machine-wide cache keyed by the Kubernetes release and a hash of the
# pinning files, so a fresh clone on the same machine (CI's) finds them:
#   ${XDG_CACHE_HOME:-$HOME/.cache}/mlplatform/kube/<release>-<hash>/bin/
# Prints that bin folder on stdout; progress goes to stderr. Go's module and build caches are
# machine-wide too, so a rebuild after a change of the pins compiles only what changed.
# Cold, on 2 cores: about 8 minutes on a quiet machine (9.5 measured while tests ran beside
# it), modules downloaded included; warm: under a second.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
pins="$root/tests/cluster/build"

release=$(sed -n 's#^\tk8s.io/kubernetes \(v[0-9.]*\)$#\1#p' "$pins/go.mod")
[ -n "$release" ] || { echo "kube-build: no k8s.io/kubernetes release in $pins/go.mod" >&2; exit 1; }
# The recipe: bump it when the go build command below changes (the cache key must follow).
recipe=2
hash=$( (cat "$pins/go.mod" "$pins/go.sum" "$pins/tools.go" "$pins/cmd/etcd/main.go"
  echo "recipe $recipe") | sha256sum | cut -c1-12)
cache="${XDG_CACHE_HOME:-$HOME/.cache}/mlplatform/kube/$release-$hash"
programs=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok)

complete() {
  for program in "${programs[@]}"; do [ -x "$cache/bin/$program" ] || return 1; done
}
if complete; then
  echo "$cache/bin"
  exit 0
fi
command -v go >/dev/null || { echo "kube-build: the go command is missing" >&2; exit 1; }

# What `kubectl version` and /version report (the variables Kubernetes' own build sets).
minor=$(echo "$release" | cut -d. -f2)
version_flags=""
for package in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  version_flags+=" -X $package.gitVersion=$release -X $package.gitMajor=1"
  version_flags+=" -X $package.gitMinor=$minor -X $package.gitTreeState=clean"
  version_flags+=" -X $package.buildDate=1970-01-01T00:00:00Z"
done

echo "kube-build: building Kubernetes $release, etcd and kwok into $cache/bin" >&2
echo "kube-build: (cold on 2 cores: about 8 minutes; later runs use the cache)" >&2
start=$(date +%s)
partial="$cache/bin.partial.$$"
mkdir -p "$partial"
trap 'rm -rf "$partial"' EXIT
(
  cd "$pins"
  go build -buildvcs=false -trimpath -ldflags="-s -w $version_flags" -o "$partial/" \
    k8s.io/kubernetes/cmd/kube-apiserver \
    k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler \
    sigs.k8s.io/kwok/cmd/kwok \
    ./cmd/etcd
)
rm -rf "$cache/bin"
mv "$partial" "$cache/bin"
trap - EXIT
echo "kube-build: done in $(($(date +%s) - start)) s" >&2
echo "$cache/bin"
