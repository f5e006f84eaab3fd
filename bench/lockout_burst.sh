#!/usr/bin/env bash
# The lockout under a burst: 30 concurrent wrong logins for one user against API_BIN (default: the debug
# build) at BCRYPT_COST (default 12), on a fresh SQLite database. Prints how many answers had each status:
# at most LOGIN_MAX_FAILURES (5) may be 401 (a real password check); the rest must be 429.
#   bench/lockout_burst.sh [API_BIN]
set -euo pipefail
bin="${1:-target/debug/api}"
work="$(mktemp -d)"
port=18182
DATABASE_URL="sqlite://$work/x.db?mode=rwc" BIND_ADDR="127.0.0.1:$port" BCRYPT_COST="${BCRYPT_COST:-12}" \
  RATE_LIMIT_AUTH_PER_MIN=0 RATE_LIMIT_API_PER_MIN=0 MAIL_DIR="$work/mail" RUST_LOG=warn "$bin" \
  > "$work/log" 2>&1 &
pid=$!
trap 'kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.1; done
curl -s -o /dev/null -X POST "http://127.0.0.1:$port/api/v1/auth/register" -H 'Content-Type: application/json' \
  -d '{"username":"ada_l","email":"ada@example.com","password":"correct horse battery staple"}'
seq 1 30 | xargs -P 30 -I{} curl -s -o /dev/null -w '%{http_code}\n' -X POST \
  "http://127.0.0.1:$port/api/v1/auth/login" -H 'Content-Type: application/json' \
  -d '{"login":"ada_l","password":"wrong password here"}' | sort | uniq -c
