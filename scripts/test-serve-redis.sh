#!/usr/bin/env bash
# Checks the private Redis that scripts/serve.sh starts (start_private_redis in lib.sh): no TCP listener,
# reachable through its unix socket, socket and directory mode 0700. Needs only redis-server and
# redis-cli (no build); about a second. Stops the Redis it started by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

work=$(mktemp -d "${TMPDIR:-/tmp}/session-api-serve-redis.XXXXXX")
PRIVATE_REDIS_PID=
cleanup() {
    if [ -n "$PRIVATE_REDIS_PID" ]; then
        kill -TERM "$PRIVATE_REDIS_PID" 2>/dev/null && wait "$PRIVATE_REDIS_PID" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
fail() {
    echo "test-serve-redis: FAIL: $*" >&2
    exit 1
}

# The TCP sockets process $1 listens on: its socket inodes, looked up in /proc/net/tcp and tcp6 (state 0A).
tcp_listeners() {
    local inodes
    inodes=$(find "/proc/$1/fd" -lname 'socket:*' -printf '%l\n' 2>/dev/null | sed 's/^socket:\[\([0-9]*\)\]$/\1/' | tr '\n' ' ')
    local tables=(/proc/net/tcp)
    [ -r /proc/net/tcp6 ] && tables+=(/proc/net/tcp6)
    awk -v inodes=" $inodes" '$4 == "0A" && index(inodes, " " $10 " ") { print $2 }' "${tables[@]}"
}

# A directory left open by an older serve.sh: made 0700.
mkdir -m 755 "$work/redis"
start_private_redis "$work/redis"
socket=$PRIVATE_REDIS_SOCKET

[ "$socket" = "$(cd "$work/redis" && pwd -P)/redis.sock" ] || fail "socket path $socket"
[ -S "$socket" ] || fail "no socket at $socket"
[ "$(stat -c %a "$work/redis")" = 700 ] || fail "directory mode $(stat -c %a "$work/redis"), expected 700"
[ "$(stat -c %a "$socket")" = 700 ] || fail "socket mode $(stat -c %a "$socket"), expected 700"
[ "$(redis-cli -s "$socket" ping)" = PONG ] || fail "no PONG through the socket"
[ "$(redis-cli -s "$socket" config get port | sed -n 2p)" = 0 ] || fail "redis has a TCP port"
[ "$(redis-cli -s "$socket" config get appendonly | sed -n 2p)" = yes ] || fail "AOF is off"
listeners=$(tcp_listeners "$PRIVATE_REDIS_PID")
[ -z "$listeners" ] || fail "redis-server (pid $PRIVATE_REDIS_PID) listens on TCP: $listeners"
# The check above sees a TCP listener when there is one: the same lookup on a second Redis with a port.
port=$(free_port)
redis-server --bind 127.0.0.1 --port "$port" --save '' --daemonize no --logfile "$work/tcp.log" &
tcp_pid=$!
wait_for_redis "$port" 10 || { kill -TERM "$tcp_pid"; fail "control redis did not start"; }
control=$(tcp_listeners "$tcp_pid")
kill -TERM "$tcp_pid" && wait "$tcp_pid" 2>/dev/null || true
[ -n "$control" ] || fail "the TCP-listener check found nothing on a Redis listening on port $port"

echo "test-serve-redis: ok (unix socket only, 0700: $socket)"
