#!/usr/bin/env bash
# One line per broker in $BROKERS: up/down, port, pid (if known), owner.
# Exits 1 if any of them is down.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

each_broker status
