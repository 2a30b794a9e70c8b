# Shared by the scripts: install what a fresh Debian machine lacks, find free ports, stop children by PID.
# shellcheck shell=bash

# Debian packages the build and the scripts need (Swift itself comes with the machine).
SESSION_API_DEBS=(libhiredis-dev redis-server redis-tools curl python3 openssl)

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

# Waits (polling, up to $2 seconds) until $1 answers HTTP 200.
wait_for_http() {
    local url=$1 deadline=$((SECONDS + ${2:-30}))
    until curl -fs -o /dev/null "$url"; do
        [ $SECONDS -lt "$deadline" ] || { echo "$url did not answer" >&2; return 1; }
        sleep 0.05
    done
}
