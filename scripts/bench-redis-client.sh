#!/usr/bin/env bash
# GET throughput on ONE connection: redis-benchmark (C) versus RedisClient (Swift, release build).
#
# What is measured, against one private redis-server (free 127.0.0.1 port, temp dir, no persistence):
#   1. redis-benchmark -t get -c 1 -P $PIPELINE -n $REQUESTS: one connection, batches of $PIPELINE GETs
#      written together and awaited together.
#   2. redis-client-bench: one RedisClient connection, $IN_FLIGHT concurrent tasks each awaiting `client.get(key)`
#      in a loop, so $IN_FLIGHT GETs are in flight at any time; $SWIFT_REQUESTS GETs after a warm-up.
# Both read the same 3-byte value under the key redis-benchmark uses (`key:__rand_int__`, set first), so both
# get bulk-string replies. The two run alternately for $ROUNDS rounds (on a 2-core machine anything else running
# skews single runs); every run is printed, and the best run of each is compared: ratio = Swift / redis-benchmark.
# Environment: REQUESTS (2000000), PIPELINE (64), SWIFT_REQUESTS (2000000), IN_FLIGHT (256), ROUNDS (3).
set -euo pipefail

cd "$(dirname "$0")/.."
REQUESTS=${REQUESTS:-2000000}
PIPELINE=${PIPELINE:-64}
SWIFT_REQUESTS=${SWIFT_REQUESTS:-2000000}
IN_FLIGHT=${IN_FLIGHT:-256}
ROUNDS=${ROUNDS:-3}
KEY='key:__rand_int__'

for tool in redis-server redis-cli redis-benchmark; do
    command -v "$tool" >/dev/null || { echo "bench-redis-client: $tool not found (apt-get install redis-server redis-tools)" >&2; exit 1; }
done

echo "== building redis-client-bench (release)"
swift build -c release --product redis-client-bench
BENCH="$(swift build -c release --show-bin-path)/redis-client-bench"

DIR=$(mktemp -d)
REDIS_PID=""
cleanup() {
    if [[ -n "$REDIS_PID" ]] && kill -0 "$REDIS_PID" 2>/dev/null; then
        kill -TERM "$REDIS_PID"
        wait "$REDIS_PID" 2>/dev/null || true
    fi
    rm -rf "$DIR"
}
trap cleanup EXIT

# Start redis-server on a random free port; retry on a port collision. Ready = answers PING (polled, no fixed sleep).
for attempt in 1 2 3 4 5; do
    PORT=$((20000 + RANDOM % 40000))
    redis-server --port "$PORT" --bind 127.0.0.1 --dir "$DIR" --save '' --appendonly no --daemonize no \
        --logfile "$DIR/redis.log" &
    REDIS_PID=$!
    for _ in $(seq 1 500); do
        if ! kill -0 "$REDIS_PID" 2>/dev/null; then break; fi
        if [[ "$(redis-cli -p "$PORT" ping 2>/dev/null)" == "PONG" ]]; then break 2; fi
        sleep 0.01
    done
    kill -TERM "$REDIS_PID" 2>/dev/null || true
    wait "$REDIS_PID" 2>/dev/null || true
    REDIS_PID=""
    echo "bench-redis-client: redis-server did not start on port $PORT (attempt $attempt): $(tail -1 "$DIR/redis.log" 2>/dev/null)" >&2
done
[[ -n "$REDIS_PID" ]] || { echo "bench-redis-client: could not start redis-server" >&2; exit 1; }
echo "== redis-server $(redis-server --version | awk '{print $3}') pid $REDIS_PID on 127.0.0.1:$PORT, $(nproc) CPU cores"

redis-cli -p "$PORT" set "$KEY" xxx >/dev/null

C_BEST=0
SWIFT_BEST=0
for round in $(seq 1 "$ROUNDS"); do
    echo "== round $round/$ROUNDS: redis-benchmark -h 127.0.0.1 -p $PORT -t get -c 1 -P $PIPELINE -n $REQUESTS --csv"
    C_OUT=$(redis-benchmark -h 127.0.0.1 -p "$PORT" -t get -c 1 -P "$PIPELINE" -n "$REQUESTS" --csv)
    echo "$C_OUT"
    C_RPS=$(echo "$C_OUT" | awk -F'","' '/^"GET"/ {print int($2)}')
    if ((C_RPS > C_BEST)); then C_BEST=$C_RPS; fi

    echo "== round $round/$ROUNDS: redis-client-bench --port $PORT --requests $SWIFT_REQUESTS --in-flight $IN_FLIGHT --key '$KEY'"
    SWIFT_OUT=$("$BENCH" --port "$PORT" --requests "$SWIFT_REQUESTS" --in-flight "$IN_FLIGHT" --key "$KEY")
    echo "$SWIFT_OUT"
    SWIFT_RPS=$(echo "$SWIFT_OUT" | sed -n 's/^RESULT requests_per_second=//p')
    if ((SWIFT_RPS > SWIFT_BEST)); then SWIFT_BEST=$SWIFT_RPS; fi
done

echo "== result (GET, one connection, best of $ROUNDS runs each)"
printf '  redis-benchmark (C, -P %s):          %10d requests/s\n' "$PIPELINE" "$C_BEST"
printf '  RedisClient (Swift, %s in flight):   %10d requests/s\n' "$IN_FLIGHT" "$SWIFT_BEST"
awk -v s="$SWIFT_BEST" -v c="$C_BEST" 'BEGIN { printf "  ratio Swift / redis-benchmark:         %10.2f (goal >= 0.50)\n", s / c }'
