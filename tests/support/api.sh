# Sourced by the test scripts that drive a real api process (tests/browser, tests/client, tests/contract).
#
# Sets `root` (the repository) and `work` (a temp folder removed on exit), and defines
#   start_api [VAR=value…]  builds the debug `api`, starts it on 127.0.0.1:0 with a temp SQLite database (and
#                           the given variables), waits until it listens, and sets `port` and `base`.
# The api is stopped on exit.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
work="$(mktemp -d)"
api_pid=""
cleanup_api() {
  if [ -n "$api_pid" ]; then kill "$api_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup_api EXIT

# The settings every scripted api shares; a script overrides or adds with `export` before start_api.
export DATABASE_URL="${DATABASE_URL:-sqlite://$work/api.db?mode=rwc}" BCRYPT_COST="${BCRYPT_COST:-4}" \
  MAIL_DIR="${MAIL_DIR:-$work/mail}"

# The debug `api` and `seed` as `make test` builds them (`cargo test --no-run` puts them in target/debug with
# the test build's features): a script run after it builds nothing, where `cargo build --workspace --bins`,
# whose features differ, would build most of the workspace again (minutes on 2 cores).
build_bins() {
  (cd "$root" && cargo test --workspace --no-run --quiet)
}

start_api() {
  build_bins
  # In the temp folder: whatever the api keeps beside itself in development (data/jwt-secret) stays there.
  (cd "$work" && exec env "$@" BIND_ADDR=127.0.0.1:0 RUST_LOG=info "$root/target/debug/api") > "$work/api.log" 2>&1 &
  api_pid=$!
  port=""
  for _ in $(seq 1 100); do
    port=$(sed -nE 's/.*listening on http:\/\/127\.0\.0\.1:([0-9]+).*/\1/p' "$work/api.log" | head -n1)
    [ -n "$port" ] && break
    sleep 0.1
  done
  if [ -z "$port" ]; then
    echo "the api did not start:"
    cat "$work/api.log"
    exit 1
  fi
  base="http://127.0.0.1:$port"
}
