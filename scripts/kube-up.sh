#!/usr/bin/env bash
# Start a real Kubernetes control plane on this machine, for the tests, the bench and trying
# the operator by hand: etcd, kube-apiserver (TLS, service-account tokens, RBAC),
# kube-controller-manager (garbage collector, deployment and replica-set controllers, ...),
# kube-scheduler, and kwok playing the kubelets of a few simulated nodes (pods become Running
# and Ready without containers). Built from source by scripts/kube-build.sh when missing.
#
# Idempotent: when the control plane of this state folder already answers, it only prints the
# export line. Everything listens on 127.0.0.1 only.
#
#   scripts/kube-up.sh            # prints: export KUBECONFIG=<state>/admin.kubeconfig
#   scripts/kube-down.sh [--wipe] # stops what this started (by pid); --wipe removes its data
#
# Settings (environment):
#   MLPLATFORM_KUBE_STATE   state folder: certificates, etcd data, logs, pids, kubeconfigs
#                           (default: ${XDG_STATE_HOME:-$HOME/.local/state}/mlplatform/kube)
#   MLPLATFORM_KUBE_PORT    the API server's port (default 16443); etcd, the controller
#                           manager, the scheduler and kwok take the next ports (+1 .. +5)
#   MLPLATFORM_KUBE_NODES   simulated nodes (default 4)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
state=${MLPLATFORM_KUBE_STATE:-${XDG_STATE_HOME:-$HOME/.local/state}/mlplatform/kube}
port=${MLPLATFORM_KUBE_PORT:-16443}
nodes=${MLPLATFORM_KUBE_NODES:-4}
[[ "$port" =~ ^[0-9]+$ ]] && [ "$port" -ge 1024 ] && [ "$port" -le 65530 ] ||
  { echo "kube-up: MLPLATFORM_KUBE_PORT must be a port from 1024 to 65530, got '$port'" >&2; exit 2; }
[[ "$nodes" =~ ^[0-9]+$ ]] && [ "$nodes" -ge 1 ] ||
  { echo "kube-up: MLPLATFORM_KUBE_NODES must be a number of nodes (1 or more), got '$nodes'" >&2; exit 2; }
etcd_port=$((port + 1)) etcd_peer_port=$((port + 2))
kcm_port=$((port + 3)) scheduler_port=$((port + 4)) kwok_port=$((port + 5))
server="https://127.0.0.1:$port"
pki="$state/pki" logs="$state/logs" run="$state/run"
admin="$state/admin.kubeconfig"

say() { echo "kube-up: $*" >&2; }
alive() { [ -f "$run/$1.pid" ] && kill -0 "$(cat "$run/$1.pid")" 2>/dev/null; }
ready() { kubectl --kubeconfig "$admin" get --raw /readyz >/dev/null 2>&1; }
all_alive() {
  for component in etcd kube-apiserver kube-controller-manager kube-scheduler kwok; do
    alive "$component" || return 1
  done
}

if [ -f "$admin" ] && all_alive && ready; then
  echo "export KUBECONFIG=$admin"
  exit 0
fi
# Something of ours is half up (a crash, a killed session): start over from the data we have.
"$root/scripts/kube-down.sh" >/dev/null 2>&1 || true

bin=$("$root/scripts/kube-build.sh")
mkdir -p "$pki" "$logs" "$run" "$state/etcd"
chmod 700 "$state"

# --- certificates: one CA; the API server's serving pair; a client pair per component ------
if [ ! -f "$pki/ca.crt" ]; then
  say "creating certificates in $pki"
  (
    cd "$pki"
    openssl_quiet() { openssl "$@" 2>/dev/null; }
    openssl_quiet ecparam -name prime256v1 -genkey -noout -out ca.key
    openssl_quiet req -x509 -new -key ca.key -sha256 -days 3650 -subj "/CN=mlplatform-test-ca" -out ca.crt
    client() { # name CN O
      openssl_quiet ecparam -name prime256v1 -genkey -noout -out "$1.key"
      openssl_quiet req -new -key "$1.key" -subj "/CN=$2${3:+/O=$3}" -out "$1.csr"
      printf 'extendedKeyUsage=clientAuth\n' >"$1.ext"
      openssl_quiet x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -sha256 \
        -days 3650 -extfile "$1.ext" -out "$1.crt"
      rm -f "$1.csr" "$1.ext"
    }
    openssl_quiet ecparam -name prime256v1 -genkey -noout -out apiserver.key
    openssl_quiet req -new -key apiserver.key -subj "/CN=kube-apiserver" -out apiserver.csr
    cat >apiserver.ext <<EOF
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local
EOF
    openssl_quiet x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -sha256 \
      -days 3650 -extfile apiserver.ext -out apiserver.crt
    rm -f apiserver.csr apiserver.ext
    client admin kubernetes-admin system:masters
    client kube-controller-manager system:kube-controller-manager
    client kube-scheduler system:kube-scheduler
    client kwok kwok-nodes system:masters # plays every simulated node's kubelet
    # The key that signs service-account tokens (the operator's `kubectl create token`).
    openssl_quiet genrsa -out sa.key 2048
    openssl_quiet rsa -in sa.key -pubout -out sa.pub
  )
fi

kubeconfig() { # name → $state/<name>.kubeconfig, authenticated by <name>'s client pair
  cat >"$state/$1.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: mlplatform-test
  cluster: {server: "$server", certificate-authority: "$pki/ca.crt"}
users:
- name: $1
  user: {client-certificate: "$pki/$1.crt", client-key: "$pki/$1.key"}
contexts:
- name: $1@mlplatform-test
  context: {cluster: mlplatform-test, user: $1}
current-context: $1@mlplatform-test
EOF
}
kubeconfig admin
kubeconfig kube-controller-manager
kubeconfig kube-scheduler
kubeconfig kwok

start() { # name command... : in the background, its log and pid in the state folder
  local name=$1
  shift
  nohup "$@" >"$logs/$name.log" 2>&1 &
  echo $! >"$run/$name.pid"
}
wait_for() { # what seconds command...
  local what=$1 seconds=$2
  shift 2
  local deadline=$(($(date +%s) + seconds))
  until "$@" >/dev/null 2>&1; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
      say "$what did not come up within ${seconds} s; the end of its log:"
      tail -n 30 "$logs/$what.log" >&2 || true
      "$root/scripts/kube-down.sh" >/dev/null 2>&1 || true  # nothing half up left behind
      exit 1
    fi
    sleep 0.2
  done
}

say "starting etcd on 127.0.0.1:$etcd_port"
start etcd "$bin/etcd" --name=mlplatform --data-dir="$state/etcd" \
  --listen-client-urls="http://127.0.0.1:$etcd_port" \
  --advertise-client-urls="http://127.0.0.1:$etcd_port" \
  --listen-peer-urls="http://127.0.0.1:$etcd_peer_port" \
  --initial-advertise-peer-urls="http://127.0.0.1:$etcd_peer_port" \
  --initial-cluster="mlplatform=http://127.0.0.1:$etcd_peer_port" \
  --unsafe-no-fsync --quota-backend-bytes=4294967296 --log-level=warn
wait_for etcd 30 curl -sf "http://127.0.0.1:$etcd_port/health"

# The audit log is the request log of the bench (bench/kubernetes_burst.py) and of anyone
# asking what the operator sent: every request of a client that is not part of the control
# plane itself, at Metadata level (who, verb, resource, code, timestamps; no bodies).
cat >"$state/audit-policy.yaml" <<'EOF'
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: None
    users: [system:kube-controller-manager, system:kube-scheduler, system:apiserver, kwok-nodes]
  - level: None
    userGroups: [system:serviceaccounts:kube-system, system:nodes]
  - level: Metadata
EOF

say "starting kube-apiserver on $server"
start kube-apiserver "$bin/kube-apiserver" \
  --etcd-servers="http://127.0.0.1:$etcd_port" \
  --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$port" \
  --tls-cert-file="$pki/apiserver.crt" --tls-private-key-file="$pki/apiserver.key" \
  --client-ca-file="$pki/ca.crt" \
  --service-account-issuer=https://kubernetes.default.svc.cluster.local \
  --service-account-key-file="$pki/sa.pub" \
  --service-account-signing-key-file="$pki/sa.key" \
  --service-cluster-ip-range=10.96.0.0/16 \
  --authorization-mode=RBAC \
  --enable-admission-plugins=NamespaceLifecycle,LimitRanger,ServiceAccount,DefaultStorageClass,ResourceQuota,PodSecurity \
  --audit-policy-file="$state/audit-policy.yaml" --audit-log-path="$logs/audit.log" \
  --audit-log-mode=batch --audit-log-maxsize=200 --audit-log-maxbackup=1 \
  --allow-privileged=true --endpoint-reconciler-type=none --profiling=false -v=1
wait_for kube-apiserver 120 ready

say "starting kube-controller-manager and kube-scheduler"
start kube-controller-manager "$bin/kube-controller-manager" \
  --kubeconfig="$state/kube-controller-manager.kubeconfig" \
  --authentication-kubeconfig="$state/kube-controller-manager.kubeconfig" \
  --authorization-kubeconfig="$state/kube-controller-manager.kubeconfig" \
  --bind-address=127.0.0.1 --secure-port="$kcm_port" --leader-elect=false \
  --use-service-account-credentials=true \
  --service-account-private-key-file="$pki/sa.key" --root-ca-file="$pki/ca.crt" \
  --cluster-name=mlplatform-test \
  --kube-api-qps=200 --kube-api-burst=400 -v=1
start kube-scheduler "$bin/kube-scheduler" \
  --kubeconfig="$state/kube-scheduler.kubeconfig" \
  --authentication-kubeconfig="$state/kube-scheduler.kubeconfig" \
  --authorization-kubeconfig="$state/kube-scheduler.kubeconfig" \
  --bind-address=127.0.0.1 --secure-port="$scheduler_port" --leader-elect=false -v=1

say "starting kwok and $nodes simulated nodes"
start kwok "$bin/kwok" --kubeconfig="$state/kwok.kubeconfig" \
  --manage-all-nodes=false --manage-nodes-with-label-selector=type=kwok \
  --node-lease-duration-seconds=40 --cidr=10.244.0.0/16 --node-ip=10.0.0.1 \
  --server-address="127.0.0.1:$kwok_port" \
  --config="$root/tests/cluster/kwok/stages.yaml"
for i in $(seq 1 "$nodes"); do
  kubectl --kubeconfig "$admin" apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Node
metadata:
  name: node-$i
  labels: {type: kwok, kubernetes.io/hostname: node-$i, kubernetes.io/os: linux, kubernetes.io/arch: amd64}
  annotations: {node.alpha.kubernetes.io/ttl: "0", kwok.x-k8s.io/node: fake}
status:
  allocatable: {cpu: "32", memory: 256Gi, pods: "1000"}
  capacity: {cpu: "32", memory: 256Gi, pods: "1000"}
EOF
done
node_ready() {
  [ "$(kubectl --kubeconfig "$admin" get nodes -l type=kwok \
    -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' |
    grep -c True)" -ge "$nodes" ]
}
wait_for kwok 60 node_ready
# The default ServiceAccount of a namespace is made by the controller manager: pods need it.
wait_for kube-controller-manager 60 kubectl --kubeconfig "$admin" get serviceaccount default -n default
wait_for kube-scheduler 60 curl -skf "https://127.0.0.1:$scheduler_port/healthz"

say "ready: $("$bin/kube-apiserver" --version) with $nodes simulated nodes (logs: $logs)"
echo "export KUBECONFIG=$admin"
