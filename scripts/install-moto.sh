#!/usr/bin/env bash
# Installs the pinned moto (a local AWS: STS, IAM, EC2/VPC, EKS, RDS, S3, Secrets Manager) used
# by the aws and secret controllers' tests into .tools/moto (a project-local Python venv from
# PyPI) and prints the path of its `moto_server`. Idempotent.
#
# moto and every package it pulls in are pinned by scripts/moto-constraints.txt (a `pip freeze`
# of a working install), so a new release of a dependency cannot change the tests' AWS. Override
# with MOTO_SERVER_BIN=/path/to/moto_server to use another install.
set -euo pipefail
MOTO_VERSION="5.2.1"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.tools/moto"
bin="$venv/bin/moto_server"
stamp="$venv/.installed-$MOTO_VERSION-$(sha256sum "$root/scripts/moto-constraints.txt" | cut -c1-16)"

if [[ -n "${MOTO_SERVER_BIN:-}" ]]; then
  echo "$MOTO_SERVER_BIN"
  exit 0
fi

if [[ -x "$bin" && -f "$stamp" ]]; then
  echo "$bin"
  exit 0
fi

rm -rf "$venv"
python3 -m venv "$venv" >&2
"$venv/bin/pip" install --quiet --disable-pip-version-check \
  -c "$root/scripts/moto-constraints.txt" "moto[server]==${MOTO_VERSION}" >&2
"$venv/bin/python" -c "import moto; assert moto.__version__ == '$MOTO_VERSION', moto.__version__"
touch "$stamp"
echo "$bin"
