#!/usr/bin/env bash
# The cost of a hostile body: the mean time of 20 POST /api/v1/auth/register with 60 KB of 5,000 unknown
# keys against API_BIN (default: the debug build), after 3 warm-up requests. Before the linear-time parser
# each unknown key re-parsed the body.
#   bench/input_cost.sh [API_BIN]
set -euo pipefail
bin="${1:-target/debug/api}"
work="$(mktemp -d)"
port=18181
python3 -c 'import json; b={f"k{i:04d}":1 for i in range(5000)}; b["title"]="x"; print(json.dumps(b))' \
  > "$work/body.json"
DATABASE_URL="sqlite://$work/x.db?mode=rwc" BIND_ADDR="127.0.0.1:$port" BCRYPT_COST=4 \
  RATE_LIMIT_AUTH_PER_MIN=0 RATE_LIMIT_API_PER_MIN=0 MAIL_DIR="$work/mail" RUST_LOG=warn "$bin" \
  > "$work/log" 2>&1 &
pid=$!
trap 'kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.1; done
post() {
  curl -s -o /dev/null -w '%{time_total}\n' -X POST "http://127.0.0.1:$port/api/v1/auth/register" \
    -H 'Content-Type: application/json' --data-binary "@$work/body.json"
}
for _ in 1 2 3; do post > /dev/null; done
for _ in $(seq 1 20); do post; done | awk '{ sum += $1 } END { printf "mean %.1f ms over %d requests\n", sum / NR * 1000, NR }'
