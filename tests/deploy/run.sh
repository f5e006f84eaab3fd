#!/usr/bin/env bash
# The deployment test (`make test-deploy`): nginx with deploy/nginx/securecrud.conf (TLS) in front of two api
# instances on one PostgreSQL database; see tests/deploy/deploy_test.py for what it checks. Installs Debian's
# nginx when missing, builds the debug api, and needs PostgreSQL at TEST_POSTGRES_URL (default
# postgres://postgres@127.0.0.1:5432/postgres), which it stops and starts again with pg_ctlcluster: never run
# it beside other tests that use that server.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"

if ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ]; then
  echo "== installing nginx (Debian)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >/dev/null
fi
export NGINX_BIN="$(command -v nginx || echo /usr/sbin/nginx)"
command -v openssl >/dev/null || { echo "openssl is needed (apt-get install openssl)"; exit 1; }

# The debug api as `make test` builds it (see tests/support/api.sh).
(cd "$root" && cargo test --workspace --no-run --quiet)
export API_BIN="$root/target/debug/api"
export WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
python3 "$root/tests/deploy/deploy_test.py"
