# Shared by the scripts: install what a fresh Debian machine lacks, find free ports, stop children by PID.
# shellcheck shell=bash

# Debian packages the build and the scripts need (Swift itself comes with the machine).
SESSION_API_DEBS=(libhiredis-dev libargon2-dev redis-server redis-tools curl python3 openssl)

# How every script builds the release server (as scripts/clusterlib.py's SWIFT_RELEASE: the same flags, so one
# build serves them all): Swift's runtime and Foundation linked statically, for less resident memory (README, Performance).
SWIFT_RELEASE=(-c release --static-swift-stdlib)

# Installs the missing packages of "$@" with apt-get (as root, or through sudo).
ensure_debs() {
    local missing=()
    local pkg
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "installing: ${missing[*]}" >&2
    local sudo=()
    [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
}

# Prints a TCP port that is free on 127.0.0.1 right now.
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# Waits (polling, up to $2 seconds) until redis on port $1 answers PING.
wait_for_redis() {
    local port=$1 deadline=$((SECONDS + ${2:-10}))
    until redis-cli -p "$port" ping 2>/dev/null | grep -q PONG; do
        [ $SECONDS -lt "$deadline" ] || { echo "redis on port $port did not start" >&2; return 1; }
        sleep 0.05
    done
}

# Starts a private redis-server for this user only: no TCP port, a unix socket (mode 0700) in directory $1,
# which is made (or changed to) mode 0700 and also holds the AOF and redis.log; waits (up to 10 s) until it
# answers. Sets PRIVATE_REDIS_PID and PRIVATE_REDIS_SOCKET (an absolute path) as soon as they are known, so
# that a caller's trap can stop it by PID. Call it directly, not in $(...): the server is this shell's child.
start_private_redis() {
    local dir
    mkdir -p "$1"
    chmod 700 "$1"
    dir=$(cd "$1" && pwd -P)
    PRIVATE_REDIS_SOCKET=$dir/redis.sock
    # sun_path holds 107 bytes and a NUL.
    if [ ${#PRIVATE_REDIS_SOCKET} -gt 107 ]; then
        echo "redis socket path too long for a unix socket (${#PRIVATE_REDIS_SOCKET} > 107 bytes): $PRIVATE_REDIS_SOCKET" >&2
        return 1
    fi
    redis-server --port 0 --unixsocket "$PRIVATE_REDIS_SOCKET" --unixsocketperm 700 --dir "$dir" \
        --appendonly yes --save '' --daemonize no --logfile "$dir/redis.log" &
    PRIVATE_REDIS_PID=$!
    local deadline=$((SECONDS + 10))
    until redis-cli -s "$PRIVATE_REDIS_SOCKET" ping 2>/dev/null | grep -q PONG; do
        if ! kill -0 "$PRIVATE_REDIS_PID" 2>/dev/null; then
            echo "redis-server exited at start-up (see $dir/redis.log)" >&2
            return 1
        fi
        [ $SECONDS -lt "$deadline" ] || { echo "redis on $PRIVATE_REDIS_SOCKET did not start" >&2; return 1; }
        sleep 0.05
    done
}

# Waits (polling, up to $2 seconds) until $1 answers HTTP 200.
wait_for_http() {
    local url=$1 deadline=$((SECONDS + ${2:-30}))
    until curl -fs -o /dev/null "$url"; do
        [ $SECONDS -lt "$deadline" ] || { echo "$url did not answer" >&2; return 1; }
        sleep 0.05
    done
}
