#!/usr/bin/env bash
# Runs session-api from a fresh Debian machine with Swift: installs what is missing, builds in release
# mode and serves on API_HOST:API_PORT (default 0.0.0.0:5000). Every setting is an environment
# variable (see README). Data (.db_User.json, ...) goes to DATA_DIR (default ./data).
# Extra arguments go to `session-api serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
ensure_debs "${SESSION_API_DEBS[@]}"

export DATA_DIR=${DATA_DIR:-$PWD/data}
mkdir -p "$DATA_DIR"
swift build -c release --product session-api
exec .build/release/session-api serve "$@"
