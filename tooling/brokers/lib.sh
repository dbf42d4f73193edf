# shellcheck shell=bash disable=SC2016
# (SC2016: the single-quoted `bash -c` bodies below expand their own "$0"/"$1")
# Shared helpers for the broker scripts. Source it; do not run it.
# Every broker script sources this file, so each piece of logic lives here once.

BROKERS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${BROKERS_CACHE_DIR:-$BROKERS_DIR/.cache}"
BROKER_TIMEOUT="${BROKER_TIMEOUT:-180}"   # seconds to wait for a broker to become ready
BROKER_POLL="${BROKER_POLL:-1}"           # seconds between two readiness checks (the fault tests' private brokers: 0.1)
BROKERS_DEFAULT="activemq,rabbitmq,mqtt,kafka"
HOST=127.0.0.1
mkdir -p "$CACHE"

say() { printf '[brokers] %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }

# Run as root: directly when we are root, else through sudo.
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# broker key (as in $BROKERS) -> script file name
broker_script() {
  case "$1" in
    activemq) echo activemq.sh ;;
    rabbitmq) echo rabbitmq.sh ;;
    mqtt)     echo mosquitto.sh ;;
    kafka)    echo kafka.sh ;;
    *) die "unknown broker '$1' (known: $BROKERS_DEFAULT)" ;;
  esac
}

# Broker keys picked by $BROKERS, one per line.
broker_list() { tr ', ' '\n' <<<"${BROKERS:-$BROKERS_DEFAULT}" | sed '/^$/d'; }

# Runs one subcommand (down, status) of every broker in $BROKERS; fails if any of them failed.
each_broker() {
  local rc=0 key
  for key in $(broker_list); do bash "$BROKERS_DIR/$(broker_script "$key")" "$1" || rc=1; done
  return "$rc"
}

# ---- packages --------------------------------------------------------------
_APT_UPDATED=0
# apt_install PKG... : install the Debian packages that are not installed yet.
apt_install() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local log="$CACHE/apt.log" lock=(-o DPkg::Lock::Timeout=300)
  say "installing Debian packages: ${missing[*]} (log: $log)"
  if [ "$_APT_UPDATED" = 0 ]; then
    as_root apt-get "${lock[@]}" update -q >>"$log" 2>&1 || fail apt "apt-get update failed" "$log"
    _APT_UPDATED=1
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get "${lock[@]}" install -y -q --no-install-recommends \
    -o Dpkg::Options::=--force-confold "${missing[@]}" >>"$log" 2>&1 \
    || fail apt "apt-get install ${missing[*]} failed" "$log"
}
# need_cmd CMD PKG : make sure CMD exists, installing PKG if not.
need_cmd() { command -v "$1" >/dev/null 2>&1 || apt_install "$2"; }

# ---- ports and protocol probes ---------------------------------------------
# port_open PORT : something accepts TCP connections on 127.0.0.1:PORT
port_open() { timeout 2 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$HOST" "$1" 2>/dev/null; }

# port_listening PORT : a socket listens on PORT (checked with ss, without
# connecting, so brokers log no aborted connection; falls back to port_open)
port_listening() {
  if command -v ss >/dev/null 2>&1; then ss -Hltn "sport = :$1" 2>/dev/null | grep -q .; else port_open "$1"; fi
}

# probe_hex PORT BYTES N : send BYTES (a printf format, e.g. '\x01\x02'), print
# the first N bytes of the answer as lowercase hex (empty on failure).
probe_hex() {
  timeout "${PROBE_TIMEOUT:-5}" bash -c '
    exec 3<>"/dev/tcp/$0/$1" || exit 1
    printf "$2" >&3
    head -c "$3" <&3 | od -An -v -tx1 | tr -d " \n"
  ' "$HOST" "$1" "$2" "$3" 2>/dev/null || true
}

# wait_until TIMEOUT CMD... : poll CMD every $BROKER_POLL seconds until it succeeds.
wait_until() {
  local deadline=$((SECONDS + $1)); shift
  until "$@"; do
    [ "$SECONDS" -ge "$deadline" ] && return 1
    sleep "$BROKER_POLL"
  done
}

# wait_ready PIDFILE CHECK... : wait up to $BROKER_TIMEOUT s for CHECK to pass;
# gives up early when the process in PIDFILE has exited. Sets WAIT_ERR on failure.
# shellcheck disable=SC2034
WAIT_ERR=""
wait_ready() {
  local pidfile=$1; shift
  local deadline=$((SECONDS + BROKER_TIMEOUT))
  until "$@"; do
    if [ -z "$(pid_from "$pidfile")" ]; then WAIT_ERR="the process exited during startup"; return 1; fi
    # shellcheck disable=SC2034
    if [ "$SECONDS" -ge "$deadline" ]; then WAIT_ERR="not ready after ${BROKER_TIMEOUT}s"; return 1; fi
    sleep "$BROKER_POLL"
  done
}

# pid listening on 127.0.0.1:PORT, if ss can tell (empty otherwise)
port_pid() {
  command -v ss >/dev/null 2>&1 || return 0
  ss -Hltnp "sport = :$1" 2>/dev/null | grep -o 'pid=[0-9]*' | head -n1 | cut -d= -f2 || true
}

# ---- processes we started --------------------------------------------------
# pid_from FILE : the pid in FILE if that process still runs (and its command
# line names our cache dir, so a recycled pid is not taken for ours), else nothing
pid_from() {
  local pid
  [ -f "$1" ] || return 0
  pid="$(cat "$1" 2>/dev/null || true)"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
  if [ "${2:-}" = any ] || tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$CACHE"; then echo "$pid"; fi
}

# spawn PIDFILE LOGFILE CMD... : start CMD detached (own session, no stdin,
# stdout+stderr appended to LOGFILE) and record its pid in PIDFILE.
spawn() {
  local pidfile=$1 logfile=$2; shift 2
  mkdir -p "$(dirname "$pidfile")" "$(dirname "$logfile")"
  rm -f "$pidfile"
  printf '\n===== %s: %s\n' "$(date -Is)" "$*" >>"$logfile"
  # the inner bash writes its own pid, then execs CMD under that same pid
  # (9>&-: the daemon must not inherit the lock taken in broker_main)
  setsid nohup bash -c 'echo $$ >"$0"; exec "$@"' "$pidfile" "$@" >>"$logfile" 2>&1 </dev/null 9>&- &
  wait_until 5 test -s "$pidfile" || die "could not start: $*"
}

# stop_pid PIDFILE NAME [SECONDS] [any] : SIGTERM the process, SIGKILL after
# SECONDS ("any": also a process that is not one of ours)
stop_pid() {
  local pidfile=$1 name=$2 grace=${3:-30} pid
  pid="$(pid_from "$pidfile" "${4:-}")"
  if [ -z "$pid" ]; then rm -f "$pidfile"; say "$name: not running (nothing to stop)"; return 0; fi
  say "$name: stopping pid $pid"
  kill -TERM "$pid" 2>/dev/null || true
  if ! wait_until "$grace" bash -c '! kill -0 "$0" 2>/dev/null' "$pid"; then
    say "$name: still alive after ${grace}s, killing"
    kill -KILL "$pid" 2>/dev/null || true
    wait_until 10 bash -c '! kill -0 "$0" 2>/dev/null' "$pid" || true
  fi
  rm -f "$pidfile"
}

# kill_pid PIDFILE : SIGKILL the process we started (a crash, for the broker-restart fault tests;
# `up` starts it again on the same data dir and ports)
kill_pid() {
  local pid; pid="$(pid_from "$1")"
  [ -n "$pid" ] || return 0
  kill -KILL "$pid" 2>/dev/null || true
  # gone, or a zombie whose threads have all exited, so its sockets are closed (the process is
  # no child of ours: whoever reaps it may take a while)
  wait_until 10 bash -c '[ ! -d "/proc/$0" ] || { [ "$(ls "/proc/$0/task" 2>/dev/null | wc -l)" -le 1 ] && ! grep -qsE "^State:[[:space:]]+[^ZX[:space:]]" "/proc/$0/status"; }' "$pid" \
    || die "pid $pid survived SIGKILL"
  rm -f "$1"
}

# stop_external NAME PORT : SIGTERM whatever listens on PORT (down.sh with BROKERS_DOWN_ALL=1)
stop_external() {
  local pid; pid="$(port_pid "$2")"
  [ -n "$pid" ] || { say "$1: nothing listens on port $2"; return 0; }
  echo "$pid" >"$CACHE/.external.pid"
  stop_pid "$CACHE/.external.pid" "$1 (external)" 30 any
}

# ---- TLS and credentials (the TLS listeners of brokers we start) -------------
# The user and password a broker's TLS and password-protected listeners accept (test values,
# local only); the plain listeners of the shared brokers stay as they are.
TLS_USER="${BROKER_TLS_USER:-stream}"
TLS_PASSWORD="${BROKER_TLS_PASSWORD:-stream-secret}"
TLS_DIR="$CACHE/tls"

# tls_certs : a local CA and, signed by it, a server certificate for localhost / 127.0.0.1 / ::1
# (SAN) and a client certificate (mutual TLS), plus an unrelated CA that signed nothing (the
# "wrong CA" of the tests), all PEM, EC P-256, in $TLS_DIR. Made once; kept while ca.pem is there.
# Keys are PKCS#8 (what Kafka's PEM key store reads).
tls_certs() {
  [ -s "$TLS_DIR/client.pem" ] && return 0
  need_cmd openssl openssl
  local tmp="$TLS_DIR.tmp.$$" days=3650
  rm -rf "$tmp"; mkdir -p "$tmp"
  (
    cd "$tmp"
    key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
    ca() { key "$1.key" && openssl req -x509 -new -key "$1.key" -sha256 -days "$days" -subj "/CN=$2" -out "$1.pem" \
             -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign; }
    # leaf NAME CN EXT : a key and a certificate signed by the CA
    leaf() {
      key "$1.key" && openssl req -new -key "$1.key" -subj "/CN=$2" -out "$1.csr" \
        && printf '%s\n' "$3" >"$1.ext" \
        && openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -sha256 -days "$days" -extfile "$1.ext" -out "$1.pem" 2>/dev/null
    }
    ca ca "stream test CA" && ca other-ca "stream unrelated CA" \
      && leaf server localhost "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1
extendedKeyUsage=serverAuth" \
      && leaf client "$TLS_USER" "extendedKeyUsage=clientAuth" \
      && rm -f ./*.csr ./*.ext ./*.srl other-ca.key
  ) >>"$CACHE/tls.log" 2>&1 || { rm -rf "$tmp"; fail tls "openssl could not make the test certificates" "$CACHE/tls.log"; }
  chmod 644 "$tmp"/*   # the broker may run as another user (mosquitto drops to its own)
  rm -rf "$TLS_DIR"; mv "$tmp" "$TLS_DIR"
}

# tls_ready PORT : a TLS handshake on PORT succeeds and the server's certificate verifies
# against our CA (a real handshake, not just an open port)
tls_ready() {
  timeout "${PROBE_TIMEOUT:-5}" openssl s_client -connect "$HOST:$1" -CAfile "$TLS_DIR/ca.pem" -verify_return_error \
    -cert "$TLS_DIR/client.pem" -key "$TLS_DIR/client.key" </dev/null >/dev/null 2>&1
}

# ---- reporting -------------------------------------------------------------
# show_log FILE... : print the last 50 lines of each existing log file
show_log() {
  local f
  for f in "$@"; do
    [ -f "$f" ] || continue
    printf -- '----- last 50 lines of %s -----\n' "$f" >&2
    tail -n 50 "$f" >&2
    printf -- '----- end of %s -----\n' "$f" >&2
  done
}

# fail NAME MESSAGE LOGFILE... : clear message + log tails, then exit 1
fail() {
  local name=$1 msg=$2; shift 2
  say "FAILED: $name: $msg"
  show_log "$@"
  say "FAILED: $name: $msg (logs: $*)"
  exit 1
}

# status_line NAME STATE PORT PID NOTE : one aligned line for status.sh
# down for a broker these scripts run from $PIDFILE: stop it (allowing $2 seconds) if they started
# it; one found running is left alone unless BROKERS_DOWN_ALL=1. $1: its port.
pidfile_down() {
  if [ -n "$(pid_from "$PIDFILE")" ]; then stop_pid "$PIDFILE" "$NAME" "$2"
  elif [ "${BROKERS_DOWN_ALL:-0}" = 1 ]; then stop_external "$NAME" "$1"
  else say "$NAME: not started by these scripts, left running (BROKERS_DOWN_ALL=1 stops it)"; rm -f "$PIDFILE"; fi
}

# status for a broker these scripts run from $PIDFILE. $1: its port; $2: extra text when up.
pidfile_status() {
  local pid owner
  pid="$(pid_from "$PIDFILE")"
  if [ -n "$pid" ]; then owner="started by tooling/brokers"; else owner="external"; pid="$(port_pid "$1")"; fi
  if healthy; then status_line "$NAME" up "$1" "$pid" "$owner${2:+; $2}"
  else status_line "$NAME" down "$1" "$pid"; return 1; fi
}

status_line() { printf '%-9s %-5s port=%-6s pid=%-8s %s\n' "$1" "$2" "$3" "${4:--}" "${5:-}"; }

# Standard entry point of a broker script: dispatch up|down|status.
broker_main() {
  case "${1:-}" in
    up|down)
      # one up/down per broker at a time (two concurrent ups would race for the port)
      exec 9>"$CACHE/.lock-$(basename "$0" .sh)"
      flock -w "$BROKER_TIMEOUT" 9 || die "another up/down of $(basename "$0") is still running"
      "cmd_$1" ;;
    status) "cmd_$1" ;;
    kill) kill_pid "$PIDFILE" ;;
    *) echo "usage: $(basename "$0") up|down|status|kill" >&2; exit 2 ;;
  esac
}
