#!/usr/bin/env bash
# Property-based contract test: schemathesis (PyPI, installed here when missing) drives a freshly started api
# through its own /openapi.json with every check, and fails on any failure.
#
# The api runs on a temp SQLite database with limits a single fuzzing client cannot reach (what is tested is
# the document's agreement with the server, not the limiter). Requests carry a fresh admin's access token, so
# every operation is reachable; the operations that would end that session (logout-all, revoking a session)
# are excluded, and the revocation feed, whose answer is a stream that never ends (its refusals are tested
# in tests/api/revocation_feed.rs); nothing else.
#
# CONTRACT_MAX_TIME (default 90) bounds the run in seconds.
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/../support/api.sh"

# Pinned, so that a new release's checks change this test only when we move the pin.
SCHEMATHESIS_VERSION=4.32.5
installed=$(python3 -c 'import importlib.metadata as m; print(m.version("schemathesis"))' 2>/dev/null || true)
if [ "$installed" != "$SCHEMATHESIS_VERSION" ]; then
  echo "== installing schemathesis $SCHEMATHESIS_VERSION (PyPI)"
  python3 -m pip install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi
# The CLI through the interpreter, whatever the PATH (pip's script folder may not be on it).
st() { python3 -c 'import sys; from schemathesis.cli import schemathesis; sys.argv[0] = "st"; sys.exit(schemathesis())' "$@"; }

export RATE_LIMIT_AUTH_PER_MIN=1000000 RATE_LIMIT_API_PER_MIN=1000000 LOGIN_MAX_FAILURES=1000000
password="contract test passphrase"
build_bins
printf '%s\n' "$password" | (cd "$work" && "$root/target/debug/api" create-admin --username fuzz_admin \
  --email fuzz@example.com --password-stdin > /dev/null)
start_api

token=$(curl -sf -X POST "$base/api/v1/auth/login" -H 'Content-Type: application/json' \
  -d "{\"login\":\"fuzz_admin\",\"password\":\"$password\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')

set +e
st --config-file "$here/schemathesis.toml" run "$base/openapi.json" \
  --checks all \
  --max-time "${CONTRACT_MAX_TIME:-90}" \
  --workers 1 \
  --header "Authorization: Bearer $token" \
  --exclude-operation-id logoutAll \
  --exclude-operation-id revokeMySession \
  --exclude-operation-id revocationFeed \
  --report junit --report-dir "$work/report" \
  "$@"
status=$?
set -e
if grep -q 'panicked\|internal error' "$work/api.log"; then
  echo "== FAIL: the api logged a panic or an internal error:"
  grep 'panicked\|internal error' "$work/api.log" | head -20
  exit 1
fi
exit $status
