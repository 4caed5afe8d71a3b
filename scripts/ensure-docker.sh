#!/usr/bin/env bash
# Make sure a Docker engine answers. When none does and we are root: install Debian's
# docker.io (and busybox-static, used to build the test and demo images) and start dockerd.
# Otherwise say exactly what is missing. Never touches an engine that already answers.
set -euo pipefail

engine_answers() { docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

if command -v docker >/dev/null 2>&1 && engine_answers; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "ensure-docker: no Docker engine answers at ${DOCKER_HOST:-/var/run/docker.sock}," >&2
  echo "ensure-docker: and I am not root, so I cannot install or start one." >&2
  echo "ensure-docker: start dockerd (or point DOCKER_HOST at an engine) and run again." >&2
  exit 1
fi
need=()
command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
[ -x /bin/busybox ] && /bin/busybox --list 2>/dev/null | grep -qx httpd || need+=(busybox-static)
if [ ${#need[@]} -gt 0 ]; then
  echo "ensure-docker: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null
fi
if ! engine_answers; then
  echo "ensure-docker: starting dockerd (log: /var/log/mlplatform-dockerd.log)"
  nohup dockerd >/var/log/mlplatform-dockerd.log 2>&1 &
  for _ in $(seq 1 120); do
    engine_answers && break
    sleep 0.5
  done
fi
if ! engine_answers; then
  echo "ensure-docker: dockerd did not answer within 60 s; see /var/log/mlplatform-dockerd.log" >&2
  tail -n 20 /var/log/mlplatform-dockerd.log >&2 || true
  exit 1
fi
