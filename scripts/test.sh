#!/usr/bin/env bash
# The full test suite: formatting, lints, unit and integration tests (real nats-server, sandbox
# Threeport API). Installs the pinned nats-server first. Used by CI (.ci/run) and by developers.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

NATS_SERVER_BIN="$(scripts/install-nats-server.sh)"
export NATS_SERVER_BIN

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --workspace --locked "$@"
