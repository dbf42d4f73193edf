#!/usr/bin/env bash
# Bring up the brokers named in $BROKERS (default: activemq,rabbitmq,mqtt,kafka).
# A broker that already answers on its port is reused; otherwise it is
# installed if missing, started, and waited for (BROKER_TIMEOUT seconds).
# Exits non-zero if any broker failed (its log tail is printed).
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

failed=()
for key in $(broker_list); do
  script="$BROKERS_DIR/$(broker_script "$key")"
  start=$SECONDS
  if bash "$script" up; then say "$key: up after $((SECONDS - start))s"
  else failed+=("$key"); fi
done
bash "$BROKERS_DIR/status.sh" || true
if [ ${#failed[@]} -gt 0 ]; then die "failed to bring up: ${failed[*]}"; fi
say "all up: $(broker_list | paste -sd, -)"
