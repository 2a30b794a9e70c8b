#!/usr/bin/env bash
# Runs session-api from a fresh Debian machine with Swift: installs what is missing, builds in release
# mode and serves on API_HOST:API_PORT (default 0.0.0.0:5000). Every setting is an environment
# variable (see README); data goes to DATA_DIR (default ./data).
#
# With REDIS_URL unset, it starts a private redis-server (AOF on, data in DATA_DIR/redis; no TCP port,
# only the unix socket DATA_DIR/redis/redis.sock in that directory of mode 0700, so no other local user
# can reach it), makes session_redis_auth the default AUTH_TYPE, and stops that Redis when the server
# exits (Ctrl-C or SIGTERM stop both). Extra arguments go to `session-api serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
ensure_debs "${SESSION_API_DEBS[@]}"

export DATA_DIR=${DATA_DIR:-$PWD/data}
mkdir -p "$DATA_DIR"
swift build "${SWIFT_RELEASE[@]}" --product session-api
binary=$(swift build "${SWIFT_RELEASE[@]}" --show-bin-path)/session-api

PRIVATE_REDIS_PID=
server_pid=
stop_all() {
    trap - INT TERM EXIT
    [ -n "$server_pid" ] && kill -TERM "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null || true
    if [ -n "$PRIVATE_REDIS_PID" ]; then
        kill -TERM "$PRIVATE_REDIS_PID" 2>/dev/null && wait "$PRIVATE_REDIS_PID" 2>/dev/null || true
        echo "stopped the private redis-server" >&2
    fi
}
trap stop_all EXIT
trap 'stop_all; exit 0' INT TERM

if [ -z "${REDIS_URL:-}" ]; then
    start_private_redis "$DATA_DIR/redis"
    # The URL's path is percent-decoded: encode what would end it or start an escape.
    socket_url_path=${PRIVATE_REDIS_SOCKET//%/%25}
    socket_url_path=${socket_url_path//\?/%3F}
    export REDIS_URL="unix://${socket_url_path//#/%23}"
    export AUTH_TYPE=${AUTH_TYPE:-session_redis_auth}
    echo "private redis-server on $REDIS_URL (pid $PRIVATE_REDIS_PID, no TCP port, data in $DATA_DIR/redis);" \
        "redis-cli -s $PRIVATE_REDIS_SOCKET" >&2
fi

"$binary" serve "$@" &
server_pid=$!
wait "$server_pid" || status=$?
server_pid=
exit "${status:-0}"
