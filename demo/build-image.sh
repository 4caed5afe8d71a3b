#!/usr/bin/env bash
# Build the demo model image (mlplatform-demo/iris:1) offline, without a registry.
#
# 1. Base: a Debian bookworm root filesystem with python3 (debootstrap --variant=minbase,
#    from the Debian mirror, about a minute), cached as .cache/demo/bookworm-python3.tar and
#    imported as mlplatform-demo/python3:bookworm (docker import). Done once per machine.
# 2. Model: demo/iris/Dockerfile FROM that base (the classic builder uses the local image,
#    nothing is pulled) copies the server and the iris data and fits the tree. Seconds.
# Skipped when the image exists with the same source hash label. Environment:
#   DEMO_IMAGE (default mlplatform-demo/iris:1), DEBIAN_MIRROR (default: the Debian archive
#   this machine's apt already uses, from /etc/apt/sources.list and sources.list.d/*.list or
#   *.sources (deb822); else http://deb.debian.org/debian), DEMO_REBUILD=1 to build even when
#   the label matches. Where only a local mirror is reachable, the machine's own is the one
#   that works.
#   DEMO_BASE_ONLY=1 stops after step 1 (scripts/build-image.sh builds the operator image on
#   the same base).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

image=${DEMO_IMAGE:-mlplatform-demo/iris:1}
base=mlplatform-demo/python3:bookworm
# The first Debian archive (not the security archive) that apt is configured with, under
# ${APT_ROOT} (default /, for tests).
system_mirror() {
  apt_mirrors | head -n 1
}
apt_mirrors() {
  local apt=${APT_ROOT:-}/etc/apt files=() f
  for f in "$apt/sources.list" "$apt"/sources.list.d/*.list; do
    [ -r "$f" ] && files+=("$f")
  done
  if [ "${#files[@]}" -gt 0 ]; then
    # One-line format: deb [options] URI suite components...
    awk '$1 == "deb" {
           i = 2; if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
           if ($i ~ /^https?:\/\// && $i ~ /debian\/?$/) { print $i; exit }
         }' "${files[@]}"
  fi
  for f in "$apt"/sources.list.d/*.sources; do
    [ -r "$f" ] || continue
    # deb822: stanzas separated by blank lines; "URIs:" may list several.
    awk 'BEGIN { RS = ""; FS = "\n" }
         {
           deb = 0; uris = ""
           for (n = 1; n <= NF; n++) {
             if ($n ~ /^Types:/ && $n ~ /[[:space:]]deb([[:space:]]|$)/) deb = 1
             if ($n ~ /^URIs:/) { uris = $n; sub(/^URIs:[[:space:]]*/, "", uris) }
           }
           if (!deb) next
           split(uris, list, /[[:space:]]+/)
           for (u in list) if (list[u] ~ /^https?:\/\// && list[u] ~ /debian\/?$/) { print list[u]; exit }
         }' "$f"
  done
}
mirror=${DEBIAN_MIRROR:-$(system_mirror)}
mirror=${mirror:-http://deb.debian.org/debian}
cache=$root/.cache/demo
tarball=$cache/bookworm-python3.tar
label=dev.mlplatform.demo.source

source_hash=$(cat demo/build-image.sh demo/iris/Dockerfile demo/iris/iris.csv \
  demo/iris/model.py demo/iris/server.py | sha256sum | cut -c1-16)
current=$(docker image inspect --format "{{ index .Config.Labels \"$label\" }}" "$image" \
  2>/dev/null || true)
if [ "$current" = "$source_hash" ] && [ "${DEMO_REBUILD:-0}" != 1 ] \
    && [ "${DEMO_BASE_ONLY:-0}" != 1 ]; then
  echo "build-image: $image is up to date ($source_hash)"
  exit 0
fi

if ! docker image inspect "$base" >/dev/null 2>&1; then
  if [ ! -s "$tarball" ]; then
    command -v debootstrap >/dev/null 2>&1 || {
      if [ "$(id -u)" = 0 ]; then
        echo "build-image: installing debootstrap"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null \
          || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; }
      else
        echo "build-image: debootstrap is missing (apt-get install debootstrap, as root)" >&2
        exit 1
      fi
    }
    [ "$(id -u)" = 0 ] || { echo "build-image: debootstrap needs root" >&2; exit 1; }
    mkdir -p "$cache"
    rootfs=$(mktemp -d "$cache/rootfs.XXXXXX")
    trap 'rm -rf "$rootfs"' EXIT
    echo "build-image: debootstrap bookworm with python3 from $mirror (about a minute)"
    debootstrap --variant=minbase --include=python3 bookworm "$rootfs" "$mirror" \
      >"$cache/debootstrap.log" 2>&1 || {
        echo "build-image: debootstrap failed; see $cache/debootstrap.log" >&2
        tail -n 20 "$cache/debootstrap.log" >&2
        exit 1
      }
    # What a server needs no copy of: downloaded packages, apt lists, docs, man pages.
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
      "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/*
    tar -C "$rootfs" -cf "$tarball.partial" . && mv "$tarball.partial" "$tarball"
    rm -rf "$rootfs"
    trap - EXIT
  fi
  echo "build-image: importing $base from $tarball"
  docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["python3"]' \
    "$tarball" "$base" >/dev/null
fi
if [ "${DEMO_BASE_ONLY:-0}" = 1 ]; then
  echo "build-image: $base ready"
  exit 0
fi

echo "build-image: building $image"
# The classic builder (DOCKER_BUILDKIT=0) uses the local base image as is; Debian's docker.io
# has no buildx. Its output is shown only when the build fails.
if ! output=$(DOCKER_BUILDKIT=0 docker build --label "$label=$source_hash" \
    --build-arg "BASE=$base" -t "$image" demo/iris 2>&1); then
  echo "$output" >&2
  exit 1
fi
echo "build-image: $image ready ($source_hash)"
