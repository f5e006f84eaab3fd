#!/bin/bash
# Interleaved A/B of two api binaries on the authenticated task list (one user with 100 tasks):
# wrk -t2 -c64 -d8s after a 2 s warm-up, 3 rounds (AB_ROUNDS) alternating A and B, limiters out of reach,
# access log off (AB_RUST_LOG=info turns it on, written to a file). The rounds of one side spread by ±15 % on a
# shared 2-core machine: for a difference under 10 %, take 6 rounds or more and compare the means.
#   bench/ab_list.sh BINARY_A BINARY_B
# SQLite by default (each round on a fresh copy of one seeded file). With AB_POSTGRES_URL (a server it may
# create databases on), on PostgreSQL: each side seeds and reads its own database (securecrud_ab_a, _b), as the
# two builds may have different migrations. AB_ENV_A and AB_ENV_B (e.g. "SESSION_CACHE_MAX_AGE_MS=0") add
# environment variables to one side only.
# E.g. the QPSG step of issue 15: `LIBSQLITE3_FLAGS=-USQLITE_ENABLE_QPSG cargo build --release --bin api`
# for A (copy target/release/api away), a plain release build for B. Needs wrk (make bench installs it).
set -euo pipefail
A=$1; B=$2; work=$(mktemp -d); port=18300; base=http://127.0.0.1:$port
export JWT_SECRET=benchmark-secret-benchmark-secret-0123456789 BCRYPT_COST=4 RATE_LIMIT_AUTH_PER_MIN=1000000000 RATE_LIMIT_API_PER_MIN=1000000000 RUST_LOG=${AB_RUST_LOG:-warn} MAIL_DIR=$work/mail
pg() { psql "$AB_POSTGRES_URL" -qc "$1" > /dev/null; }
url() { # SIDE -> the database URL that side reads
  if [ -n "${AB_POSTGRES_URL:-}" ]; then echo "${AB_POSTGRES_URL%/*}/securecrud_ab_$1"; else echo "sqlite://$work/run-$1.db?mode=rwc"; fi
}
start() { env ${3:-} DATABASE_URL="$(url "$2")" BIND_ADDR=127.0.0.1:$port $1 > $work/log 2>&1 & pid=$!; for _ in $(seq 1 100); do curl -sf $base/health >/dev/null && break; sleep 0.1; done; }
stop() { kill $pid; wait $pid 2>/dev/null || true; }
token() { curl -sf -X POST $base/api/v1/auth/login -H 'Content-Type: application/json' -d '{"login":"bench","password":"benchmark passphrase"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])'; }
seed() { # BINARY SIDE: one user with 100 tasks
  start "$1" "$2"
  curl -sf -o /dev/null -X POST $base/api/v1/auth/register -H 'Content-Type: application/json' -d '{"username":"bench","email":"bench@example.com","password":"benchmark passphrase"}'
  local t; t=$(token)
  for i in $(seq 1 100); do curl -sf -o /dev/null -X POST $base/api/v1/tasks -H "Authorization: Bearer $t" -H 'Content-Type: application/json' -d "{\"title\":\"task $i\",\"description\":\"something to do $i\"}"; done
  stop
}
if [ -n "${AB_POSTGRES_URL:-}" ]; then
  for side in a b; do pg "DROP DATABASE IF EXISTS securecrud_ab_$side WITH (FORCE)"; pg "CREATE DATABASE securecrud_ab_$side"; done
  seed "$A" a; seed "$B" b
else
  seed "$A" seed; cp $work/run-seed.db $work/seed.db; [ -f $work/run-seed.db-wal ] && cp $work/run-seed.db-wal $work/seed.db-wal; true
fi
for round in $(seq 1 "${AB_ROUNDS:-3}"); do
  for name in A B; do
    bin=$A; extra=${AB_ENV_A:-}; side=a; [ $name = B ] && bin=$B && extra=${AB_ENV_B:-} && side=b
    if [ -z "${AB_POSTGRES_URL:-}" ]; then
      rm -f $work/run-$side.db*; cp $work/seed.db $work/run-$side.db; [ -f $work/seed.db-wal ] && cp $work/seed.db-wal $work/run-$side.db-wal; true
    fi
    start $bin $side "$extra"
    T=$(token)
    wrk -t2 -c64 -d2s -H "Authorization: Bearer $T" "$base/api/v1/tasks?limit=20" > /dev/null
    r=$(wrk -t2 -c64 -d8s -H "Authorization: Bearer $T" "$base/api/v1/tasks?limit=20" | awk '/Requests\/sec/{print $2} /Non-2xx/{print "NON2XX", $0}')
    echo "round $round $name $r" | tee -a $work/results
    stop
  done
done
mean() { awk -v side=$1 '$3 == side {t += $4; n++} END {printf "%.0f", t / n}' $work/results; }
echo "means: A $(mean A) B $(mean B)"
rm -rf $work
if [ -n "${AB_POSTGRES_URL:-}" ]; then for side in a b; do pg "DROP DATABASE IF EXISTS securecrud_ab_$side WITH (FORCE)"; done; fi
