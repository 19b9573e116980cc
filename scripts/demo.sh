#!/usr/bin/env bash
# The main job, locally: a pinned nats-server, the sandbox Threeport API (which creates
# Threeport's JetStream streams, as the real API does) with a sandbox Kubernetes cluster
# registered as the default KubernetesRuntimeInstance, and `threeport-manager --enable
# workload,gateway,kubernetes-runtime`, all on loopback. Creates a WorkloadDefinition (ConfigMap + Deployment +
# Service) and a WorkloadInstance through the API, waits for both to be reconciled, prints the
# Kubernetes objects the manager created; then puts a gateway in front of the app (a domain
# name, a gateway definition with HTTPS on 443, an HTTPS redirect on 80 and TCP 5432, a domain
# name instance and a gateway instance; minimal CRDs stand in for gloo's, cert-manager's and
# the nukleros operator's, which do not run here) and prints the gloo, cert-manager and
# support-service objects the manager made; un-reconciles the runtime instance and shows what
# the kubernetes-runtime controller installed into the cluster (Threeport's agent, CRDs and
# support-services operator); deletes the gateway instance (its objects go, the
# app stays) and the workload instance and shows that its objects are gone (the gloo-edge and
# external-dns support workloads stay, as in Threeport); then shuts
# the manager down with SIGTERM and shows that it exits 0.
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

# The workload and gateway controllers in this build? (`list --output json` is the registry.)
implemented() { "$bin/threeport-manager" list --output json | json "next(c['implemented'] for c in d if c['name'] == '$1')"; }
workload_implemented="$(implemented workload)"
gateway_implemented="$(implemented gateway)"
runtime_implemented="$(implemented kubernetes-runtime)"

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
  # Retried (curl retries 429 and 5xx): kube-apiserver answers a list with 429 while a
  # resource's watch cache is being rebuilt, e.g. just after the runtime install updated a CRD.
  curl -fsS --retry 5 --retry-delay 1 --cacert "$kube_ca" --cert "$kube_cert" --key "$kube_key" "$kube_url$1"
}
show_cluster() { # show_cluster <workload instance id>
  local sel="control-plane.threeport.io/workload-instance%3D$1"
  kget "/api/v1/namespaces" | json '"\n".join("   Namespace %s (%s)  labels=%s" % (o["metadata"]["name"], o.get("status", {}).get("phase", "Active"), json.dumps(o["metadata"].get("labels", {}))) for o in d["items"] if not o["metadata"]["name"].startswith("kube-") and o["metadata"]["name"] != "default") or "   (no workload namespaces)"'
  for path in /api/v1/configmaps /apis/apps/v1/deployments /api/v1/services; do
    kget "$path?labelSelector=$sel" | json '"\n".join("   %s %s/%s  instance-label=%s" % (o.get("kind") or d["kind"][:-4], o["metadata"]["namespace"], o["metadata"]["name"], o["metadata"]["labels"].get("control-plane.threeport.io/workload-instance")) for o in d["items"]) or "   (no %s)" % d["kind"][:-4]'
  done
  kget "/apis/control-plane.threeport.io/v1alpha1/threeportworkloads" | json '"\n".join("   ThreeportWorkload %s  resources=%s" % (o["metadata"]["name"], [(r.get("kind"), r.get("namespace", ""), r.get("name"), r.get("threeportID")) for r in o["spec"].get("workloadResourceInstances", [])]) for o in d["items"]) or "   (no ThreeportWorkload)"'
}

kpost() { # kpost <api path> <JSON file>
  curl -fsS --cacert "$kube_ca" --cert "$kube_cert" --key "$kube_key" -X POST \
    -H 'Content-Type: application/json' --data @"$2" "$kube_url$1" >/dev/null
}
apipost() { # apipost <type path> <JSON body>: prints the new object's ID
  curl -fsS -X POST "$api_url/v0/$1" -H 'Content-Type: application/json' -d "$2" | json 'd["Data"][0]["ID"]'
}
show_gateway() {
  local path
  for path in /apis/gateway.solo.io/v1/virtualservices /apis/gateway.solo.io/v1/gateways \
    /apis/cert-manager.io/v1/issuers /apis/cert-manager.io/v1/certificates; do
    kget "$path" | json '"\n".join("   %s %s/%s  %s" % (o["kind"], o["metadata"]["namespace"], o["metadata"]["name"], json.dumps(
      (o["spec"].get("virtualHost", {}).get("routes") or [{}])[0].get("routeAction", {}).get("single", {}).get("upstream")
      or (o["spec"].get("virtualHost", {}).get("routes") or [{}])[0].get("redirectAction")
      or (o["spec"].get("tcpGateway", {}).get("tcpHosts") or [{}])[0].get("destination", {}).get("single", {}).get("upstream")
      or o["spec"].get("dnsNames") or o["spec"].get("acme", {}).get("server")))
      for o in d["items"]) or "   (no %s)" % d["kind"][:-4]'
  done
  kget /apis/gateway.support-services.nukleros.io/v1alpha1/glooedges | json '"\n".join("   GlooEdge %s  ports=%s" % (o["metadata"]["name"], [(p["protocol"], p["port"], p["ssl"]) for p in o["spec"]["ports"]]) for o in d["items"]) or "   (no GlooEdge)"'
  kget /apis/gateway.support-services.nukleros.io/v1alpha1/externaldns | json '"\n".join("   ExternalDNS %s  domain=%s provider=%s" % (o["metadata"]["name"], o["spec"]["domainName"], o["spec"]["provider"]) for o in d["items"]) or "   (no ExternalDNS)"'
  kget /apis/certificates.support-services.nukleros.io/v1alpha1/certmanagers | json '"\n".join("   CertManager %s  version=%s" % (o["metadata"]["name"], o["spec"]["version"]) for o in d["items"]) or "   (no CertManager)"'
}

admin="127.0.0.1:$(free_port)"
enable=()
if [[ "$workload_implemented" == "True" && "$gateway_implemented" == "True" && "$runtime_implemented" == "True" ]]; then
  enable=(--enable workload,gateway,kubernetes-runtime)
  echo "== threeport-manager --enable workload,gateway,kubernetes-runtime (Threeport env names: API_SERVER, AUTH_ENABLED, ENCRYPTION_KEY, MSG_BROKER_*)"
elif [[ "$workload_implemented" == "True" && "$gateway_implemented" == "True" ]]; then
  enable=(--enable workload,gateway)
  echo "== threeport-manager --enable workload,gateway (Threeport env names: API_SERVER, AUTH_ENABLED, ENCRYPTION_KEY, MSG_BROKER_*)"
elif [[ "$workload_implemented" == "True" ]]; then
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

  if [[ "$gateway_implemented" == "True" ]]; then
    echo
    echo "== gateway: minimal CRDs for gloo, cert-manager and the nukleros support services, and gloo's namespace"
    echo "   (what their operators install; no operator runs here, so the objects are stored, not acted on)"
    python3 - "$work" tests/fixtures/manifests/gateway-crds.yaml <<'PY'
import json, sys
docs = [d for d in open(sys.argv[2]).read().split("\n---\n")[1:] if d.strip()]
for i, doc in enumerate(docs):
    crd = json.loads(doc)
    open("%s/crd-%d.json" % (sys.argv[1], i), "w").write(json.dumps(crd))
    print("   CustomResourceDefinition", crd["metadata"]["name"])
PY
    for f in "$work"/crd-*.json; do kpost /apis/apiextensions.k8s.io/v1/customresourcedefinitions "$f"; done
    echo '{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"nukleros-gateway-system"}}' >"$work/gloo-ns.json"
    kpost /api/v1/namespaces "$work/gloo-ns.json"
    for path in gateway.solo.io/v1/virtualservices gateway.solo.io/v1/gateways cert-manager.io/v1/issuers \
      cert-manager.io/v1/certificates gateway.support-services.nukleros.io/v1alpha1/glooedges \
      gateway.support-services.nukleros.io/v1alpha1/externaldns certificates.support-services.nukleros.io/v1alpha1/certmanagers; do
      wait_for 30 kget "/apis/$path"
    done
    echo "== POST a DomainNameDefinition, a GatewayDefinition (443 TLS, 80 HTTPS redirect, TCP 5432), a DomainNameInstance and a GatewayInstance"
    dnd_id="$(apipost domain-name-definitions '{"Name":"demo-zone","Domain":"example.com","Zone":"Public","AdminEmail":"ops@example.com"}')"
    gd_id="$(apipost gateway-definitions "{\"Name\":\"web-gw\",\"DomainNameDefinitionID\":$dnd_id,\"SubDomain\":\"app\",
      \"HttpPorts\":[{\"Port\":443,\"Path\":\"/\",\"TLSEnabled\":true},{\"Port\":80,\"Path\":\"/\",\"HTTPSRedirect\":true}],
      \"TcpPorts\":[{\"Port\":5432}]}")"
    dni_id="$(apipost domain-name-instances "{\"Name\":\"demo-dns\",\"DomainNameDefinitionID\":$dnd_id,\"WorkloadInstanceID\":$wi_id,\"KubernetesRuntimeInstanceID\":$runtime_id}")"
    gi_id="$(apipost gateway-instances "{\"Name\":\"web-gw-demo\",\"GatewayDefinitionID\":$gd_id,\"WorkloadInstanceID\":$wi_id,\"KubernetesRuntimeInstanceID\":$runtime_id}")"
    echo "   DomainNameDefinition $dnd_id, GatewayDefinition $gd_id, DomainNameInstance $dni_id, GatewayInstance $gi_id"
    wait_reconciled gateway-definitions "$gd_id" 30
    wait_reconciled gateway-instances "$gi_id" 120
    wait_reconciled domain-name-instances "$dni_id" 120
    wait_reconciled workload-instances "$wi_id" 60
    wait_for 60 bash -c "curl --max-time 5 -fsS --cacert '$kube_ca' --cert '$kube_cert' --key '$kube_key' '$kube_url/apis/gateway.solo.io/v1/virtualservices' | grep -q app-example-com-80"
    curl -fsS "$api_url/v0/workload-instances" | json '"\n".join("   WorkloadInstance %s %s  Reconciled=%s" % (o["ID"], o["Name"], o["Reconciled"]) for o in d["Data"])'
    echo "== gateway objects in the cluster (routes to gloo's upstream of the app's Service, <namespace>-web-<port>)"
    show_gateway
  fi

  if [[ "$runtime_implemented" == "True" ]]; then
    echo
    echo "== kubernetes-runtime: PATCH /v0/kubernetes-runtime-instances/$runtime_id {\"Reconciled\": false}"
    echo "   (what the aws controller does once an EKS cluster is ready): the manager installs Threeport's"
    echo "   agent, CRDs and support-services operator into the runtime (data/runtime-install/threeport-v0.6.1)"
    curl -fsS -X PATCH "$api_url/v0/kubernetes-runtime-instances/$runtime_id" -H 'Content-Type: application/json' \
      -d '{"Reconciled":false}' >/dev/null
    wait_reconciled kubernetes-runtime-instances "$runtime_id" 120
    kget /api/v1/namespaces | json '"\n".join("   Namespace %s" % o["metadata"]["name"] for o in d["items"] if o["metadata"]["name"] in ("threeport-control-plane", "support-services-system"))'
    kget /apis/apps/v1/deployments | json '"\n".join("   Deployment %s/%s  images=%s" % (o["metadata"]["namespace"], o["metadata"]["name"], [c["image"] for c in o["spec"]["template"]["spec"]["containers"]]) for o in d["items"] if o["metadata"]["namespace"] in ("threeport-control-plane", "support-services-system"))'
    kget /apis/apiextensions.k8s.io/v1/customresourcedefinitions | json '"\n".join("   CustomResourceDefinition %s" % o["metadata"]["name"] for o in d["items"] if o["metadata"]["name"].endswith((".support-services.nukleros.io", ".control-plane.threeport.io")))'
    kget /apis/orchestration.support-services.nukleros.io/v1alpha1/supportservices | json '"\n".join("   SupportServices %s" % o["metadata"]["name"] for o in d["items"])'
  fi

  if [[ $keep == 1 ]]; then
    echo; echo "running; admin on http://$admin, API on $api_url, Kubernetes on $kube_url (kubeconfig $kubeconfig), NATS on $nats_url. Ctrl-C to stop."
    wait "$manager"
    exit 0
  fi

  if [[ "$gateway_implemented" == "True" ]]; then
    echo
    echo "== DELETE /v0/gateway-instances/$gi_id"
    curl -fsS -X DELETE "$api_url/v0/gateway-instances/$gi_id" >/dev/null
    wait_for 60 bash -c "[[ \$(curl --max-time 5 -sS -o /dev/null -w '%{http_code}' '$api_url/v0/gateway-instances/$gi_id') == 404 ]]"
    wait_for 60 bash -c "! curl --max-time 5 -fsS --cacert '$kube_ca' --cert '$kube_cert' --key '$kube_key' '$kube_url/apis/gateway.solo.io/v1/virtualservices' | grep -q '\"name\"'"
    echo "   GatewayInstance $gi_id is gone; the gateway objects left the cluster, the app stays:"
    show_gateway
    show_cluster "$wi_id"
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
    grep -E '^threeport_reconcile_total\{controller="(workload|gateway|kubernetes-runtime)"' | grep -vE ' 0$' | sed 's/^/   /'
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
