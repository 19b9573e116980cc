#!/usr/bin/env bash
# The full test suite: formatting, lints, unit and integration tests against a real nats-server
# and the sandbox Threeport and Kubernetes APIs, and the real-stack suites (a real
# kube-apiserver, etcd, kube-controller-manager, Threeport's REST API on PostgreSQL and
# Threeport's own Go workload-controller; see scripts/upstream.sh) and moto (a local AWS).
# Installs the pinned nats-server and moto, and builds the pinned upstream binaries first (cached). Used by CI (.ci/run).
#
#   scripts/test.sh               everything
#   scripts/test.sh --upstream    only the real-stack suites (tests/upstream_*.rs)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

only_upstream=0
if [[ "${1:-}" == "--upstream" ]]; then
    only_upstream=1
    shift
fi

NATS_SERVER_BIN="$(scripts/install-nats-server.sh)"
export NATS_SERVER_BIN
# moto: the local AWS of the aws and secret controllers' tests (pinned, cached in .tools/moto).
MOTO_SERVER_BIN="$(scripts/install-moto.sh)"
export MOTO_SERVER_BIN

echo "== scripts/upstream.sh build"
scripts/upstream.sh build
# The real-stack suites fail (instead of skipping) if their binaries are missing.
export THREEPORT_UPSTREAM_REQUIRED=1

# Real-stack suites: each starts its own stack (Threeport's API binds fixed ports, so one at a
# time; cargo runs test binaries one after another and each suite serialises its tests).
upstream_tests=()
for f in tests/upstream_*.rs; do
    t="$(basename "$f" .rs)"
    upstream_tests+=(--test "$t")
done

if [[ $only_upstream == 0 ]]; then
    echo "== cargo fmt --check"
    cargo fmt --all -- --check
    echo "== cargo clippy --all-targets -- -D warnings"
    cargo clippy --workspace --all-targets --locked -- -D warnings
    echo "== cargo doc (broken intra-doc links fail)"
    RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked --quiet
fi

echo "== cargo test"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
set +e
if [[ $only_upstream == 1 ]]; then
    cargo test --locked --no-fail-fast "${upstream_tests[@]}" "$@" 2>&1 | tee "$log"
else
    cargo test --workspace --locked --no-fail-fast "$@" 2>&1 | tee "$log"
fi
status=${PIPESTATUS[0]}
set -e
# cargo's last "test result" line belongs to the doc-tests (often 0 tests); print one closing
# line that sums every test binary, so the totals are what a reader (or CI) sees last.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i; if ($(i+1) ~ /^ignored/) s += $i } }
     END { printf "%d passed, %d failed, %d skipped\n", p, f, s }' "$log"
exit "$status"
