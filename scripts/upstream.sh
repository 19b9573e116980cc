#!/usr/bin/env bash
# The real upstream stack, on loopback: kube-apiserver + etcd + kube-controller-manager,
# PostgreSQL, a JetStream nats-server, Threeport's REST API (and, for comparisons, Threeport's
# own Go controllers).
#
#   scripts/upstream.sh build            build the pinned binaries (reused while nothing changed)
#   scripts/upstream.sh up DIR [--auth] [--audit-request-bodies] [--token-webhook=PORT]
#                                        start a stack; writes DIR/env (source it)
#   scripts/upstream.sh down DIR         stop what `up DIR` started (by PID) and remove DIR
#   scripts/upstream.sh bin              print the folder with the built binaries
#
# Versions are pinned in the wrapper modules under upstream/ (go.mod + go.sum, no source):
# upstream/kubernetes, upstream/etcd, upstream/threeport, upstream/helm. Binaries go to
# .tools/upstream/bin (git-ignored); a stamp per module (hash of its go.mod, go.sum, the Go
# version and the build flags) decides whether it is rebuilt.
#
# Threeport's REST API listens on the fixed ports 1323 and 8081 (all interfaces), so one stack
# runs at a time on a machine; every other component gets a free loopback port.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$ROOT/.tools/upstream"
BIN="$TOOLS/bin"
STAMPS="$TOOLS/stamps"
CRD="$ROOT/manifests/crds/threeportworkloads.yaml"
# The nine Go controllers of Threeport v0.6.1 (spec table 1.1), each built as its own binary.
GO_CONTROLLERS="workload-controller gateway-controller kubernetes-runtime-controller helm-workload-controller observability-controller aws-controller secret-controller terraform-controller control-plane-controller"
# Ports Threeport's REST API binds whatever it is told.
API_PORT=1323
API_READYZ_PORT=8081

say() { printf '%s\n' "upstream: $*" >&2; }
die() { say "error: $*"; exit 1; }

# ---------------------------------------------------------------------------------------------
# build
# ---------------------------------------------------------------------------------------------

# The version a wrapper module requires of a module (single source: upstream/*/go.mod).
module_version() { # DIR MODULE
    awk -v m="$2" '$1 == m && $2 ~ /^v/ { print $2; exit } $1 == "require" && $2 == m { print $3; exit }' "$1/go.mod"
}

# build_module NAME LDFLAGS "BINARY..." PACKAGE... : go build the packages of upstream/NAME
# into $BIN, unless the stamp says the same inputs were built before and every BINARY is there.
build_module() {
    local name="$1" ldflags="$2" binaries="$3"
    shift 3
    local dir="$ROOT/upstream/$name"
    local stamp
    stamp="$( { cat "$dir/go.mod" "$dir/go.sum"; go version; echo "$ldflags" "$@"; } | sha256sum | cut -c1-16)"
    local all_there=1 b
    for b in $binaries; do [[ -x "$BIN/$b" ]] || all_there=0; done
    if [[ $all_there == 1 && -f "$STAMPS/$name" && "$(cat "$STAMPS/$name")" == "$stamp" ]]; then
        say "$name: up to date ($binaries)"
        return
    fi
    say "$name: building $* ..."
    local start=$SECONDS
    # -trimpath: reproducible paths; CGO off: static binaries that run on any machine of the
    # kind. aws-builder (a Threeport dependency) is not in the public checksum database, so it
    # is verified against the hash pinned in upstream/threeport/go.sum instead.
    (cd "$dir" && CGO_ENABLED=0 GOFLAGS="-mod=readonly -buildvcs=false" \
        GONOSUMDB="github.com/nukleros/aws-builder" \
        go build -trimpath -ldflags "$ldflags" -o "$BIN/" "$@") ||
        die "$name: go build failed (see the output above)"
    # The etcd server module's main package is its root (go.etcd.io/etcd/server/v3): go names
    # that binary "server".
    [[ $name == etcd && -x "$BIN/server" ]] && mv -f "$BIN/server" "$BIN/etcd"
    for b in $binaries; do [[ -x "$BIN/$b" ]] || die "$name: $b missing after the build"; done
    echo "$stamp" >"$STAMPS/$name"
    say "$name: built in $((SECONDS - start)) s"
}

ensure_packages() {
    local missing=()
    pg_bin_dir >/dev/null 2>&1 || missing+=(postgresql)
    command -v openssl >/dev/null || missing+=(openssl)
    command -v curl >/dev/null || missing+=(curl)
    command -v runuser >/dev/null || missing+=(util-linux)
    if ((${#missing[@]})); then
        say "installing from Debian: ${missing[*]}"
        command -v apt-get >/dev/null || die "need ${missing[*]} and apt-get is not available"
        DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
        pg_bin_dir >/dev/null || die "postgresql installed but no postgres binary found"
    fi
    id postgres >/dev/null 2>&1 || die "no 'postgres' user (PostgreSQL refuses to run as root)"
}

# The folder of the newest installed PostgreSQL's binaries (Debian layout).
pg_bin_dir() {
    local d
    d="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
    [[ -n "$d" && -x "$d/postgres" ]] || return 1
    echo "$d"
}

cmd_build() {
    command -v go >/dev/null || die "Go is not installed (need Go >= 1.26)"
    # The wrapper modules say `go 1.26.0`; an older Go would try to download a toolchain.
    local gov
    gov="$(GOTOOLCHAIN=local go env GOVERSION)"
    printf '%s\n%s\n' go1.26 "$gov" | sort -V -C || die "need Go >= 1.26, found $gov"
    mkdir -p "$BIN" "$STAMPS"
    ensure_packages
    local total=$SECONDS k8s etcd threeport helm
    k8s="$(module_version "$ROOT/upstream/kubernetes" k8s.io/kubernetes)"
    etcd="$(module_version "$ROOT/upstream/etcd" go.etcd.io/etcd/server/v3)"
    threeport="$(module_version "$ROOT/upstream/threeport" github.com/threeport/threeport)"
    helm="$(module_version "$ROOT/upstream/helm" helm.sh/helm/v3)"
    local minor="${k8s#v1.}"
    minor="${minor%%.*}"
    # Without the version stamp /version says v0.0.0-master and clients warn about skew.
    local kv="k8s.io/component-base/version"
    build_module kubernetes \
        "-s -w -X $kv.gitVersion=$k8s -X $kv.gitMajor=1 -X $kv.gitMinor=$minor -X k8s.io/client-go/pkg/version.gitVersion=$k8s" \
        "kube-apiserver kube-controller-manager" \
        k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager
    build_module etcd "-s -w" etcd go.etcd.io/etcd/server/v3
    # Threeport embeds its version (internal/version/version.txt): no stamp needed.
    # All nine controllers: the benchmark compares their summed idle memory with the manager's.
    local tp_bins="rest-api database-migrator $GO_CONTROLLERS" tp_pkgs=() b
    for b in $tp_bins; do tp_pkgs+=("github.com/threeport/threeport/cmd/$b"); done
    build_module threeport "-s -w" "$tp_bins" "${tp_pkgs[@]}"
    build_module helm "-s -w -X helm.sh/helm/v3/internal/version.version=$helm" helm helm.sh/helm/v3/cmd/helm
    say "built kubernetes $k8s, etcd $etcd, threeport $threeport, helm $helm into .tools/upstream/bin in $((SECONDS - total)) s"
}

# ---------------------------------------------------------------------------------------------
# up / down
# ---------------------------------------------------------------------------------------------

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# start NAME CMD... : run in the background (own session, output to DIR/logs/NAME.log) and
# record the PID for `down`.
start() {
    local name="$1"
    shift
    setsid "$@" >"$DIR/logs/$name.log" 2>&1 </dev/null &
    echo "$name $!" >>"$DIR/pids"
}

pid_of() { awk -v n="$1" '$1 == n { p = $2 } END { print p }' "$DIR/pids"; }

# wait_for NAME SECONDS CHECK... : poll CHECK every 0.2 s until it succeeds; fail naming the
# component with the tail of its log if it exits or the time runs out.
wait_for() {
    local name="$1" limit="$2"
    shift 2
    local deadline=$((SECONDS + limit)) pid
    pid="$(pid_of "$name")"
    until "$@" >/dev/null 2>&1; do
        if [[ -n "$pid" ]] && ! kill -0 "$pid" 2>/dev/null; then
            fail_component "$name" "exited during start-up"
        fi
        ((SECONDS < deadline)) || fail_component "$name" "not ready within ${limit} s"
        sleep 0.2
    done
    say "$name ready"
}

fail_component() {
    say "error: $1 $2; last lines of $DIR/logs/$1.log:"
    tail -n 25 "$DIR/logs/$1.log" 2>/dev/null | sed 's/^/    /' >&2 || true
    exit 1 # the EXIT trap of `up` stops what was started
}

stop_all() {
    [[ -f "$DIR/pids" ]] || return 0
    local name pid
    # Reverse start order: the API before NATS and the database, the apiserver before etcd.
    tac "$DIR/pids" | while read -r name pid; do
        if [[ "$name" == postgres ]]; then
            runuser -u postgres -- "$(pg_bin_dir)/pg_ctl" -D "$DIR/pg/data" -m fast -w -t 20 stop >/dev/null 2>&1 || true
        fi
        kill -TERM "$pid" 2>/dev/null || continue
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        kill -KILL "$pid" 2>/dev/null || true
    done
    rm -f "$DIR/pids"
}

# --- certificates ----------------------------------------------------------------------------

# sign NAME CA_DIR SUBJECT EXTENSIONS [BITS]: key (PKCS#1, as Threeport's) + certificate.
sign() {
    local out="$1" ca="$2" subj="$3" ext="$4" bits="${5:-2048}"
    openssl genrsa -traditional -out "$out.key" "$bits" 2>/dev/null
    openssl req -new -key "$out.key" -subj "$subj" -out "$out.csr" 2>/dev/null
    printf '%s\n' "$ext" >"$out.ext"
    openssl x509 -req -in "$out.csr" -CA "$ca/ca.crt" -CAkey "$ca/ca.key" -CAcreateserial \
        -days 30 -sha256 -extfile "$out.ext" -out "$out.crt" 2>/dev/null
    rm -f "$out.csr" "$out.ext"
}

new_ca() { # DIR CN BITS
    mkdir -p "$1"
    openssl genrsa -traditional -out "$1/ca.key" "${3:-2048}" 2>/dev/null
    openssl req -x509 -new -key "$1/ca.key" -subj "/CN=$2" -days 30 -sha256 -out "$1/ca.crt" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" 2>/dev/null
}

kube_certs() {
    local k="$DIR/kube"
    new_ca "$k" "upstream-kubernetes-ca"
    sign "$k/apiserver" "$k" "/CN=kube-apiserver" \
        "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default.svc
extendedKeyUsage=serverAuth
keyUsage=critical,digitalSignature,keyEncipherment"
    # The runtime's credentials as a kind cluster's kubeconfig has them: a system:masters user.
    sign "$k/admin" "$k" "/O=system:masters/CN=kubernetes-admin" \
        "extendedKeyUsage=clientAuth
keyUsage=critical,digitalSignature,keyEncipherment"
    sign "$k/controller-manager" "$k" "/O=system:masters/CN=system:kube-controller-manager" \
        "extendedKeyUsage=clientAuth
keyUsage=critical,digitalSignature,keyEncipherment"
    openssl genrsa -out "$k/sa.key" 2048 2>/dev/null
    openssl rsa -in "$k/sa.key" -pubout -out "$k/sa.pub" 2>/dev/null
}

kubeconfig() { # USER_CERT_PREFIX OUT
    local k="$DIR/kube"
    cat >"$2" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: upstream
  cluster:
    server: https://127.0.0.1:$KUBE_PORT
    certificate-authority-data: $(base64 -w0 <"$k/ca.crt")
users:
- name: user
  user:
    client-certificate-data: $(base64 -w0 <"$1.crt")
    client-key-data: $(base64 -w0 <"$1.key")
contexts:
- name: upstream
  context: {cluster: upstream, user: user}
current-context: upstream
EOF
}

# Threeport's certificates, laid out as its installer mounts them into the API server and
# controller pods: <dir>/cert/tls.{crt,key} and <dir>/ca/tls.crt. RSA 4096 PKCS#1 leaves with
# Threeport's extensions (CN localhost, serverAuth+clientAuth, keyCertSign on a non-CA leaf,
# URI SAN https://localhost).
threeport_certs() {
    local t="$DIR/threeport-certs" ext
    new_ca "$t/ca-signer" "Threeport CA" 4096
    ext="basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyCertSign
extendedKeyUsage=clientAuth,serverAuth
subjectAltName=DNS:localhost,DNS:threeport-api-server,DNS:threeport-api-server.threeport-control-plane,DNS:threeport-api-server.threeport-control-plane.svc,DNS:threeport-api-server.threeport-control-plane.svc.cluster,DNS:threeport-api-server.threeport-control-plane.svc.cluster.local,IP:127.0.0.1,URI:https://localhost"
    local who
    for who in api-server controller; do
        mkdir -p "$t/$who/cert" "$t/$who/ca"
        sign "$t/$who/cert/tls" "$t/ca-signer" "/O=Threeport/CN=localhost" "$ext" 4096
        cp "$t/ca-signer/ca.crt" "$t/$who/ca/tls.crt"
    done
}

# --- components ------------------------------------------------------------------------------

kube_get() { # PATH
    curl -sf --cacert "$DIR/kube/ca.crt" --cert "$DIR/kube/admin.crt" --key "$DIR/kube/admin.key" \
        "https://127.0.0.1:$KUBE_PORT$1"
}

api_url() { # PATH
    if [[ $AUTH == true ]]; then
        local c="$DIR/threeport-certs/controller"
        curl -sf --cacert "$c/ca/tls.crt" --cert "$c/cert/tls.crt" --key "$c/cert/tls.key" "$@"
    else
        curl -sf "$@"
    fi
}

api_base() { if [[ $AUTH == true ]]; then echo "https://127.0.0.1:$API_PORT"; else echo "http://127.0.0.1:$API_PORT"; fi; }

start_etcd() {
    local peer
    ETCD_PORT="$(free_port)"
    peer="$(free_port)"
    start etcd "$BIN/etcd" --name upstream --data-dir "$DIR/etcd" --unsafe-no-fsync \
        --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
        --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
        --initial-cluster "upstream=http://127.0.0.1:$peer" --log-level warn
    etcd_healthy() { curl -sf "http://127.0.0.1:$ETCD_PORT/health" | grep -q '"health":"true"'; }
    wait_for etcd 30 etcd_healthy
}

start_kube() {
    local k="$DIR/kube"
    KUBE_PORT="$(free_port)"
    # Audit log: one JSON line per request (who, user agent, verb, object), so tests and the
    # benchmark count the requests each controller makes instead of estimating them.
    # --audit-request-bodies adds the body of every create (Secrets excepted), so a test can
    # compare what a Go controller sent with what the manager sends.
    {
        cat <<'EOF'
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived, ResponseStarted]
rules:
EOF
        if [[ $AUDIT_REQUEST_BODIES == true ]]; then
            cat <<'EOF'
  - level: Metadata
    resources: [{group: "", resources: [secrets]}]
  - level: Request
    verbs: [create]
EOF
        fi
        echo "  - level: Metadata"
    } >"$k/audit-policy.yaml"
    # Service IPs: a /16, so thousands of Services fit (a /24 holds 254, and allocation in a
    # nearly full range gets slow long before it fails).
    # --token-webhook=PORT: bearer tokens the API server does not know itself are reviewed by
    # a webhook on 127.0.0.1:PORT (plain HTTP, loopback), as EKS hands its tokens to
    # aws-iam-authenticator (kube-apiserver caches an accepted token for a while).
    local webhook_flags=()
    if [[ -n $TOKEN_WEBHOOK_PORT ]]; then
        [[ $TOKEN_WEBHOOK_PORT =~ ^[0-9]+$ ]] || die "--token-webhook wants a port, got $TOKEN_WEBHOOK_PORT"
        cat >"$k/token-webhook.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: webhook
  cluster: {server: "http://127.0.0.1:$TOKEN_WEBHOOK_PORT/"}
users:
- name: kube-apiserver
contexts:
- name: webhook
  context: {cluster: webhook, user: kube-apiserver}
current-context: webhook
EOF
        webhook_flags=(--authentication-token-webhook-config-file="$k/token-webhook.kubeconfig"
            --authentication-token-webhook-version=v1)
    fi
    start kube-apiserver "$BIN/kube-apiserver" "${webhook_flags[@]}" \
        --audit-policy-file="$k/audit-policy.yaml" --audit-log-path="$DIR/logs/kube-audit.log" \
        --audit-log-maxsize=0 --audit-log-maxbackup=0 \
        --etcd-servers="http://127.0.0.1:$ETCD_PORT" --bind-address=127.0.0.1 --advertise-address=127.0.0.1 \
        --secure-port="$KUBE_PORT" --tls-cert-file="$k/apiserver.crt" --tls-private-key-file="$k/apiserver.key" \
        --client-ca-file="$k/ca.crt" --service-account-issuer="https://127.0.0.1:$KUBE_PORT" \
        --service-account-key-file="$k/sa.pub" --service-account-signing-key-file="$k/sa.key" \
        --service-cluster-ip-range=10.96.0.0/16 --authorization-mode=Node,RBAC --allow-privileged=true \
        --disable-admission-plugins=ServiceAccount --endpoint-reconciler-type=none
    kube_ready() { [[ "$(kube_get /readyz)" == ok ]]; }
    wait_for kube-apiserver 90 kube_ready
    kubeconfig "$k/admin" "$DIR/kubeconfig"
    kubeconfig "$k/controller-manager" "$k/controller-manager.kubeconfig"
    # namespace: deleting a namespace really removes it (else it stays Terminating);
    # garbage collector: ownerReferences; service accounts and their tokens, and the
    # kube-root-ca.crt ConfigMap in every namespace, as on any cluster. Pods stay Pending: no
    # scheduler, no kubelet (the workload controller never waits for them).
    start kube-controller-manager "$BIN/kube-controller-manager" \
        --kubeconfig="$k/controller-manager.kubeconfig" --leader-elect=false --secure-port=0 \
        --controllers=namespace-controller,garbage-collector-controller,serviceaccount-controller,serviceaccount-token-controller,root-ca-certificate-publisher-controller \
        --service-account-private-key-file="$k/sa.key" --root-ca-file="$k/ca.crt" \
        --use-service-account-credentials=false
    # The service account controller creates default/default: proof that it runs and syncs.
    wait_for kube-controller-manager 60 kube_get /api/v1/namespaces/default/serviceaccounts/default
}

start_postgres() {
    local pgbin
    pgbin="$(pg_bin_dir)" || die "PostgreSQL is not installed (scripts/upstream.sh build installs it)"
    PG_PORT="$(free_port)"
    mkdir -p "$DIR/pg"
    chown postgres: "$DIR/pg"
    runuser -u postgres -- "$pgbin/initdb" -D "$DIR/pg/data" -A trust -U postgres --no-sync -E UTF8 >"$DIR/logs/initdb.log" 2>&1 ||
        fail_component initdb "failed"
    # Throwaway data: no fsync. Threeport's API opens a connection per concurrent request.
    runuser -u postgres -- "$pgbin/pg_ctl" -D "$DIR/pg/data" -l "$DIR/pg/postgres.log" -w -t 30 \
        -o "-p $PG_PORT -k $DIR/pg -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=400" \
        start >"$DIR/logs/postgres.log" 2>&1 || { cat "$DIR/pg/postgres.log" >>"$DIR/logs/postgres.log" 2>/dev/null; fail_component postgres "failed to start"; }
    echo "postgres $(head -1 "$DIR/pg/data/postmaster.pid")" >>"$DIR/pids"
    # Threeport's installer creates these with CockroachDB SQL (database-migrator initialize).
    "$pgbin/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -v ON_ERROR_STOP=1 -q \
        -c "CREATE USER threeport" -c "CREATE DATABASE threeport_api OWNER threeport" \
        >>"$DIR/logs/postgres.log" 2>&1 || fail_component postgres "could not create the threeport user and database"
    say "postgres ready"
}

start_nats() {
    local nats_bin monitor
    nats_bin="$(NATS_SERVER_BIN="${NATS_SERVER_BIN:-}" "$ROOT/scripts/install-nats-server.sh")"
    NATS_PORT="$(free_port)"
    monitor="$(free_port)"
    start nats-server "$nats_bin" -js -a 127.0.0.1 -p "$NATS_PORT" -m "$monitor" -sd "$DIR/nats"
    wait_for nats-server 30 curl -sf "http://127.0.0.1:$monitor/healthz?js-enabled-only=true"
}

start_threeport_api() {
    cat >"$DIR/threeport.env" <<EOF
DB_HOST=127.0.0.1
DB_PORT=$PG_PORT
DB_USER=threeport
DB_NAME=threeport_api
DB_SSL_MODE=disable
NATS_HOST=127.0.0.1
NATS_PORT=$NATS_PORT
EOF
    "$BIN/database-migrator" -env-file "$DIR/threeport.env" up >"$DIR/logs/database-migrator.log" 2>&1 ||
        fail_component database-migrator "failed"
    say "database schema migrated"
    local flags=(-env-file "$DIR/threeport.env" -auth-enabled="$AUTH")
    if [[ $AUTH == true ]]; then
        # The API reads its certificates from the fixed /etc/threeport (as mounted in its pod):
        # give it a private mount namespace where that folder is this stack's.
        mkdir -p /etc/threeport
        start rest-api env ENCRYPTION_KEY="$ENCRYPTION_KEY" unshare --mount --propagation private \
            sh -c 'mount --bind "$0" /etc/threeport && exec "$@"' "$DIR/threeport-certs/api-server" \
            "$BIN/rest-api" "${flags[@]}"
    else
        start rest-api env ENCRYPTION_KEY="$ENCRYPTION_KEY" "$BIN/rest-api" "${flags[@]}"
    fi
    wait_for rest-api 60 api_url "$(api_base)/v0/kubernetes-runtime-definitions"
}

install_crd() {
    kube_get /apis/apiextensions.k8s.io/v1/customresourcedefinitions/threeportworkloads.control-plane.threeport.io >/dev/null 2>&1 ||
        curl -sf --cacert "$DIR/kube/ca.crt" --cert "$DIR/kube/admin.crt" --key "$DIR/kube/admin.key" \
            -X POST -H 'Content-Type: application/yaml' --data-binary "@$CRD" \
            "https://127.0.0.1:$KUBE_PORT/apis/apiextensions.k8s.io/v1/customresourcedefinitions" >/dev/null ||
        die "could not create the ThreeportWorkload CRD"
    wait_for_established() {
        kube_get /apis/apiextensions.k8s.io/v1/customresourcedefinitions/threeportworkloads.control-plane.threeport.io |
            python3 -c 'import json,sys; c=json.load(sys.stdin)["status"].get("conditions",[]); sys.exit(0 if any(x["type"]=="Established" and x["status"]=="True" for x in c) else 1)'
    }
    local deadline=$((SECONDS + 30))
    until wait_for_established 2>/dev/null; do
        ((SECONDS < deadline)) || die "ThreeportWorkload CRD not Established within 30 s"
        sleep 0.2
    done
    say "ThreeportWorkload CRD established"
}

# POST JSON (from stdin) to the API; prints Data[0].ID.
api_post() { # ROUTE
    api_url -X POST -H 'Content-Type: application/json' --data-binary @- "$(api_base)$1" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["Data"][0]["ID"])'
}

register_runtime() {
    local def_id
    def_id="$(echo '{"Name":"upstream-runtime","InfraProvider":"kind"}' | api_post /v0/kubernetes-runtime-definitions)" ||
        die "could not create the KubernetesRuntimeDefinition (see $DIR/logs/rest-api.log)"
    # Location Local + ThreeportControlPlaneHost false: the controllers connect to APIEndpoint
    # with this certificate; the API encrypts CertificateKey under ENCRYPTION_KEY.
    RUNTIME_ID="$(python3 - "$DIR/kube" "$KUBE_PORT" "$def_id" <<'EOF' | api_post /v0/kubernetes-runtime-instances
import json, sys
k, port, def_id = sys.argv[1], sys.argv[2], int(sys.argv[3])
read = lambda n: open(f"{k}/{n}").read()
print(json.dumps({
    "Name": "upstream-runtime",
    "KubernetesRuntimeDefinitionID": def_id,
    "Location": "Local",
    "ThreeportControlPlaneHost": False,
    "DefaultRuntime": True,
    "APIEndpoint": f"https://127.0.0.1:{port}",
    "CACertificate": read("ca.crt"),
    "Certificate": read("admin.crt"),
    "CertificateKey": read("admin.key"),
}))
EOF
)" || die "could not create the KubernetesRuntimeInstance (see $DIR/logs/rest-api.log)"
    say "registered KubernetesRuntimeInstance $RUNTIME_ID"
}

write_env() {
    local c="$DIR/threeport-certs/controller"
    cat >"$DIR/env" <<EOF
# Written by scripts/upstream.sh up; source it.
API_SERVER=127.0.0.1:$API_PORT
AUTH_ENABLED=$AUTH
MSG_BROKER_HOST=127.0.0.1
MSG_BROKER_PORT=$NATS_PORT
NATS_URL=nats://127.0.0.1:$NATS_PORT
ENCRYPTION_KEY=$ENCRYPTION_KEY
KUBECONFIG=$DIR/kubeconfig
KUBE_API_SERVER=https://127.0.0.1:$KUBE_PORT
KUBERNETES_RUNTIME_INSTANCE_ID=$RUNTIME_ID
THREEPORT_CERT_DIR=$([[ $AUTH == true ]] && echo "$c/cert")
THREEPORT_CA_DIR=$([[ $AUTH == true ]] && echo "$c/ca")
ETCD_URL=http://127.0.0.1:$ETCD_PORT
PG_PORT=$PG_PORT
UPSTREAM_BIN=$BIN
UPSTREAM_DIR=$DIR
EOF
    # The same variables exported, for `source DIR/env` in a shell.
    sed -i -e 's/^\([A-Z_]*=\)/export \1/' "$DIR/env"
}

cmd_up() {
    local usage="usage: upstream.sh up DIR [--auth] [--audit-request-bodies] [--token-webhook=PORT]"
    [[ $# -ge 1 ]] || die "$usage"
    DIR="$1"
    shift
    AUTH=false
    AUDIT_REQUEST_BODIES=false
    TOKEN_WEBHOOK_PORT=
    local opt
    for opt in "$@"; do
        case "$opt" in
        --auth) AUTH=true ;;
        --audit-request-bodies) AUDIT_REQUEST_BODIES=true ;;
        --token-webhook=*) TOKEN_WEBHOOK_PORT="${opt#--token-webhook=}" ;;
        *) die "$usage (unknown option $opt)" ;;
        esac
    done
    local b
    for b in etcd kube-apiserver kube-controller-manager rest-api database-migrator; do
        [[ -x "$BIN/$b" ]] || die "$BIN/$b missing: run scripts/upstream.sh build first"
    done
    if [[ -f "$DIR/pids" ]]; then die "$DIR holds a running stack: scripts/upstream.sh down $DIR first"; fi
    local p
    for p in $API_PORT $API_READYZ_PORT; do
        port_in_use "$p" && die "port $p is in use: Threeport's REST API needs it (another stack or API running?)"
    done
    mkdir -p "$DIR/logs"
    DIR="$(cd "$DIR" && pwd)"
    chmod 755 "$DIR"
    runuser -u postgres -- test -x "$DIR" ||
        die "$DIR is not reachable by the postgres user (PostgreSQL refuses to run as root): use a folder whose parents are world-searchable, e.g. under /tmp"
    # Whatever ends `up` early (a failed component, an error, a signal) stops what it started.
    trap 'stop_all' EXIT
    trap 'say "interrupted"; exit 130' INT TERM
    local start_time=$SECONDS
    ENCRYPTION_KEY="$(openssl rand -base64 32)"
    kube_certs
    [[ $AUTH == true ]] && threeport_certs
    start_etcd
    start_kube
    start_postgres
    start_nats
    start_threeport_api
    install_crd
    register_runtime
    write_env
    trap - EXIT INT TERM
    say "stack up in $((SECONDS - start_time)) s (auth: $AUTH); source $DIR/env"
}

cmd_down() {
    [[ $# -eq 1 ]] || die "usage: upstream.sh down DIR"
    DIR="$1"
    [[ -d "$DIR" ]] || { say "$DIR does not exist: nothing to stop"; return 0; }
    DIR="$(cd "$DIR" && pwd)"
    stop_all
    rm -rf "$DIR"
    say "stopped and removed $DIR"
}

case "${1:-}" in
build) shift; cmd_build "$@" ;;
up) shift; cmd_up "$@" ;;
down) shift; cmd_down "$@" ;;
bin) echo "$BIN" ;;
*) die "usage: upstream.sh build | up DIR [--auth] [--audit-request-bodies] [--token-webhook=PORT] | down DIR | bin" ;;
esac
