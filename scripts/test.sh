#!/usr/bin/env bash
# Every test: unit, property and conformance tests of core (in-memory transport), publint and
# attw for every package, typecheck, then the real brokers (installed and started by
# tooling/brokers) for the adapters' conformance, end-to-end and reconnect tests, the samples,
# the CLI's end-to-end tests and the quick benchmark, then the fault-injection suite. BROKERS=rabbitmq,mqtt limits the brokers.
# Runs on Node 24 (scripts/node-env.sh installs it when the machine's Node is older); the unit and
# in-memory conformance tests run once more on Node 22, the oldest Node the packages support.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export NO_COLOR=1 FORCE_COLOR=0 TURBO_TELEMETRY_DISABLED=1 DO_NOT_TRACK=1
log=$(mktemp)
status=0
step() {
  echo "=== $*"
  "$@" 2>&1 | tee -a "$log"
  local code=${PIPESTATUS[0]}
  if [ "$code" -ne 0 ]; then
    echo "=== FAILED ($code): $*"
    status=1
  fi
}
bash scripts/bootstrap.sh || { echo "=== bootstrap failed"; exit 1; }
source scripts/node-env.sh || { echo "=== no Node 24"; exit 1; }
step pnpm exec turbo run lint typecheck test --output-logs=full
# --force: turbo's cache key does not include Node's version.
step env STREAM_NODE=22 bash -c 'source scripts/node-env.sh && echo "node $(node -v)" && pnpm exec turbo run test --force --output-logs=full'
step pnpm run brokers:up
step pnpm exec turbo run test:brokers --concurrency=1 --output-logs=full
# Fault injection (packages/*/test/faults.test.ts): connections cut for 3 and 30 s, a sender
# killed, 32 MiB per case; about 3.5 minutes for the four brokers.
step pnpm exec turbo run test:faults --concurrency=1 --output-logs=full

# One closing line for the whole run, summed over every vitest run above.
passed=$(grep -aE '^\s*(\S+:)?\s*Tests\s' "$log" | grep -aoE '[0-9]+ passed' | awk '{s+=$1} END {print s+0}')
failed=$(grep -aE '^\s*(\S+:)?\s*Tests\s' "$log" | grep -aoE '[0-9]+ failed' | awk '{s+=$1} END {print s+0}')
rm -f "$log"
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi
echo "${passed} passed, ${failed} failed"
exit "$status"
