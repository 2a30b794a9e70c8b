#!/usr/bin/env bash
# Benchmarks, all against ONE private redis-server (free 127.0.0.1 port, temp dir, no persistence):
#   1. Redis client: redis-benchmark -t get -c 1 -P 64 (C, one connection) next to RedisClient doing GET on one
#      connection with 256 commands in flight (redis-client-bench, release build), alternated ROUNDS times (both
#      swing from run to run on a shared machine); prints the best of each and their ratio (goal >= 0.5).
#   2. HTTP: session-api (release) with AUTH_TYPE=session_redis_auth and 1000 users in .db_User.json; after one
#      login, wrk -t1 -c64 -d${DURATION}s --latency on GET /api/v1/status and on GET /api/v1/users/me with the
#      session cookie (2 s unrecorded warm-up each); prints requests/s, p50/p99 and users/me / status (goal >= 0.7).
# wrk, redis-server and the server share the machine's cores, so these are comparative figures, not capacity.
# Environment: DURATION (8), REQUESTS (2000000), IN_FLIGHT (256), CONNECTIONS (64), ROUNDS (3).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
ensure_debs "${SESSION_API_DEBS[@]}" wrk

DURATION=${DURATION:-8}
REQUESTS=${REQUESTS:-2000000}
IN_FLIGHT=${IN_FLIGHT:-256}
CONNECTIONS=${CONNECTIONS:-64}
ROUNDS=${ROUNDS:-3}

echo "== swift build ${SWIFT_RELEASE[*]} (session-api, redis-client-bench)"
swift build "${SWIFT_RELEASE[@]}" --product session-api
swift build "${SWIFT_RELEASE[@]}" --product redis-client-bench
bin=$(swift build "${SWIFT_RELEASE[@]}" --show-bin-path)

work=$(mktemp -d)
redis_pid=
server_pid=
cleanup() {
    [ -n "$server_pid" ] && kill -TERM "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null || true
    [ -n "$redis_pid" ] && kill -TERM "$redis_pid" 2>/dev/null && wait "$redis_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$work" --save '' --appendonly no --daemonize no \
    --logfile "$work/redis.log" &
redis_pid=$!
wait_for_redis "$redis_port" 10
echo "== redis-server $(redis-server --version | awk '{print $3}') on 127.0.0.1:$redis_port; $(nproc) cores; $(uname -r)"

# 1. The client, next to redis-benchmark.
key='key:__rand_int__'
redis-cli -p "$redis_port" set "$key" xxx >/dev/null
c_rps=0
swift_rps=0
for round in $(seq "$ROUNDS"); do
    echo "== round $round: redis-benchmark -p $redis_port -t get -c 1 -P 64 -n $REQUESTS --csv"
    c_out=$(redis-benchmark -h 127.0.0.1 -p "$redis_port" -t get -c 1 -P 64 -n "$REQUESTS" --csv)
    echo "$c_out"
    rps=$(echo "$c_out" | awk -F'","' '/^"GET"/ {print int($2)}')
    [ "$rps" -gt "$c_rps" ] && c_rps=$rps
    echo "== round $round: redis-client-bench --port $redis_port --requests $REQUESTS --in-flight $IN_FLIGHT"
    swift_out=$("$bin/redis-client-bench" --port "$redis_port" --requests "$REQUESTS" --in-flight "$IN_FLIGHT" --key "$key")
    echo "$swift_out"
    rps=$(echo "$swift_out" | sed -n 's/^RESULT requests_per_second=//p')
    [ "$rps" -gt "$swift_rps" ] && swift_rps=$rps
done

# 2. The HTTP hot path. 1000 users as the peers' bench makes them (hex SHA-256 passwords, as the original).
python3 - "$work/.db_User.json" <<'PY'
import hashlib, json, sys, uuid
def record(uid, email, password, first, last):
    return {"id": uid, "email": email, "_password": hashlib.sha256(password.encode()).hexdigest(),
            "first_name": first, "last_name": last, "created_at": "2026-11-25T02:11:05", "updated_at": "2026-11-25T02:11:05"}
users = {"3c84c31b-67cf-49c3-b32c-e9de28f7a8eb": record("3c84c31b-67cf-49c3-b32c-e9de28f7a8eb", "bench@x.test", "benchpass", "Bench", "Marker")}
for i in range(999):
    uid = str(uuid.UUID(int=i + 1, version=4))
    users[uid] = record(uid, f"user{i}@x.test", f"pw{i}", f"First{i}", None if i % 3 == 0 else f"Last{i}")
open(sys.argv[1], "w").write(json.dumps(users))
PY
api_port=$(free_port)
DATA_DIR=$work AUTH_TYPE=session_redis_auth REDIS_URL=redis://127.0.0.1:$redis_port LOG_LEVEL=warning \
    API_HOST=127.0.0.1 API_PORT=$api_port "$bin/session-api" serve &
server_pid=$!
base=http://127.0.0.1:$api_port
wait_for_http "$base/healthz" 30
cookie=$(curl -s -D - -o /dev/null --data-urlencode email=bench@x.test --data-urlencode password=benchpass \
    "$base/api/v1/auth_session/login" | sed -n 's/^[Ss]et-[Cc]ookie: _my_session_id=\([^;]*\).*/\1/p' | tr -d '\r')
[ -n "$cookie" ] || { echo "bench: login failed" >&2; exit 1; }
me=$(curl -s -w ' %{http_code}' -b "_my_session_id=$cookie" "$base/api/v1/users/me")
echo "== users/me with the cookie: $me"
case "$me" in *'"email":"bench@x.test"'*' 200') ;; *) echo "bench: /users/me did not answer the user" >&2; exit 1 ;; esac

run_wrk() { # label, then wrk arguments; prints "rps p50 p99"
    wrk -t1 -c"$CONNECTIONS" -d2s "$@" >/dev/null
    local out
    out=$(wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --latency "$@")
    echo "$out" >&2
    local rps p50 p99 non2xx
    rps=$(echo "$out" | awk '/^Requests\/sec/ {print $2}')
    p50=$(echo "$out" | awk '$1 == "50%" {print $2}')
    p99=$(echo "$out" | awk '$1 == "99%" {print $2}')
    non2xx=$(echo "$out" | awk '/Non-2xx/ {print $5}')
    echo "$rps $p50 $p99 ${non2xx:-0}"
}
echo "== wrk -t1 -c$CONNECTIONS -d${DURATION}s --latency $base/api/v1/status"
read -r s_rps s_p50 s_p99 s_bad < <(run_wrk "$base/api/v1/status")
echo "== wrk -t1 -c$CONNECTIONS -d${DURATION}s --latency -H 'Cookie: _my_session_id=...' $base/api/v1/users/me"
read -r m_rps m_p50 m_p99 m_bad < <(run_wrk -H "Cookie: _my_session_id=$cookie" "$base/api/v1/users/me")
rss=$(awk '/VmHWM/ {printf "%.1f", $2/1024}' "/proc/$server_pid/status")

echo
echo "== results"
printf '  Redis GET, one connection, best of %s: redis-benchmark -P 64 %10d/s   RedisClient %s in flight %10d/s   ratio %s (goal >= 0.5)\n' \
    "$ROUNDS" "$c_rps" "$IN_FLIGHT" "$swift_rps" "$(awk -v s="$swift_rps" -v c="$c_rps" 'BEGIN {printf "%.2f", s / c}')"
printf '  GET /api/v1/status      %10s req/s   p50 %8s   p99 %8s   non-2xx %s\n' "$s_rps" "$s_p50" "$s_p99" "$s_bad"
printf '  GET /api/v1/users/me    %10s req/s   p50 %8s   p99 %8s   non-2xx %s\n' "$m_rps" "$m_p50" "$m_p99" "$m_bad"
printf '  users/me / status       %10s (goal >= 0.7)     server peak RSS %s MiB\n' "$(awk -v m="$m_rps" -v s="$s_rps" 'BEGIN {printf "%.2f", m / s}')" "$rss"
