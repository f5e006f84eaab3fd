#!/usr/bin/env bash
# Starts a freshly seeded api (SQLite, temp folder) and runs the Swagger UI browser test against it.
# Needs /usr/bin/chromium (Debian's `chromium`) and `npm ci` in this folder; .ci/run installs both.
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/../support/api.sh"

(cd "$root" && cargo build --quiet --bin seed)
password="browser test passphrase"
"$root/target/debug/seed" --users 3 --tasks 20 --password "$password" > "$work/seed.log"
start_api

cd "$here"
BASE_URL="$base" DOCS_PASSWORD="$password" node --test docs.test.mjs
