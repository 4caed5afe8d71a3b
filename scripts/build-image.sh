#!/usr/bin/env bash
# Build the operator image (mlplatform-operator:<version>) offline: no container registry is
# needed (none is reachable on these machines). Its entrypoint is `mlplatform`:
#   docker run -i --rm mlplatform-operator:0.1.0 validate - < manifests.yaml     (CI)
#   CMD operator                                                               (the Deployment)
# It runs as user 65532 (non-root); the Docker runner's Deployment runs it as root without
# capabilities to open the node's Docker socket (manifests/base/deployment.yaml).
#
# 1. Base: the project's Debian bookworm root filesystem with python3 (debootstrap, cached,
#    imported once per engine as mlplatform-demo/python3:bookworm by demo/build-image.sh).
# 2. The package and its dependencies, at the versions .venv was tested with (pip freeze as
#    constraints), installed for the base's Python and glibc (pip --target --platform, binary
#    wheels only) into a folder on this machine: pip is the only thing that downloads, from
#    the package index or pip's cache.
# 3. docker build (the classic builder, FROM the local base: nothing is pulled) copies that
#    folder to /usr/local/lib/python3.X/dist-packages and compiles it once (the root file
#    system is read-only in the cluster).
# Skipped when the image exists with the same content hash label (the package's sources,
# pyproject.toml, this script, the constraints and the base image). Environment:
#   OPERATOR_IMAGE (default mlplatform-operator:<version from pyproject.toml>),
#   OPERATOR_REBUILD=1 to build even when the label matches; DEBIAN_MIRROR as for
#   demo/build-image.sh. Push it to your registry: docs/install.md.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' pyproject.toml)
image=${OPERATOR_IMAGE:-mlplatform-operator:$version}
base=mlplatform-demo/python3:bookworm
label=dev.mlplatform.operator.source
python=$root/.venv/bin/python
cache=$root/.cache/operator-image

[ -x "$python" ] || { echo "build-image: no .venv; run scripts/setup.sh first" >&2; exit 1; }
command -v docker >/dev/null 2>&1 || { echo "build-image: docker is needed" >&2; exit 1; }

if ! docker image inspect "$base" >/dev/null 2>&1; then
  DEMO_BASE_ONLY=1 "$root/demo/build-image.sh"
fi
base_id=$(docker image inspect --format '{{.Id}}' "$base")

mkdir -p "$cache"
# The runtime dependencies at the versions tested (the test tools are never installed: only
# what the package requires is resolved, these only pin it).
"$python" -m pip freeze --exclude-editable --disable-pip-version-check >"$cache/constraints.txt"

# The package's sources as a clean copy (no egg-info, no caches): what is hashed and built.
src=$cache/src
rm -rf "$src"
mkdir -p "$src"
cp pyproject.toml README.md LICENSE "$src/"
tar -c --exclude='*.egg-info' --exclude='__pycache__' --exclude='*.pyc' operator | tar -x -C "$src"
source_hash=$(
  {
    echo "$base_id"
    cat scripts/build-image.sh "$cache/constraints.txt"
    (cd "$src" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
  } | sha256sum | cut -c1-16
)
current=$(docker image inspect --format "{{ index .Config.Labels \"$label\" }}" "$image" \
  2>/dev/null || true)
if [ "$current" = "$source_hash" ] && [ "${OPERATOR_REBUILD:-0}" != 1 ]; then
  rm -rf "$src"
  echo "build-image: $image is up to date ($source_hash)"
  exit 0
fi

# The base's Python and C library: the wheels must be the ones it can load.
read -r py_version glibc < <(docker run --rm --network none --name "mlplatform-build-probe-$$" \
  --label dev.mlplatform.build=operator-image "$base" python3 -c \
  'import platform, sys; print("%d.%d" % sys.version_info[:2], platform.libc_ver()[1])')
py_tag=cp${py_version/./}
platforms=()
for minor in $(seq 17 "${glibc#2.}"); do
  platforms+=(--platform "manylinux_2_${minor}_x86_64")
done
platforms+=(--platform manylinux2014_x86_64 --platform linux_x86_64)

context=$cache/context
rm -rf "$context" "$cache/wheel"
mkdir -p "$context/site" "$cache/wheel"
echo "build-image: installing mlplatform $version for Python $py_version (glibc $glibc)"
"$python" -m pip wheel --quiet --disable-pip-version-check --no-deps --wheel-dir "$cache/wheel" "$src" \
  >"$cache/pip.log" 2>&1 || { cat "$cache/pip.log" >&2; exit 1; }
"$python" -m pip install --quiet --disable-pip-version-check --no-compile \
  --target "$context/site" --constraint "$cache/constraints.txt" \
  --only-binary=:all: --implementation cp --python-version "$py_version" --abi "$py_tag" \
  "${platforms[@]}" "$cache"/wheel/mlplatform-*.whl >>"$cache/pip.log" 2>&1 \
  || { cat "$cache/pip.log" >&2; exit 1; }
# Console scripts written by pip point at this machine's interpreter: the image has its own.
rm -rf "$context/site/bin"

cat >"$context/mlplatform" <<'EOF'
#!/usr/bin/python3
import sys

from mlplatform.cli import main

sys.exit(main())
EOF
chmod 755 "$context/mlplatform"
cat >"$context/Dockerfile" <<EOF
FROM $base
COPY site /usr/local/lib/python$py_version/dist-packages
COPY mlplatform /usr/local/bin/mlplatform
# Compiled once here (unchecked hashes: the files never change); the cluster mounts the root
# file system read-only, and a pod must not compile on every start.
RUN python3 -m compileall -q --invalidation-mode unchecked-hash \\
      /usr/local/lib/python$py_version/dist-packages \\
    && mlplatform version
ENV PYTHONUNBUFFERED=1 ENVIRONMENT=production
USER 65532:65532
WORKDIR /tmp
ENTRYPOINT ["/usr/local/bin/mlplatform"]
CMD ["operator"]
LABEL org.opencontainers.image.title=mlplatform-operator \\
      org.opencontainers.image.version=$version \\
      org.opencontainers.image.licenses=Apache-2.0 \\
      $label=$source_hash
EOF

echo "build-image: building $image"
if ! output=$(DOCKER_BUILDKIT=0 docker build --network none -t "$image" "$context" 2>&1); then
  echo "$output" >&2
  exit 1
fi
rm -rf "$context" "$cache/wheel" "$src"
echo "build-image: $image ready ($source_hash)"
