#!/usr/bin/env bash
# The main job, locally: a pinned nats-server, the sandbox Threeport API (which creates
# Threeport's JetStream streams, as the real API does) with a sandbox Kubernetes cluster
# registered as the default KubernetesRuntimeInstance, and `threeport-manager --enable workload`,
# all on loopback. Creates a WorkloadDefinition (ConfigMap + Deployment + Service) and a
# WorkloadInstance through the API, waits for both to be reconciled, prints the Kubernetes
# objects the manager created and a few metrics, deletes the instance and shows that the
# cluster is clean again; then shuts the manager down with SIGTERM and shows that it exits 0.
# If this build does not implement the workload controller yet (`--enable workload` exits 2),
# it says so and shows the runtime only (readiness, registry, metrics, config).
# Everything started here is stopped by PID.
#
#   scripts/demo.sh                 # the demo
#   scripts/demo.sh --keep          # leave everything running until Ctrl-C
#   scripts/demo.sh --upstream      # the same against the real stack: kube-apiserver + etcd +
#                                   # kube-controller-manager, Threeport's REST API on PostgreSQL
#                                   # (scripts/upstream.sh; builds it first, cached)
#
# Binaries are built into ${CARGO_TARGET_DIR:-target}/release.
set -Eeuo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
keep=0
upstream=0
for arg in "$@"; do
  case "$arg" in
  --keep) keep=1 ;;
  --upstream) upstream=1 ;;
  *) echo "usage: scripts/demo.sh [--keep] [--upstream]" >&2; exit 2 ;;
  esac
done

nats_bin="$(scripts/install-nats-server.sh)"
echo "== building (release)"
cargo build --release --locked -p threeport-manager -p sandbox --bins 2>&1 | tail -1
bin="${CARGO_TARGET_DIR:-target}/release"

work="$(mktemp -d)"
chmod 755 "$work" # the real stack's PostgreSQL runs as the postgres user inside it
pids=()
cleanup() { # newest first (manager, sandbox, nats-server), each stopped before the next
  local i
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill "${pids[i]}" 2>/dev/null || true
    wait "${pids[i]}" 2>/dev/null || true
  done
  if [[ $upstream == 1 ]]; then scripts/upstream.sh down "$work/stack" || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# Every HTTP call is bounded: a wedged endpoint fails the demo instead of hanging it.
curl() { command curl --max-time 10 "$@"; }

# A free loopback port (the kernel picks one; fixed ports collide with whatever else runs).
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# On any failure, show what the manager said before the cleanup removes its log.
on_error() {
  local status=$?
  if [[ -f "$work/manager.log" ]]; then
    echo "== the demo failed (exit $status); the manager's last log lines:" >&2
    tail -30 "$work/manager.log" >&2
  fi
}
trap on_error ERR

wait_for() { # wait_for <seconds> <command...>
  local limit=$1; shift
  for _ in $(seq 1 $((limit * 10))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "timed out waiting for: $*" >&2; return 1
}

# json <python expression over d = parsed stdin>: tiny JSON helper (no jq needed).
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

# The workload controller in this build? (`list --output json` is the registry.)
workload_implemented="$("$bin/threeport-manager" list --output json |
  json 'next(c["implemented"] for c in d if c["name"] == "workload")')"

# Threeport's ENCRYPTION_KEY: 32 random bytes, base64. Passed by environment, never printed.
encryption_key="$(python3 -c 'import base64,os; print(base64.b64encode(os.urandom(32)).decode())')"

if [[ $upstream == 1 ]]; then
  echo "== scripts/upstream.sh build (pinned Kubernetes, etcd, Threeport; cached after the first run)"
  scripts/upstream.sh build 2>&1 | sed 's/^/   /'
  echo "== scripts/upstream.sh up: etcd, kube-apiserver, kube-controller-manager, PostgreSQL, nats-server, Threeport REST API"
  scripts/upstream.sh up "$work/stack" 2>&1 | sed 's/^/   /'
  # shellcheck disable=SC1091
  source "$work/stack/env"
  nats_url="$NATS_URL"
  encryption_key="$ENCRYPTION_KEY"
  api_url="http://$API_SERVER"
  runtime_id="$KUBERNETES_RUNTIME_INSTANCE_ID"
  kube_url="$KUBE_API_SERVER"
  kube_ca="$work/stack/kube/ca.crt" kube_cert="$work/stack/kube/admin.crt" kube_key="$work/stack/kube/admin.key"
  kubeconfig="$work/stack/kubeconfig"
  echo "   Threeport API $api_url (real, v0.6.1), Kubernetes $kube_url ($(curl -fsS --cacert "$kube_ca" --cert "$kube_cert" --key "$kube_key" "$kube_url/version" | json 'd["gitVersion"]')), runtime instance $runtime_id"
else
  echo "== nats-server (JetStream, loopback, random port)"
  "$nats_bin" -js -a 127.0.0.1 -p -1 -sd "$work/js" --ports_file_dir "$work" -l "$work/nats.log" &
  pids+=($!)
  wait_for 10 bash -c "ls $work/*.ports"
  nats_url="$(grep -o 'nats://[0-9.:]*' "$work"/*.ports | head -1)"
  echo "   $nats_url"

  echo "== threeport-sandbox --kube (Threeport REST API + a Kubernetes API registered as runtime)"
  ENCRYPTION_KEY="$encryption_key" "$bin/threeport-sandbox" --listen 127.0.0.1:0 --nats-url "$nats_url" \
    --kube --kube-dir "$work/kube" >"$work/sandbox.out" 2>"$work/sandbox.log" &
  pids+=($!)
  wait_for 15 grep -q '^registered KubernetesRuntimeInstance' "$work/sandbox.out"
  api_url="$(grep -o 'http://[0-9.:]*' "$work/sandbox.out" | head -1)"
  runtime_id="$(sed -n 's/^registered KubernetesRuntimeInstance \([0-9]*\).*/\1/p' "$work/sandbox.out")"
  sed 's/^/   /' "$work/sandbox.out"
  kube_url="$(sed -n 's/^kube sandbox listening on //p' "$work/sandbox.out")"
  kube_ca="$work/kube/ca.crt" kube_cert="$work/kube/client.crt" kube_key="$work/kube/client.key"
  kubeconfig="$work/kube/kubeconfig"
fi

# Cluster reads: kubectl when installed, else curl with the client certificate.
kget() { # kget <api path>
  curl -fsS --cacert "$kube_ca" --cert "$kube_cert" --key "$kube_key" "$kube_url$1"
}
show_cluster() { # show_cluster <workload instance id>
  local sel="control-plane.threeport.io/workload-instance%3D$1"
  kget "/api/v1/namespaces" | json '"\n".join("   Namespace %s (%s)  labels=%s" % (o["metadata"]["name"], o.get("status", {}).get("phase", "Active"), json.dumps(o["metadata"].get("labels", {}))) for o in d["items"] if not o["metadata"]["name"].startswith("kube-") and o["metadata"]["name"] != "default") or "   (no workload namespaces)"'
  for path in /api/v1/configmaps /apis/apps/v1/deployments /api/v1/services; do
    kget "$path?labelSelector=$sel" | json '"\n".join("   %s %s/%s  instance-label=%s" % (o.get("kind") or d["kind"][:-4], o["metadata"]["namespace"], o["metadata"]["name"], o["metadata"]["labels"].get("control-plane.threeport.io/workload-instance")) for o in d["items"]) or "   (no %s)" % d["kind"][:-4]'
  done
  kget "/apis/control-plane.threeport.io/v1alpha1/threeportworkloads" | json '"\n".join("   ThreeportWorkload %s  resources=%s" % (o["metadata"]["name"], [(r.get("kind"), r.get("namespace", ""), r.get("name"), r.get("threeportID")) for r in o["spec"].get("workloadResourceInstances", [])]) for o in d["items"]) or "   (no ThreeportWorkload)"'
}

admin="127.0.0.1:$(free_port)"
enable=()
if [[ "$workload_implemented" == "True" ]]; then
  enable=(--enable workload)
  echo "== threeport-manager --enable workload (Threeport env names: API_SERVER, AUTH_ENABLED, ENCRYPTION_KEY, MSG_BROKER_*)"
else
  echo "== NOTE: this build does not implement the workload controller yet ('--enable workload' exits 2)."
  echo "   Showing the runtime only: readiness, registry, metrics, config, a notification nobody consumes."
  echo "== threeport-manager (Threeport env names: API_SERVER, AUTH_ENABLED, MSG_BROKER_*)"
fi
ENCRYPTION_KEY="$encryption_key" API_SERVER="${api_url#http://}" AUTH_ENABLED=false \
  "$bin/threeport-manager" "${enable[@]}" --nats-url "$nats_url" --admin-listen "$admin" --log-format pretty \
  >"$work/manager.log" 2>&1 &
manager=$!
pids+=($manager)
wait_for 30 curl -fsS "http://$admin/readyz"
echo
echo "== GET /readyz?verbose"
curl -sS "http://$admin/readyz?verbose"
echo
echo "== threeport-manager list (registry: what is implemented)"
"$bin/threeport-manager" list | head -12
echo "   ..."
echo
echo "== GET /configz (secrets redacted)"
curl -sS "http://$admin/configz" | head -c 600; echo
echo

# wait_reconciled <type path> <id> <seconds>
wait_reconciled() {
  local i
  for i in $(seq 1 $(($3 * 10))); do
    if curl -fsS "$api_url/v0/$1/$2" | json 'd["Data"][0].get("Reconciled") is True' | grep -q True; then
      echo "   $1/$2 Reconciled:true after ~$((i / 10)).$((i % 10)) s"; return 0
    fi
    sleep 0.1
  done
  echo "timed out waiting for $1/$2 to be reconciled; manager log:" >&2
  tail -20 "$work/manager.log" >&2
  return 1
}

if [[ "$workload_implemented" == "True" ]]; then
  # The web app the tests deploy too (one set of fixtures).
  cp tests/fixtures/manifests/web-app.yaml "$work/web-app.yaml"
  echo "== POST /v0/workload-definitions (ConfigMap + Deployment + Service)"
  body="$(python3 -c 'import json,sys; print(json.dumps({"Name": "web-app", "YAMLDocument": open(sys.argv[1]).read()}))' "$work/web-app.yaml")"
  wd_id="$(curl -fsS -X POST "$api_url/v0/workload-definitions" -H 'Content-Type: application/json' -d "$body" | json 'd["Data"][0]["ID"]')"
  echo "   WorkloadDefinition $wd_id"
  wait_reconciled workload-definitions "$wd_id" 30
  curl -fsS "$api_url/v0/workload-resource-definitions?workloaddefinitionid=$wd_id" |
    json '"\n".join("   WorkloadResourceDefinition %s: %s" % (o["ID"], (o["JSONDefinition"] if isinstance(o.get("JSONDefinition"), dict) else json.loads(o.get("JSONDefinition") or "{}")).get("kind")) for o in d["Data"])'

  echo "== POST /v0/workload-instances (on KubernetesRuntimeInstance $runtime_id)"
  wi_id="$(curl -fsS -X POST "$api_url/v0/workload-instances" -H 'Content-Type: application/json' \
    -d "{\"Name\":\"web-app-demo\",\"WorkloadDefinitionID\":$wd_id,\"KubernetesRuntimeInstanceID\":$runtime_id}" | json 'd["Data"][0]["ID"]')"
  echo "   WorkloadInstance $wi_id"
  wait_reconciled workload-instances "$wi_id" 60
  echo "   WorkloadResourceInstances: $(curl -fsS "$api_url/v0/workload-resource-instances?workloadinstanceid=$wi_id" | json 'd["Meta"]["TotalCount"]')"

  echo
  echo "== Kubernetes objects created (cluster $kube_url)"
  show_cluster "$wi_id"
  if command -v kubectl >/dev/null; then
    echo "== kubectl --kubeconfig <kube-dir>/kubeconfig get deployments,services,configmaps -A -l control-plane.threeport.io/workload-instance=$wi_id"
    kubectl --kubeconfig "$kubeconfig" get deployments,services,configmaps -A \
      -l "control-plane.threeport.io/workload-instance=$wi_id" 2>&1 | sed 's/^/   /' || true
  fi

  echo
  echo "== GET /metrics (workload controller)"
  curl -sS "http://$admin/metrics" |
    grep -E '^threeport_(reconcile_total|reconcile_time_seconds_(count|sum)|max_concurrent_reconciles)\{controller="workload"' |
    grep -vE ' 0$' | sed 's/^/   /'
  echo "   Threeport API requests: $(curl -sS "http://$admin/metrics" | awk '/^threeport_api_requests_total/ {s += $2} END {print s}')"

  if [[ $keep == 1 ]]; then
    echo; echo "running; admin on http://$admin, API on $api_url, Kubernetes on $kube_url (kubeconfig $kubeconfig), NATS on $nats_url. Ctrl-C to stop."
    wait "$manager"
    exit 0
  fi

  echo
  echo "== DELETE /v0/workload-instances/$wi_id"
  curl -fsS -X DELETE "$api_url/v0/workload-instances/$wi_id" >/dev/null
  gone=0
  for _ in $(seq 1 600); do
    code="$(curl -sS -o /dev/null -w '%{http_code}' "$api_url/v0/workload-instances/$wi_id")"
    if [[ "$code" == 404 ]]; then gone=1; break; fi
    sleep 0.1
  done
  if [[ $gone == 1 ]]; then echo "   WorkloadInstance $wi_id is gone from the API (404)"; else
    echo "   WorkloadInstance $wi_id still there after 60 s; manager log:" >&2; tail -20 "$work/manager.log" >&2; exit 1
  fi
  echo "   WorkloadResourceInstances left: $(curl -fsS "$api_url/v0/workload-resource-instances?workloadinstanceid=$wi_id" | json 'd["Meta"]["TotalCount"]')"
  if [[ $upstream == 1 ]]; then
    # A real cluster deletes a namespace through the namespace controller: Terminating first.
    echo "== waiting (up to 60 s) for the namespace controller to remove the managed namespace"
    wait_for 60 bash -c "! curl -fsS --cacert '$kube_ca' --cert '$kube_cert' --key '$kube_key' \
      '$kube_url/api/v1/namespaces?labelSelector=control-plane.threeport.io/workload-instance%3D$wi_id' | grep -q '\"name\"'" ||
      echo "   still there after 60 s" >&2
  fi
  echo "== Kubernetes objects after the delete"
  show_cluster "$wi_id"
  echo
  echo "== GET /metrics (after the delete)"
  curl -sS "http://$admin/metrics" |
    grep -E '^threeport_reconcile_total\{controller="workload"' | grep -vE ' 0$' | sed 's/^/   /'
else
  echo "== GET /metrics (threeport_*)"
  curl -sS "http://$admin/metrics" | grep -E '^threeport_(nats|max_concurrent|reconcile_total)' | head -20
  echo
  echo "== sandbox API: create a WorkloadDefinition (the API publishes workloadDefinition.create)"
  curl -sS -X POST "$api_url/v0/workload-definitions" -H 'Content-Type: application/json' \
    -d '{"Name":"demo","YAMLDocument":"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: demo\n"}' | head -c 400; echo
  if [[ $keep == 1 ]]; then
    echo; echo "running; admin on http://$admin, API on $api_url, Kubernetes on $kube_url, NATS on $nats_url. Ctrl-C to stop."
    wait "$manager"
    exit 0
  fi
fi

echo
echo "== SIGTERM to the manager (pid $manager)"
kill -TERM "$manager"
set +e; wait "$manager"; code=$?; set -e
echo "   exit code: $code"
echo "== manager log (last lines)"
tail -5 "$work/manager.log"
exit "$code"
