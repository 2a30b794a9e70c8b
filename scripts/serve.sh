#!/usr/bin/env bash
# Runs session-api from a fresh Debian machine with Swift: installs what is missing, builds in release
# mode and serves on API_HOST:API_PORT (default 0.0.0.0:5000). Every setting is an environment
# variable (see README); data goes to DATA_DIR (default ./data).
#
# With REDIS_URL unset, it starts a private redis-server (AOF on, data in DATA_DIR/redis, loopback
# only, on a free port), makes session_redis_auth the default AUTH_TYPE, and stops that Redis when the
# server exits (Ctrl-C or SIGTERM stop both). Extra arguments go to `session-api serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
ensure_debs "${SESSION_API_DEBS[@]}"

export DATA_DIR=${DATA_DIR:-$PWD/data}
mkdir -p "$DATA_DIR"
swift build -c release --product session-api
binary=$PWD/.build/release/session-api

redis_pid=
server_pid=
stop_all() {
    trap - INT TERM EXIT
    [ -n "$server_pid" ] && kill -TERM "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null || true
    if [ -n "$redis_pid" ]; then
        kill -TERM "$redis_pid" 2>/dev/null && wait "$redis_pid" 2>/dev/null || true
        echo "stopped the private redis-server" >&2
    fi
}
trap stop_all EXIT
trap 'stop_all; exit 0' INT TERM

if [ -z "${REDIS_URL:-}" ]; then
    mkdir -p "$DATA_DIR/redis"
    port=$(free_port)
    redis-server --bind 127.0.0.1 --port "$port" --dir "$DATA_DIR/redis" --appendonly yes --save '' \
        --daemonize no --logfile "$DATA_DIR/redis/redis.log" &
    redis_pid=$!
    wait_for_redis "$port" 10
    export REDIS_URL="redis://127.0.0.1:$port"
    export AUTH_TYPE=${AUTH_TYPE:-session_redis_auth}
    echo "private redis-server on $REDIS_URL (pid $redis_pid, data in $DATA_DIR/redis)" >&2
fi

"$binary" serve "$@" &
server_pid=$!
wait "$server_pid" || status=$?
server_pid=
exit "${status:-0}"
