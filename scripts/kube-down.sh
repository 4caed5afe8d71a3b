#!/usr/bin/env bash
# Stop the control plane scripts/kube-up.sh started, and only that: each process by the pid
# kube-up recorded, and only while that pid still runs a program of ours. --wipe also removes
# its state folder (etcd data, certificates, kubeconfigs, logs).
set -euo pipefail
state=${MLPLATFORM_KUBE_STATE:-${XDG_STATE_HOME:-$HOME/.local/state}/mlplatform/kube}
run="$state/run"
wipe=false
case "${1:-}" in
  --wipe) wipe=true ;;
  "") ;;
  *) echo "usage: kube-down.sh [--wipe]" >&2; exit 2 ;;
esac

ours() { # pid name: the pid still runs the program kube-up started under that name
  [ -r "/proc/$1/cmdline" ] && tr '\0' '\n' <"/proc/$1/cmdline" | head -n1 | grep -q "/$2\$"
}
# The reverse of the start order: the nodes and controllers first, etcd last.
for name in kwok kube-scheduler kube-controller-manager kube-apiserver etcd; do
  file="$run/$name.pid"
  [ -f "$file" ] || continue
  pid=$(cat "$file")
  if ours "$pid" "$name"; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$file"
done
if $wipe; then
  rm -rf "$state"
  echo "kube-down: stopped and wiped $state" >&2
else
  echo "kube-down: stopped (data kept in $state; --wipe removes it)" >&2
fi
