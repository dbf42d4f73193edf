#!/usr/bin/env bash
# Stop the brokers named in $BROKERS (default: all four) that these scripts
# started. Brokers found already running by up.sh (e.g. the machine's own
# RabbitMQ and Mosquitto) are left running unless BROKERS_DOWN_ALL=1.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

each_broker down
