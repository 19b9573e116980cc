#!/usr/bin/env bash
# The chaos soak at full size (tests/soak.rs): three manager replicas, one killed with SIGKILL
# every SOAK_KILL_EVERY seconds, SOAK_FAULT_RATE of the API and Kubernetes requests failing,
# SOAK_INSTANCES WorkloadInstances created, updated and deleted; once on one nats-server
# restarted midway, once on a three-server JetStream cluster losing its stream leader.
# Prints one summary line per run; exits non-zero if anything was lost, duplicated or leaked.
# CI runs the same test with 60 instances.
#
#   scripts/soak.sh                      # 500 instances, release build
#   SOAK_INSTANCES=1000 scripts/soak.sh
set -Eeuo pipefail
cd "$(dirname "$0")/.."

export SOAK_INSTANCES="${SOAK_INSTANCES:-500}"
export SOAK_KILL_EVERY="${SOAK_KILL_EVERY:-5}"
export SOAK_FAULT_RATE="${SOAK_FAULT_RATE:-0.1}"
NATS_SERVER_BIN="$(scripts/install-nats-server.sh)"
export NATS_SERVER_BIN

# One run at a time: each starts three managers and is sized for the whole machine.
set +e
cargo test --release --test soak -- --nocapture --test-threads 1 2>&1 \
  | grep --line-buffered -vE '^\s*$'
status=${PIPESTATUS[0]}
set -e
exit "$status"
