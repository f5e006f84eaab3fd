#!/usr/bin/env bash
# `make bench`: load-tests the api on loopback with wrk and writes docs/BENCHMARKS.md.
#
# Builds release, starts the api on a fresh SQLite database (and on PostgreSQL when BENCH_POSTGRES_URL names a
# server it may create a database on), seeds 100 users and 10,000 tasks (the benchmark user owns 100), and
# measures each scenario for BENCH_DURATION seconds (default 10) at 64 connections after a warm-up. A bare
# actix-web "ceiling" serving the same 20-task page from memory is measured in the same run, and beside it the
# floor of the database stack (1, 2 and 3 trivial prepared statements per request through sea-orm/sqlx-sqlite).
# Any non-2xx answer or socket error fails the bench.
#
# Environment: BENCH_DURATION (s, default 10), BENCH_WARMUP (s, default 3), BENCH_CONNECTIONS (64),
# BENCH_POSTGRES_URL (e.g. postgres://postgres@127.0.0.1:5432/postgres), BENCH_OUTPUT (default
# docs/BENCHMARKS.md; set another path for a smoke run), BENCH_API_BIN (another api binary to measure, e.g.
# an older build for a before/after comparison; default target/release/api).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
duration="${BENCH_DURATION:-10}"
warmup="${BENCH_WARMUP:-3}"
connections="${BENCH_CONNECTIONS:-64}"
threads="$(nproc)"
output="${BENCH_OUTPUT:-docs/BENCHMARKS.md}"
work="$(mktemp -d)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

if ! command -v wrk >/dev/null; then
  echo "== installing wrk"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
fi

echo "== building release binaries"
cargo build --release --quiet --bin api --bin seed --bin ceiling --bin passkey-load
api_bin="${BENCH_API_BIN:-$root/target/release/api}"

password="benchmark passphrase"
export JWT_SECRET="benchmark-secret-benchmark-secret-0123456789"
# The limiters stay on (their counting is part of what is measured) at limits one benchmark client never
# reaches: every request here comes from 127.0.0.1.
export RATE_LIMIT_AUTH_PER_MIN=1000000000 RATE_LIMIT_API_PER_MIN=1000000000
results="$work/results.md"
: > "$results"
failed=0

# run_wrk NAME URL [SCRIPT] [CONNECTIONS] -> one table row; fails the bench on errors.
run_wrk() {
  local name="$1" url="$2" script="${3:-}" conns="${4:-$connections}"
  local args=(-t"$threads" -c"$conns" --latency)
  [ -n "$script" ] && args+=(-s "$script")
  if [ "$warmup" -gt 0 ]; then wrk "${args[@]}" -d"${warmup}s" "$url" > /dev/null; fi
  wrk "${args[@]}" -d"${duration}s" "$url" > "$work/wrk.txt"
  row "$name" "$conns" "$work/wrk.txt"
}

# run_spending NAME URL SCRIPT WARMUP_FILE FILE -> one table row for a script whose requests each spend a
# single-use value read from a file (bench/lua/deal.lua): the warm-up spends its own file, since a value spent
# twice would be refused (a refresh token presented again is a replay).
run_spending() {
  local name="$1" url="$2" script="$3" warmup_file="$4" file="$5" keep_warmup="$warmup"
  if [ "$warmup" -gt 0 ]; then
    SPEND="$warmup_file" THREADS="$threads" \
      wrk -t"$threads" -c"$connections" -d"${warmup}s" -s "$script" "$url" > /dev/null
  fi
  warmup=0
  SPEND="$file" THREADS="$threads" run_wrk "$name" "$url" "$script"
  warmup="$keep_warmup"
}

# row NAME CONNECTIONS WRK_OUTPUT -> appends "| name | c | req/s | p50 | p99 | errors |".
row() {
  local rps p50 p99 non2xx sockets errors
  rps=$(awk '/Requests\/sec/ {print $2}' "$3")
  p50=$(awk '$1 == "50%" {print $2}' "$3")
  p99=$(awk '$1 == "99%" {print $2}' "$3")
  non2xx=$(awk '/Non-2xx/ {print $NF}' "$3")
  sockets=$(awk -F'[ ,]+' '/Socket errors/ {print $4 + $6 + $8 + $10}' "$3")
  errors=$(( ${non2xx:-0} + ${sockets:-0} ))
  printf '| %s | %s | %s | %s | %s | %s |\n' "$1" "$2" "$rps" "$p50" "$p99" "$errors" | tee -a "$results"
  if [ "$errors" -ne 0 ]; then failed=1; echo "   !! $errors errors in: $1"; cat "$3"; fi
}

p99_ms() { # the 99% latency of a wrk output in ms
  awk '$1 == "99%" { v=$2; if (v ~ /us$/) { sub(/us/,"",v); v/=1000 } else if (v ~ /ms$/) { sub(/ms/,"",v) } else if (v ~ /s$/) { sub(/s/,"",v); v*=1000 } print v }' "$1"
}

json_field() { sed -E "s/.*\"$1\":\"?([^\",}]+)\"?.*/\1/"; }

wait_ready() { # wait_ready URL -> prints ms until the first 200
  local start end
  start=$(date +%s%N)
  for _ in $(seq 1 2000); do
    if curl -sf -o /dev/null "$1"; then end=$(date +%s%N); echo $(( (end - start) / 1000000 )); return 0; fi
    sleep 0.005
  done
  echo "the server at $1 did not become ready" >&2
  return 1
}

rss_kib() { awk "/^$2:/ {print \$2}" "/proc/$1/status"; }

bench_backend() {
  local label="$1" url="$2" port="$3"
  local base="http://127.0.0.1:$port"
  echo "== $label: seeding"
  DATABASE_URL="$url" BCRYPT_COST=4 "$root/target/release/seed" --reset --users 99 --tasks 9900 --seed 1 \
    --password "$password" > "$work/seed.log"

  echo "== $label: starting the api"
  local started
  started=$(date +%s%N)
  DATABASE_URL="$url" BIND_ADDR="127.0.0.1:$port" BCRYPT_COST=12 RUST_LOG=info \
    "$api_bin" > "$work/api-$label.log" 2>&1 &
  local api_pid=$!
  pids+=("$api_pid")
  local ready_ms
  ready_ms=$(wait_ready "$base/health")
  ready_ms=$(( ($(date +%s%N) - started) / 1000000 ))
  local rest_kib
  rest_kib=$(rss_kib "$api_pid" VmRSS)

  # The benchmark user (bcrypt cost 12, the production cost) and its 100 tasks.
  curl -sf -X POST "$base/api/v1/auth/register" -H 'Content-Type: application/json' \
    -d "{\"username\":\"bench\",\"email\":\"bench@example.com\",\"password\":\"$password\"}" > /dev/null
  local token
  token=$(curl -sf -X POST "$base/api/v1/auth/login" -H 'Content-Type: application/json' \
    -d "{\"login\":\"bench\",\"password\":\"$password\"}" | json_field access_token)
  for i in $(seq 1 100); do
    curl -sf -X POST "$base/api/v1/tasks" -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
      -d "{\"title\":\"benchmark task $i\",\"description\":\"milk, bread and benchmark number $i\",\"completed\":$([ $((i % 3)) -eq 0 ] && echo true || echo false)}" \
      > "$work/task.json"
  done
  local task_id
  task_id=$(json_field id < "$work/task.json")
  curl -sf "$base/api/v1/tasks?limit=20" -H "Authorization: Bearer $token" > "$work/page.json"

  # Refresh tokens: one session per connection plus one per thread (wrk calls request() once per thread
  # before connecting, spending a token that is never sent), for the warm-up and again for the measured run,
  # at /auth/refresh, at the OAuth 2.0 token endpoint, and for browser sessions (cookie).
  # Browser sessions too: their refresh token comes only in the session cookie.
  local files=("$work/refresh-warmup.txt" "$work/refresh.txt" "$work/oauth-warmup.txt" "$work/oauth.txt"
    "$work/cookie-warmup.txt" "$work/cookie.txt")
  for file in "${files[@]}"; do
    : > "$file"
    for _ in $(seq 1 $(( connections + threads ))); do
      case "$file" in
        *cookie*)
          curl -sf -D - -o /dev/null -X POST "$base/api/v1/auth/login" -H 'Content-Type: application/json' \
            -H 'X-Requested-With: securecrud' \
            -d "{\"login\":\"bench\",\"password\":\"$password\",\"session\":\"cookie\"}" \
            | sed -nE 's/^[Ss]et-[Cc]ookie: __Host-securecrud_refresh=([^;]+);.*/\1/p' >> "$file" ;;
        *)
          printf '%s\n' "$(curl -sf -X POST "$base/api/v1/auth/login" -H 'Content-Type: application/json' \
            -d "{\"login\":\"bench\",\"password\":\"$password\"}" | json_field refresh_token)" >> "$file" ;;
      esac
    done
    if [ "$(grep -c . "$file")" -ne $(( connections + threads )) ]; then
      echo "could not log in $(( connections + threads )) times for refresh tokens"; exit 1
    fi
  done

  echo "== $label: measuring (${duration}s each, ${connections} connections, ${threads} threads)"
  {
    echo
    echo "### $label"
    echo
    echo "| scenario | connections | requests/s | p50 | p99 | errors |"
    echo "|---|---|---|---|---|---|"
  } >> "$results"
  run_wrk "GET /health" "$base/health"
  TOKEN="$token" run_wrk "GET /api/v1/auth/check (forward auth, HS256)" "$base/api/v1/auth/check" bench/lua/auth.lua
  TOKEN="$token" run_wrk "GET /api/v1/tasks?limit=20" "$base/api/v1/tasks?limit=20" bench/lua/auth.lua
  TOKEN="$token" run_wrk "GET /api/v1/tasks?limit=20&q=milk" "$base/api/v1/tasks?limit=20&q=milk" bench/lua/auth.lua
  TOKEN="$token" run_wrk "GET /api/v1/tasks?limit=20&completed=true" "$base/api/v1/tasks?limit=20&completed=true" bench/lua/auth.lua
  TOKEN="$token" run_wrk "GET /api/v1/tasks/{id}" "$base/api/v1/tasks/$task_id" bench/lua/auth.lua
  TOKEN="$token" run_wrk "GET /api/v1/users/me" "$base/api/v1/users/me" bench/lua/auth.lua
  # The same reads on a second instance that signs with an Ed25519 key (the production default): verifying
  # an EdDSA signature costs more than an HMAC. Measured before the writes below, which grow the user's task
  # list (and so the list's count). Skipped for an api binary older than key pairs.
  if "$api_bin" keys --help > /dev/null 2>&1; then
  "$api_bin" keys generate --out "$work/jwt-$label.pem" > /dev/null 2>&1
  local eddsa_port=$(( port + 100 ))
  DATABASE_URL="$url" BIND_ADDR="127.0.0.1:$eddsa_port" BCRYPT_COST=12 RUST_LOG=info JWT_ALGORITHM=EdDSA \
    JWT_PRIVATE_KEY_FILE="$work/jwt-$label.pem" "$api_bin" > "$work/api-$label-eddsa.log" 2>&1 &
  local eddsa_pid=$!
  pids+=("$eddsa_pid")
  wait_ready "http://127.0.0.1:$eddsa_port/health" > /dev/null
  local eddsa_token
  eddsa_token=$(curl -sf -X POST "http://127.0.0.1:$eddsa_port/api/v1/auth/login" -H 'Content-Type: application/json' \
    -d "{\"login\":\"bench\",\"password\":\"$password\"}" | json_field access_token)
  TOKEN="$eddsa_token" run_wrk "GET /api/v1/auth/check (forward auth, EdDSA)" \
    "http://127.0.0.1:$eddsa_port/api/v1/auth/check" bench/lua/auth.lua
  TOKEN="$eddsa_token" run_wrk "GET /api/v1/tasks?limit=20 (EdDSA)" \
    "http://127.0.0.1:$eddsa_port/api/v1/tasks?limit=20" bench/lua/auth.lua
  kill "$eddsa_pid"
  wait "$eddsa_pid" 2>/dev/null || true
  fi
  TOKEN="$token" BODY='{"title":"written by the benchmark","description":"a write"}' METHOD=POST \
    run_wrk "POST /api/v1/tasks" "$base/api/v1/tasks" bench/lua/auth.lua
  TOKEN="$token" BODY='{"completed":true,"description":"patched by the benchmark"}' METHOD=PATCH \
    run_wrk "PATCH /api/v1/tasks/{id}" "$base/api/v1/tasks/$task_id" bench/lua/auth.lua
  run_spending "POST /api/v1/auth/refresh" "$base/api/v1/auth/refresh" bench/lua/refresh.lua \
    "$work/refresh-warmup.txt" "$work/refresh.txt"
  GRANT=oauth run_spending "POST /api/v1/auth/token (refresh_token grant)" "$base/api/v1/auth/token" \
    bench/lua/refresh.lua "$work/oauth-warmup.txt" "$work/oauth.txt"
  GRANT=cookie run_spending "POST /api/v1/auth/refresh (browser session: cookie, CSRF header)" \
    "$base/api/v1/auth/refresh" bench/lua/refresh.lua "$work/cookie-warmup.txt" "$work/cookie.txt"

  # Second-factor verification (`POST /auth/mfa/verify` with a recovery code). Each request needs a fresh
  # single-use mfa_token and code, made beforehand by a second instance on the same database at bcrypt cost 4
  # (its accounts keep that cost, so their sign-ins are cheap; the instance measured checks no password).
  # Skipped for an api binary older than two-factor sign-in.
  if grep -q "mfa/verify" <(curl -sf "$base/openapi.json"); then
    local mfa_port=$(( port + 200 ))
    DATABASE_URL="$url" BIND_ADDR="127.0.0.1:$mfa_port" METRICS_ADDR="127.0.0.1:$(( mfa_port + 1 ))" \
      BCRYPT_COST=4 RUST_LOG=warn "$api_bin" > "$work/api-$label-mfa.log" 2>&1 &
    local mfa_pid=$!
    pids+=("$mfa_pid")
    wait_ready "http://127.0.0.1:$mfa_port/health" > /dev/null
    # Ten answers an account: 1,200 a second of run, about three times the rate seen on SQLite (420/s).
    python3 bench/mfa_pairs.py "http://127.0.0.1:$mfa_port" $(( warmup * 120 + 1 )) "$password" "$work/mfa-warmup.txt"
    python3 bench/mfa_pairs.py "http://127.0.0.1:$mfa_port" $(( duration * 120 )) "$password" "$work/mfa.txt"
    # Registering sent each account a verification mail; the helper delivers them all before it stops, or
    # the instance measured would be delivering them during its row.
    local pending=""
    for _ in $(seq 1 600); do
      pending=$(curl -sf "http://127.0.0.1:$(( mfa_port + 1 ))/metrics" | awk '/^securecrud_mail_outbox_pending / {print $2}')
      [ "$pending" = "0" ] && break
      sleep 0.2
    done
    if [ "$pending" != "0" ]; then echo "the helper did not deliver its mail (pending: ${pending:-unknown})"; exit 1; fi
    kill "$mfa_pid"
    wait "$mfa_pid" 2>/dev/null || true
    run_spending "POST /api/v1/auth/mfa/verify (recovery code)" "$base/api/v1/auth/mfa/verify" bench/lua/mfa.lua \
      "$work/mfa-warmup.txt" "$work/mfa.txt"
  fi

  # Passkey logins (options, signing, verify) and, beside them, password logins (bcrypt cost 12) by the same
  # client at the same concurrency: wrk cannot sign a fresh challenge (bench/passkey-load). Skipped for an
  # api binary older than passkeys.
  if grep -q "passkey/verify" <(curl -sf "$base/openapi.json"); then
    if ! "$root/target/release/passkey-load" "$base" "http://localhost:$port" 8 "$duration" "$password" \
        | tee -a "$results"; then
      failed=1
      echo "   !! errors in the passkey login benchmark"
    fi
  fi

  # Logins at cost 12, and /health latency at rest and during a login flood (same 8 connections). The flood
  # logs in as the seeded users in turn (the seeded admin lists them), so no one account's in-flight limit
  # (LOGIN_MAX_FAILURES) answers instead of bcrypt.
  local admin
  admin=$(curl -sf -X POST "$base/api/v1/auth/login" -H 'Content-Type: application/json' \
    -d "{\"login\":\"admin\",\"password\":\"$password\"}" | json_field access_token)
  curl -sf "$base/api/v1/admin/users?limit=100" -H "Authorization: Bearer $admin" \
    | python3 -c 'import json,sys; print("\n".join(u["username"] for u in json.load(sys.stdin)["items"]))' \
    > "$work/logins.txt"
  wrk -t1 -c8 -d"${duration}s" --latency "$base/health" > "$work/health-rest.txt"
  row "GET /health at rest (for the flood comparison)" 8 "$work/health-rest.txt"
  # Logins queue for bcrypt (a few per second per core); past PASSWORD_QUEUE_TIMEOUT_MS the api sheds them
  # with 503 Busy, by design. Only other answers count as errors here.
  LOGINS="$work/logins.txt" PASSWORD="$password" wrk -t1 -c"$connections" -d"$(( duration + 2 ))s" --latency \
    --timeout 60s -s bench/lua/login.lua "$base/api/v1/auth/login" > "$work/login.txt" &
  local flood=$!
  sleep 1
  wrk -t1 -c8 -d"${duration}s" --latency "$base/health" > "$work/health-flood.txt"
  wait "$flood"
  row "GET /health during a login flood" 8 "$work/health-flood.txt"
  local ok shed other
  read -r ok shed other < <(sed -nE 's/^login statuses: ok=([0-9]+) shed=([0-9]+) other=([0-9]+)$/\1 \2 \3/p' "$work/login.txt")
  # The login row counts only non-200, non-503 answers (and socket errors) as errors.
  sed -i '/Non-2xx/d' "$work/login.txt"
  echo "  Non-2xx or 3xx responses: ${other:-1}" >> "$work/login.txt"
  row "POST /api/v1/auth/login (bcrypt cost 12; $(( ${ok:-0} / (duration + 2) )) signed in/s, ${shed:-0} shed with 503)" "$connections" "$work/login.txt"
  local peak_kib
  peak_kib=$(rss_kib "$api_pid" VmHWM)
  kill "$api_pid"; wait "$api_pid" 2>/dev/null || true

  # Start-up on the existing database, measured again without the seeding noise.
  started=$(date +%s%N)
  DATABASE_URL="$url" BIND_ADDR="127.0.0.1:$port" RUST_LOG=warn "$api_bin" > /dev/null 2>&1 &
  api_pid=$!
  pids+=("$api_pid")
  wait_ready "$base/health" > /dev/null
  ready_ms=$(( ($(date +%s%N) - started) / 1000000 ))
  kill "$api_pid"; wait "$api_pid" 2>/dev/null || true

  local rest_p99 flood_p99
  rest_p99=$(p99_ms "$work/health-rest.txt")
  flood_p99=$(p99_ms "$work/health-flood.txt")
  {
    echo
    echo "- resident memory: $(( rest_kib / 1024 )) MiB at rest, $(( peak_kib / 1024 )) MiB peak under load (VmRSS / VmHWM)"
    echo "- start-up to a ready \`/health\` on the existing database: ${ready_ms} ms"
    echo "- \`/health\` p99 during the login flood: ${flood_p99} ms vs ${rest_p99} ms at rest" \
      "($(awk -v a="$flood_p99" -v b="$rest_p99" 'BEGIN { printf "%.1f", (b > 0 ? a / b : 0) }')×)"
  } >> "$results"
}

bench_backend SQLite "sqlite://$work/bench.db?mode=rwc" 18480
if [ -n "${BENCH_POSTGRES_URL:-}" ]; then
  pg_db="securecrud_bench"
  psql "$BENCH_POSTGRES_URL" -qc "DROP DATABASE IF EXISTS $pg_db WITH (FORCE)" -c "CREATE DATABASE $pg_db" >/dev/null
  bench_backend PostgreSQL "${BENCH_POSTGRES_URL%/*}/$pg_db" 18481
  psql "$BENCH_POSTGRES_URL" -qc "DROP DATABASE IF EXISTS $pg_db WITH (FORCE)" >/dev/null
fi

echo "== ceiling: a bare actix-web endpoint serving the same 20-task page from memory"
"$root/target/release/ceiling" "$work/page.json" 127.0.0.1:18482 "sqlite://$work/bench.db" > /dev/null 2>&1 &
pids+=("$!")
wait_ready "http://127.0.0.1:18482/" > /dev/null
{
  echo
  echo "### Ceiling"
  echo
  echo "| scenario | connections | requests/s | p50 | p99 | errors |"
  echo "|---|---|---|---|---|---|"
} >> "$results"
run_wrk "GET / (same 20-task JSON, from memory)" "http://127.0.0.1:18482/"
# The floor of the database stack: n prepared statements through a sea-orm/sqlx SQLite pool of the api's
# size, then the same page. An api route that needs n statements cannot beat the /db/n row.
for n in 1 2 3; do
  run_wrk "GET /db/$n ($n \`SELECT ?\` through sea-orm/sqlx-sqlite, then the same JSON)" "http://127.0.0.1:18482/db/$n"
done
# The same floor on PostgreSQL (its own server shares these cores), with the api's pool settings.
if [ -n "${BENCH_POSTGRES_URL:-}" ]; then
  "$root/target/release/ceiling" "$work/page.json" 127.0.0.1:18483 "$BENCH_POSTGRES_URL" > /dev/null 2>&1 &
  pids+=("$!")
  wait_ready "http://127.0.0.1:18483/" > /dev/null
  for n in 1 2; do
    run_wrk "GET /db/$n on PostgreSQL ($n \`SELECT \$1\` through sea-orm/sqlx-postgres, then the same JSON)" "http://127.0.0.1:18483/db/$n"
  done
fi

size_mib=$(awk -v b="$(stat -c %s "$api_bin")" 'BEGIN { printf "%.1f", b / 1048576 }')
{
  echo "# Benchmarks"
  echo
  echo "Measured by \`make bench\` (\`bench/run.sh\`) on $(date -u +%Y-%m-%d): $(nproc) cores"
  echo "($(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)), load generator (wrk $(wrk -v 2>&1 | awk 'NR==1 {print $2}'),"
  echo "$threads threads) on the same machine, loopback. Each scenario: ${warmup} s warm-up, then ${duration} s measured."
  echo "Release build; api with \`BCRYPT_COST=12\`, \`RUST_LOG=info\` (access log on), default pool and workers."
  echo "Data: 100 users and 10,000 tasks (seed crate); the benchmark user owns 100 tasks."
  echo
  echo "Command: \`BENCH_DURATION=$duration $( [ -n "${BENCH_POSTGRES_URL:-}" ] && echo "BENCH_POSTGRES_URL=… ")make bench\`"
  echo
  echo "Release binary size: ${size_mib} MiB (\`target/release/api\`)."
  cat "$results"
  if [ -f "$root/bench/NOTES.md" ]; then echo; cat "$root/bench/NOTES.md"; fi
} > "$output"
echo "== wrote $output"
if [ "$failed" -ne 0 ]; then echo "FAIL: some scenarios had errors"; exit 1; fi
