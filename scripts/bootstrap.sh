#!/usr/bin/env bash
# Installs what the repo needs on a fresh machine: the pinned pnpm (from npm) and the workspace's
# packages, then builds every package. Idempotent; sourced by demo.sh and test.sh.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

pinned=$(node -p 'require("./package.json").packageManager.split("@")[1]')
if [ "$(pnpm --version 2>/dev/null || true)" != "$pinned" ]; then
  echo "[bootstrap] installing pnpm $pinned from npm" >&2
  npm install --global --no-fund --no-audit "pnpm@$pinned" >&2
fi
export TURBO_TELEMETRY_DISABLED=1 DO_NOT_TRACK=1
pnpm install --frozen-lockfile >&2
pnpm run build >&2
