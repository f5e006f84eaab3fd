#!/usr/bin/env bash
# Generates a TypeScript client from a freshly started api's /openapi.json, type-checks it (tsc --noEmit),
# and runs it against that api. Needs node and npm (.ci/run installs them when missing).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
work="$(mktemp -d)"
api_pid=""
cleanup() {
  [ -n "$api_pid" ] && kill "$api_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

cd "$root"
cargo build --quiet --bin api
DATABASE_URL="sqlite://$work/client.db?mode=rwc" BCRYPT_COST=4 MAIL_DIR="$work/mail" BIND_ADDR=127.0.0.1:0 \
  RUST_LOG=info ./target/debug/api > "$work/api.log" 2>&1 &
api_pid=$!
for _ in $(seq 1 100); do
  port=$(sed -nE 's/.*listening on http:\/\/127\.0\.0\.1:([0-9]+).*/\1/p' "$work/api.log" | head -n1)
  [ -n "$port" ] && break
  sleep 0.1
done
[ -n "${port:-}" ] || { echo "the api did not start:"; cat "$work/api.log"; exit 1; }

cd "$here"
npm ci --no-audit --no-fund --silent
rm -rf generated dist
OPENAPI_URL="http://127.0.0.1:$port/openapi.json" npm run --silent generate
npx tsc --noEmit -p .
npx tsc -p .
BASE_URL="http://127.0.0.1:$port" node --test dist/src/client.test.js
