#!/usr/bin/env bash
# Installs what the repo needs on a fresh machine: Node 24 and the pinned pnpm from the npm
# registry when the machine lacks them (scripts/node-env.sh, into .cache/tools), the workspace's
# packages, then builds every package. Idempotent. demo.sh and test.sh source it, so the commands
# after it run on the same Node.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/node-env.sh
source scripts/node-env.sh
export TURBO_TELEMETRY_DISABLED=1 DO_NOT_TRACK=1
echo "[bootstrap] node $(node -v), pnpm $(pnpm --version)" >&2
pnpm install --frozen-lockfile >&2
pnpm run build >&2
