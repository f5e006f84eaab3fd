#!/bin/bash
# Interleaved A/B of two api binaries on the authenticated task list (SQLite, one user with 100 tasks):
# wrk -t2 -c64 -d8s after a 2 s warm-up, 3 rounds alternating A and B, limiters out of reach, access log off
# (AB_RUST_LOG=info turns it on, written to a file).
#   bench/ab_list.sh BINARY_A BINARY_B
# With AB_POSTGRES_URL (a server it may create the database securecrud_ab on), the same on PostgreSQL. AB_ENV_A
# and AB_ENV_B (e.g. "SESSION_CACHE_MAX_AGE_MS=0") add environment variables to one side only.
# E.g. the QPSG step of issue 15: `LIBSQLITE3_FLAGS=-USQLITE_ENABLE_QPSG cargo build --release --bin api`
# for A (copy target/release/api away), a plain release build for B. Needs wrk (make bench installs it).
set -euo pipefail
A=$1; B=$2; work=$(mktemp -d); port=18300
export JWT_SECRET=benchmark-secret-benchmark-secret-0123456789 BCRYPT_COST=4 RATE_LIMIT_AUTH_PER_MIN=1000000000 RATE_LIMIT_API_PER_MIN=1000000000 RUST_LOG=${AB_RUST_LOG:-warn} MAIL_DIR=$work/mail
url() { if [ -n "${AB_POSTGRES_URL:-}" ]; then echo "${AB_POSTGRES_URL%/*}/securecrud_ab"; else echo "sqlite://$1?mode=rwc"; fi; }
if [ -n "${AB_POSTGRES_URL:-}" ]; then
  psql "$AB_POSTGRES_URL" -qc "DROP DATABASE IF EXISTS securecrud_ab WITH (FORCE)" -c "CREATE DATABASE securecrud_ab" > /dev/null
fi
start() { env ${3:-} DATABASE_URL="$(url "$2")" BIND_ADDR=127.0.0.1:$port $1 > $work/log 2>&1 & pid=$!; for _ in $(seq 1 100); do curl -sf http://127.0.0.1:$port/health >/dev/null && break; sleep 0.1; done; }
stop() { kill $pid; wait $pid 2>/dev/null || true; }
start $A $work/seed.db
curl -s -o /dev/null -X POST http://127.0.0.1:$port/api/v1/auth/register -H 'Content-Type: application/json' -d '{"username":"bench","email":"bench@example.com","password":"benchmark passphrase"}'
T=$(curl -s -X POST http://127.0.0.1:$port/api/v1/auth/login -H 'Content-Type: application/json' -d '{"login":"bench","password":"benchmark passphrase"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
for i in $(seq 1 100); do curl -s -o /dev/null -X POST http://127.0.0.1:$port/api/v1/tasks -H "Authorization: Bearer $T" -H 'Content-Type: application/json' -d "{\"title\":\"task $i\",\"description\":\"something to do $i\"}"; done
stop
for round in 1 2 3; do
  for name in A B; do
    bin=$A; extra=${AB_ENV_A:-}; [ $name = B ] && bin=$B && extra=${AB_ENV_B:-}
    if [ -z "${AB_POSTGRES_URL:-}" ]; then
      rm -f $work/run.db*; cp $work/seed.db $work/run.db; [ -f $work/seed.db-wal ] && cp $work/seed.db-wal $work/run.db-wal; true
    fi
    start $bin $work/run.db "$extra"
    T=$(curl -s -X POST http://127.0.0.1:$port/api/v1/auth/login -H 'Content-Type: application/json' -d '{"login":"bench","password":"benchmark passphrase"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
    wrk -t2 -c64 -d2s -H "Authorization: Bearer $T" "http://127.0.0.1:$port/api/v1/tasks?limit=20" > /dev/null
    r=$(wrk -t2 -c64 -d8s -H "Authorization: Bearer $T" "http://127.0.0.1:$port/api/v1/tasks?limit=20" | awk '/Requests\/sec/{print $2} /Non-2xx/{print "NON2XX", $0}')
    echo "round $round $name $r"
    stop
  done
done
rm -rf $work
[ -n "${AB_POSTGRES_URL:-}" ] && psql "$AB_POSTGRES_URL" -qc "DROP DATABASE IF EXISTS securecrud_ab WITH (FORCE)" > /dev/null
true
