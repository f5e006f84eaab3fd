#!/usr/bin/env bash
# Generates a TypeScript client from a freshly started api's /openapi.json, type-checks it (tsc --noEmit),
# and runs it against that api. Needs node and npm (.ci/run installs them when missing).
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/../support/api.sh"

start_api

cd "$here"
npm ci --no-audit --no-fund --silent
rm -rf generated dist
OPENAPI_URL="$base/openapi.json" npm run --silent generate
npx tsc --noEmit -p .
npx tsc -p .
BASE_URL="$base" node --test dist/src/client.test.js
