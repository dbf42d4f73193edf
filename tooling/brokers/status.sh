#!/usr/bin/env bash
# One line per broker in $BROKERS: up/down, port, pid (if known), owner.
# Exits 1 if any of them is down.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

rc=0
for key in $(broker_list); do
  bash "$BROKERS_DIR/$(broker_script "$key")" status || rc=1
done
exit "$rc"
