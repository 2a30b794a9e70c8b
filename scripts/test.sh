#!/usr/bin/env bash
# The whole test suite, from a fresh Debian machine with Swift: installs what is missing
# (libhiredis-dev, redis-server, ...), checks formatting, builds, and runs every test.
# Tests that need Redis start their own redis-server on a free port and stop it by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
ensure_debs "${SESSION_API_DEBS[@]}"

echo "== swift format lint"
swift format lint --strict -r Sources Tests Package.swift
echo "== scripts/test-serve-redis.sh (serve.sh's private Redis: unix socket only, mode 0700)"
scripts/test-serve-redis.sh
echo "== swift build --build-tests"
swift build --build-tests
# One test target at a time: the Redis client's suites start Sentinel and Cluster fixtures (up to 6
# redis-servers) and the API suites start server processes; on 2 cores, both at once starve each other's timers.
# Swift Testing runs every test of a pass at once by default; 4 at a time finishes as fast here and leaves the
# tests with second-long windows (session expiry, idle timeouts) the slack they need on a loaded machine.
width=(--experimental-maximum-parallelization-width 4)
echo "== swift test --filter RedisClientTests (the Redis client against real redis-servers: plain, TLS, Sentinel, Cluster)"
swift test --skip-build "${width[@]}" --filter RedisClientTests
echo "== swift test --filter SessionAPITests (API tests with JSON-file users and each test's own AUTH_TYPE)"
swift test --skip-build "${width[@]}" --filter SessionAPITests
# The same API suite, unchanged, against Redis sessions, then Redis sessions and Redis users, then both on a
# Redis Cluster of 3 primaries (each suite builds its own, about 2 s).
for backend in redis redis-users cluster; do
    echo "== swift test --filter SessionAPITests with SESSION_API_TEST_BACKEND=$backend"
    SESSION_API_TEST_BACKEND=$backend swift test --skip-build "${width[@]}" --filter SessionAPITests
done
