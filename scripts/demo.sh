#!/usr/bin/env bash
# The main job: a generated file streamed end to end through @stream/core and verified by
# SHA-256. With no broker given it uses the embedded in-process transport:
#   bash scripts/demo.sh                      # 256 MiB through the embedded transport
#   bash scripts/demo.sh --size 1GiB
# To stream through a real broker, use the CLI's send/receive (see README).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/bootstrap.sh
source scripts/node-env.sh   # the Node bootstrap installed (24 unless the machine has it)
exec node apps/cli/dist/cli.mjs demo "$@"
