#!/bin/bash
# Interleaved A/B of two api binaries on writes (SQLite): POST /tasks, PATCH /tasks/{id} and POST /auth/refresh,
# wrk -t2 -c64 -d6s each after a 2 s warm-up, 3 rounds (AB_ROUNDS) alternating A and B, access log off, limiters out of
# reach, BCRYPT_COST=4 (only the logins that make the refresh tokens hash).
#   bench/ab_writes.sh BINARY_A BINARY_B
# AB_ENV_A and AB_ENV_B (e.g. "MALLOC_ARENA_MAX=2") add environment variables to one side only.
# Prints "round N A|B scenario req/s p99 non-2xx", and each run's peak resident memory (VmHWM, MiB). Needs wrk (make bench installs it).
set -euo pipefail
A=$1; B=$2; work=$(mktemp -d); port=18301; root="$(cd "$(dirname "$0")/.." && pwd)"
export JWT_SECRET=benchmark-secret-benchmark-secret-0123456789 BCRYPT_COST=4 RATE_LIMIT_AUTH_PER_MIN=1000000000 RATE_LIMIT_API_PER_MIN=1000000000 RUST_LOG=warn MAIL_DIR=$work/mail
base=http://127.0.0.1:$port
start() { env ${3:-} DATABASE_URL="sqlite://$2?mode=rwc" BIND_ADDR=127.0.0.1:$port $1 > $work/log 2>&1 & pid=$!; for _ in $(seq 1 100); do curl -sf $base/health >/dev/null && break; sleep 0.1; done; }
stop() { kill $pid; wait $pid 2>/dev/null || true; }
trap 'kill $pid 2>/dev/null || true; rm -rf $work' EXIT
login() { curl -sf -X POST $base/api/v1/auth/login -H 'Content-Type: application/json' -d '{"login":"bench","password":"benchmark passphrase"}'; }
field() { python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
start $A $work/seed.db
curl -sf -o /dev/null -X POST $base/api/v1/auth/register -H 'Content-Type: application/json' -d '{"username":"bench","email":"bench@example.com","password":"benchmark passphrase"}'
T=$(login | field access_token)
for i in $(seq 1 100); do curl -sf -X POST $base/api/v1/tasks -H "Authorization: Bearer $T" -H 'Content-Type: application/json' -d "{\"title\":\"task $i\",\"description\":\"something to do $i\"}" > $work/task.json; done
task=$(field id < $work/task.json)
stop
measure() { # NAME -> "req/s p99 non2xx" of $work/wrk.txt
  echo "$1 $(awk '/Requests\/sec/ {r=$2} $1 == "99%" {p=$2} /Non-2xx/ {n=$NF} END {print r, p, (n == "" ? 0 : n)}' $work/wrk.txt)"
}
for round in $(seq 1 "${AB_ROUNDS:-3}"); do
  for name in A B; do
    bin=$A; extra=${AB_ENV_A:-}; [ $name = B ] && bin=$B && extra=${AB_ENV_B:-}
    rm -f $work/run.db*; cp $work/seed.db $work/run.db; [ -f $work/seed.db-wal ] && cp $work/seed.db-wal $work/run.db-wal; true
    start $bin $work/run.db "$extra"
    T=$(login | field access_token)
    TOKEN=$T BODY='{"title":"written by the benchmark","description":"a write"}' METHOD=POST wrk -t2 -c64 -d2s -s "$root/bench/lua/auth.lua" $base/api/v1/tasks > /dev/null
    TOKEN=$T BODY='{"title":"written by the benchmark","description":"a write"}' METHOD=POST wrk -t2 -c64 -d6s --latency -s "$root/bench/lua/auth.lua" $base/api/v1/tasks > $work/wrk.txt
    echo "round $round $name $(measure POST)" | tee -a $work/results
    TOKEN=$T BODY='{"completed":true,"description":"patched"}' METHOD=PATCH wrk -t2 -c64 -d6s --latency -s "$root/bench/lua/auth.lua" $base/api/v1/tasks/$task > $work/wrk.txt
    echo "round $round $name $(measure PATCH)" | tee -a $work/results
    : > $work/refresh.txt
    for _ in $(seq 1 66); do login | field refresh_token >> $work/refresh.txt; done
    SPEND=$work/refresh.txt THREADS=2 wrk -t2 -c64 -d6s --latency -s "$root/bench/lua/refresh.lua" $base/api/v1/auth/refresh > $work/wrk.txt
    echo "round $round $name $(measure refresh)" | tee -a $work/results
    echo "round $round $name peak-rss-mib $(( $(awk '/^VmHWM:/ {print $2}' /proc/$pid/status) / 1024 ))" | tee -a $work/results
    stop
  done
done
mean() { awk -v side=$1 -v scenario=$2 '$3 == side && $4 == scenario {t += $5; n++} END {printf "%.0f", t / n}' $work/results; }
for scenario in POST PATCH refresh peak-rss-mib; do echo "means $scenario: A $(mean A $scenario) B $(mean B $scenario)"; done
