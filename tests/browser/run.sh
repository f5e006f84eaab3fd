#!/usr/bin/env bash
# Starts a freshly seeded api (SQLite, temp folder) and runs the Swagger UI browser test against it.
# Needs /usr/bin/chromium (Debian's `chromium`) and `npm ci` in this folder; .ci/run installs both.
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
cargo build --quiet --bin api --bin seed
export DATABASE_URL="sqlite://$work/docs.db?mode=rwc" BCRYPT_COST=4 RUST_LOG=warn,securecrud::access=info
password="browser test passphrase"
./target/debug/seed --users 3 --tasks 20 --password "$password" > "$work/seed.log"

BIND_ADDR=127.0.0.1:0 RUST_LOG=info ./target/debug/api > "$work/api.log" 2>&1 &
api_pid=$!
for _ in $(seq 1 100); do
  port=$(sed -nE 's/.*listening on http:\/\/127\.0\.0\.1:([0-9]+).*/\1/p' "$work/api.log" | head -n1)
  [ -n "$port" ] && break
  sleep 0.1
done
[ -n "${port:-}" ] || { echo "the api did not start:"; cat "$work/api.log"; exit 1; }

cd "$here"
BASE_URL="http://127.0.0.1:$port" DOCS_PASSWORD="$password" node --test docs.test.mjs
