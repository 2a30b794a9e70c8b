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
echo "== swift build --build-tests"
swift build --build-tests
echo "== swift test"
swift test --skip-build --parallel
