#!/usr/bin/env bash
# RabbitMQ 3.x from Debian's `rabbitmq-server` package (AMQP 0-9-1 on
# 127.0.0.1:5672, guest/guest). A RabbitMQ that is already running is reused
# and never stopped by these scripts; one they start is bound to 127.0.0.1.
# RABBITMQ_PRIVATE_PORT (and RABBITMQ_PRIVATE_DIST_PORT): a node of its own instead, for the
# fault tests (see private_node below).
# usage: rabbitmq.sh up|down|status|kill
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

NAME=rabbitmq
PORT=5672                       # the system node's port; not configurable here
ETC=/etc/rabbitmq
LOGDIR=/var/log/rabbitmq
DIR="$CACHE/rabbitmq"
OURS="$DIR/started-by-us"       # present while a node we started runs
STARTLOG="$DIR/rabbitmq-start.log"

# AMQP 0-9-1 protocol header must be answered by a method frame on channel 0
# (connection.start): 01 00 00.
healthy() { [ "$(probe_hex "$PORT" 'AMQP\x00\x00\x09\x01' 3)" = 010000 ]; }

# fail_rabbit MESSAGE : fail with the tails of the start log and the node's newest log
fail_rabbit() {
  local f node_log=""
  for f in "$LOGDIR"/*.log; do
    [[ -f $f && $f != *upgrade* ]] || continue
    if [ -z "$node_log" ] || [ "$f" -nt "$node_log" ]; then node_log=$f; fi
  done
  fail "$NAME" "$1" "$STARTLOG" "$LOGDIR/startup_err" "$LOGDIR/startup_log" ${node_log:+"$node_log"}
}

# Bind a node we start to 127.0.0.1 only; lines already set by the machine are kept.
configure() {
  as_root mkdir -p "$ETC"
  as_root touch "$ETC/rabbitmq.conf" "$ETC/rabbitmq-env.conf"
  if ! grep -q '^listeners\.tcp\.' "$ETC/rabbitmq.conf"; then
    say "$NAME: adding listeners.tcp.default = $HOST:$PORT to $ETC/rabbitmq.conf"
    printf '# added by stream tooling/brokers/rabbitmq.sh\nlisteners.tcp.default = %s:%s\n' "$HOST" "$PORT" \
      | as_root tee -a "$ETC/rabbitmq.conf" >/dev/null
  fi
  local line key
  for line in "NODENAME=rabbit@localhost" "NODE_IP_ADDRESS=$HOST" "ERL_EPMD_ADDRESS=$HOST" \
              'SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"'; do
    key="${line%%=*}"
    # the distribution port is often bound through ERL_FLAGS instead: keep that
    [ "$key" = SERVER_ADDITIONAL_ERL_ARGS ] && grep -q inet_dist_use_interface "$ETC/rabbitmq-env.conf" && continue
    grep -Eq "^(export )?(RABBITMQ_)?$key=" "$ETC/rabbitmq-env.conf" && continue
    say "$NAME: adding $line to $ETC/rabbitmq-env.conf"
    printf '# added by stream tooling/brokers/rabbitmq.sh\n%s\n' "$line" | as_root tee -a "$ETC/rabbitmq-env.conf" >/dev/null
  done
}

cmd_up() {
  if healthy; then
    if [ -f "$OURS" ]; then say "$NAME: already running on $HOST:$PORT (started by these scripts)"
    else say "$NAME: already running on $HOST:$PORT (external, reused; never stopped by down.sh)"; fi
    return 0
  fi
  if port_open "$PORT"; then
    fail_rabbit "port $PORT is open but does not answer AMQP"
  fi
  apt_install rabbitmq-server
  configure
  mkdir -p "$DIR"
  say "$NAME: starting rabbitmq-server -detached (logs: $LOGDIR, $STARTLOG)"
  # returns at once; rabbitmqctl await_startup fails until the node exists,
  # so wait for the port first, then for the node to finish booting
  as_root rabbitmq-server -detached >>"$STARTLOG" 2>&1 9>&- || fail_rabbit "rabbitmq-server -detached failed"
  touch "$OURS"
  wait_until "$BROKER_TIMEOUT" port_open "$PORT" \
    || fail_rabbit "port $PORT not open after ${BROKER_TIMEOUT}s"
  as_root timeout 120 rabbitmqctl await_startup >>"$STARTLOG" 2>&1 \
    || fail_rabbit "rabbitmqctl await_startup failed"
  wait_until 30 healthy || fail_rabbit "no AMQP answer on $HOST:$PORT"
  say "$NAME: ready on $HOST:$PORT (guest/guest)"
}

cmd_down() {
  if [ -f "$OURS" ] || [ "${BROKERS_DOWN_ALL:-0}" = 1 ]; then
    if port_open "$PORT"; then
      say "$NAME: stopping the node (rabbitmqctl stop)"
      as_root rabbitmqctl stop >>"$STARTLOG" 2>&1 || fail "$NAME" "rabbitmqctl stop failed" "$STARTLOG"
    else say "$NAME: not running (nothing to stop)"; fi
    rm -f "$OURS"
  else
    say "$NAME: not started by these scripts, left running (BROKERS_DOWN_ALL=1 stops it)"
  fi
}

cmd_status() {
  local owner=external
  [ -f "$OURS" ] && owner="started by tooling/brokers"
  if healthy; then status_line "$NAME" up "$PORT" "$(port_pid "$PORT")" "$owner"
  else status_line "$NAME" down "$PORT" ""; return 1; fi
}

# A private node: RABBITMQ_PRIVATE_PORT set (with a BROKERS_CACHE_DIR of its own). Its own node
# name, AMQP and Erlang distribution ports, mnesia dir, config and cookie, all in $DIR, none of
# /etc/rabbitmq; started from here with a pid file (so `kill` works), the epmd already running shared.
if [ -n "${RABBITMQ_PRIVATE_PORT:-}" ]; then
  PORT=$RABBITMQ_PRIVATE_PORT
  DIST_PORT="${RABBITMQ_PRIVATE_DIST_PORT:?RABBITMQ_PRIVATE_DIST_PORT is needed with RABBITMQ_PRIVATE_PORT}"
  PIDFILE="$DIR/rabbitmq.pid"
  LOG="$DIR/rabbitmq.log"
  # RABBITMQ_PRIVATE_TLS_PORT: an AMQPS listener too, and user $TLS_USER / $TLS_PASSWORD instead
  # of guest (the node's default user, made on its first boot). A client certificate is checked
  # when given, not required (RabbitMQ's TLS options are one set for all its TLS listeners).
  TLS_PORT="${RABBITMQ_PRIVATE_TLS_PORT:-}"
  healthy() {
    [ "$(probe_hex "$PORT" 'AMQP\x00\x00\x09\x01' 3)" = 010000 ] || return 1
    if [ -n "$TLS_PORT" ]; then tls_ready "$TLS_PORT" || return 1; fi
  }
  # rabbitmq.conf lines of the AMQPS listener
  tls_config() {
    [ -n "$TLS_PORT" ] || return 0
    tls_certs
    cat <<EOF
listeners.ssl.default = $HOST:$TLS_PORT
ssl_options.cacertfile = $TLS_DIR/ca.pem
ssl_options.certfile = $TLS_DIR/server.pem
ssl_options.keyfile = $TLS_DIR/server.key
ssl_options.verify = verify_peer
ssl_options.fail_if_no_peer_cert = false
default_user = $TLS_USER
default_pass = $TLS_PASSWORD
EOF
  }
  cmd_up() {
    healthy && { say "$NAME: private node already running on $HOST:$PORT"; return 0; }
    if [ -z "$(pid_from "$PIDFILE")" ]; then
      if port_open "$PORT" || port_open "$DIST_PORT"; then fail "$NAME" "port $PORT or $DIST_PORT is taken" "$LOG"; fi
      apt_install rabbitmq-server
      mkdir -p "$DIR/mnesia" "$DIR/log"
      echo '[].' >"$DIR/enabled_plugins"
      : >"$DIR/rabbitmq-env.conf"
      printf 'listeners.tcp.default = %s:%s\n' "$HOST" "$PORT" >"$DIR/rabbitmq.conf"
      tls_config >>"$DIR/rabbitmq.conf"
      say "$NAME: starting a private node stream$PORT@localhost on $HOST:$PORT (log: $LOG)"
      # RUNNING_UNDER_SYSTEMD: rabbitmq-server execs the VM (no wrapper shell), so the pid is beam's
      spawn "$PIDFILE" "$LOG" env HOME="$DIR" RUNNING_UNDER_SYSTEMD=true \
        RABBITMQ_NODENAME="stream$PORT@localhost" RABBITMQ_NODE_IP_ADDRESS="$HOST" RABBITMQ_NODE_PORT="$PORT" \
        RABBITMQ_DIST_PORT="$DIST_PORT" RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}" \
        RABBITMQ_MNESIA_BASE="$DIR/mnesia" RABBITMQ_LOG_BASE="$DIR/log" RABBITMQ_CONFIG_FILE="$DIR/rabbitmq.conf" \
        RABBITMQ_CONF_ENV_FILE="$DIR/rabbitmq-env.conf" RABBITMQ_ENABLED_PLUGINS_FILE="$DIR/enabled_plugins" \
        /usr/lib/rabbitmq/bin/rabbitmq-server
    fi
    if ! wait_ready "$PIDFILE" healthy; then
      stop_pid "$PIDFILE" "$NAME" 15
      fail "$NAME" "no AMQP answer on $HOST:$PORT: $WAIT_ERR" "$LOG"
    fi
    if [ -n "$TLS_PORT" ]; then say "$NAME: private node ready on $HOST:$PORT and AMQPS $HOST:$TLS_PORT (user $TLS_USER)"
    else say "$NAME: private node ready on $HOST:$PORT (guest/guest)"; fi
  }
  cmd_down() { pidfile_down "$PORT" 30; }
  cmd_status() { pidfile_status "$PORT" "dist=$DIST_PORT${TLS_PORT:+ amqps=$TLS_PORT (user $TLS_USER)}"; }
fi

broker_main "$@"
