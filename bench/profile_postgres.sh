#!/usr/bin/env bash
# Where the task list's CPU goes on PostgreSQL, in both processes: the api and the database server, with
# the load generator beside them. Builds nothing: run `make bench` (or `cargo build --release --bin api --bin
# seed`) first. Seeds a database of its own on the server at BENCH_POSTGRES_URL (default
# postgres://postgres@127.0.0.1:5432/postgres), serves the benchmark user's list under
# `wrk -t2 -c64` for 12 s, and samples every CPU with `perf record -a -F 999` for 8 s of it; then prints
# the share of each process and the top symbols of each.
#
#   bash bench/profile_postgres.sh
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
server="${BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
db=securecrud_profile
work="$(mktemp -d)"
port=18080
base="http://127.0.0.1:$port"
password="benchmark passphrase"
psql -q "$server" -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
url="${server%/*}/$db"
export JWT_SECRET="benchmark-secret-benchmark-secret-0123456789"
export RATE_LIMIT_AUTH_PER_MIN=1000000000 RATE_LIMIT_API_PER_MIN=1000000000
DATABASE_URL="$url" BCRYPT_COST=4 target/release/seed --reset --users 99 --tasks 9900 --seed 1 \
  --password "$password" > /dev/null
DATABASE_URL="$url" BIND_ADDR="127.0.0.1:$port" BCRYPT_COST=4 RUST_LOG=info target/release/api \
  > "$work/api.log" 2>&1 &
api=$!
trap 'kill $api 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; psql -q "$server" -c "DROP DATABASE IF EXISTS $db"' EXIT
for _ in $(seq 1 100); do curl -sf "$base/health" > /dev/null && break; sleep 0.1; done
curl -sf -X POST "$base/api/v1/auth/register" -H 'Content-Type: application/json' \
  -d "{\"username\":\"bench\",\"email\":\"bench@example.com\",\"password\":\"$password\"}" > /dev/null
token=$(curl -sf -X POST "$base/api/v1/auth/login" -H 'Content-Type: application/json' \
  -d "{\"login\":\"bench\",\"password\":\"$password\"}" | sed -E 's/.*"access_token":"([^"]+)".*/\1/')
for i in $(seq 1 100); do
  curl -sf -X POST "$base/api/v1/tasks" -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
    -d "{\"title\":\"benchmark task $i\",\"description\":\"milk, bread and benchmark number $i\"}" > /dev/null
done
TOKEN="$token" wrk -t2 -c64 -d3s -s bench/lua/auth.lua "$base/api/v1/tasks?limit=20" > /dev/null
TOKEN="$token" wrk -t2 -c64 -d12s --latency -s bench/lua/auth.lua "$base/api/v1/tasks?limit=20" > "$work/wrk.txt" &
load=$!
sleep 2
perf record -a -F 999 -o "$work/perf.data" -- sleep 8 2> /dev/null
wait "$load"
grep -E "Requests/sec" "$work/wrk.txt"
echo "== by process"
perf report -i "$work/perf.data" --sort comm --stdio 2>/dev/null | grep -E '^ +[0-9]' | head -6
echo "== by process and object"
perf report -i "$work/perf.data" --sort comm,dso --stdio 2>/dev/null | grep -E '^ +[0-9]' | head -12
for comm in postgres 'actix-rt|system'; do
  echo "== top symbols of $comm"
  perf report -i "$work/perf.data" --comm "$comm" --sort sym --stdio 2>/dev/null | grep -E '^ +[0-9]' | head -15
done
