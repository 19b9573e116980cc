#!/usr/bin/env bash
# The main job, locally: a pinned nats-server, the sandbox Threeport API (which creates
# Threeport's JetStream streams, as the real API does) and threeport-manager, all on loopback.
# Shows readiness, the bound consumers and lock buckets, and the metrics, then shuts the
# manager down with SIGTERM and shows that it exits 0. Everything started here is stopped by PID.
#
#   scripts/demo.sh                 # default: every implemented controller
#   scripts/demo.sh --keep          # leave everything running until Ctrl-C
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
keep=0
[[ "${1:-}" == "--keep" ]] && keep=1

nats_bin="$(scripts/install-nats-server.sh)"
echo "== building (release)"
cargo build --release --locked -p threeport-manager -p sandbox --bins 2>&1 | tail -1

work="$(mktemp -d)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

wait_for() { # wait_for <seconds> <command...>
  local limit=$1; shift
  for _ in $(seq 1 $((limit * 10))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "timed out waiting for: $*" >&2; return 1
}

echo "== nats-server (JetStream, loopback, random port)"
"$nats_bin" -js -a 127.0.0.1 -p -1 -sd "$work/js" --ports_file_dir "$work" -l "$work/nats.log" &
pids+=($!)
wait_for 10 bash -c "ls $work/*.ports"
nats_url="$(grep -o 'nats://[0-9.:]*' "$work"/*.ports | head -1)"
echo "   $nats_url"

echo "== threeport-sandbox (Threeport REST API; creates the nine controller streams)"
target/release/threeport-sandbox --listen 127.0.0.1:0 --nats-url "$nats_url" >"$work/sandbox.out" 2>"$work/sandbox.log" &
pids+=($!)
wait_for 10 grep -q listening "$work/sandbox.out"
api_url="$(grep -o 'http://[0-9.:]*' "$work/sandbox.out" | head -1)"
echo "   $api_url"

admin="127.0.0.1:18081"
echo "== threeport-manager (Threeport env names: API_SERVER, AUTH_ENABLED, MSG_BROKER_*)"
API_SERVER="${api_url#http://}" AUTH_ENABLED=false \
  target/release/threeport-manager --nats-url "$nats_url" --admin-listen "$admin" --log-format pretty \
  >"$work/manager.log" 2>&1 &
manager=$!
pids+=($manager)
wait_for 30 curl -fsS "http://$admin/readyz"
echo
echo "== GET /readyz?verbose"
curl -sS "http://$admin/readyz?verbose"
echo
echo "== threeport-manager list (registry: what is implemented)"
target/release/threeport-manager list | head -12
echo "   ..."
echo
echo "== GET /metrics (threeport_*)"
curl -sS "http://$admin/metrics" | grep -E '^threeport_(nats|max_concurrent|reconcile_total)' | head -20
echo
echo "== GET /configz (secrets redacted)"
curl -sS "http://$admin/configz" | head -c 600; echo
echo
echo "== sandbox API: create a WorkloadDefinition (the API publishes workloadDefinition.create)"
curl -sS -X POST "$api_url/v0/workload-definitions" -H 'Content-Type: application/json' \
  -d '{"Name":"demo","YAMLDocument":"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: demo\n"}' | head -c 400; echo

if [[ $keep == 1 ]]; then
  echo; echo "running; admin on http://$admin, API on $api_url, NATS on $nats_url. Ctrl-C to stop."
  wait "$manager"
  exit 0
fi

echo
echo "== SIGTERM to the manager (pid $manager)"
kill -TERM "$manager"
set +e; wait "$manager"; code=$?; set -e
echo "   exit code: $code"
echo "== manager log (last lines)"
tail -5 "$work/manager.log"
exit "$code"
