#!/usr/bin/env bash
# Starts a freshly seeded api (SQLite, temp folder) and runs the browser tests against it: Swagger UI
# (docs.test.mjs) and a cookie-session single-page app with a cross-site attacker page (session.test.mjs,
# which serves the app and proxies /api on APP_PORT, the api's PUBLIC_BASE_URL, and the attacker on
# EVIL_PORT), passkeys with Chromium's virtual authenticator (passkey.test.mjs, on PASSKEY_PORT), and a sign-in
# through an OpenID Connect provider's own pages (oidc.test.mjs: panva's oidc-provider on OIDC_PORT, the demo
# page on APP_PORT again). One file at a time: two of them serve APP_PORT.
# Needs /usr/bin/chromium (Debian's `chromium`) and `npm ci` in this folder; .ci/run installs both.
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/../support/api.sh"

build_bins
password="browser test passphrase"
(cd "$work" && "$root/target/debug/seed" --users 3 --tasks 20 --password "$password") > "$work/seed.log"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
app_port=$(free_port)
evil_port=$(free_port)
passkey_port=$(free_port)
oidc_port=$(free_port)
oidc_secret=$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')
# passkey.test.mjs serves the demo page on http://localhost:$passkey_port (WebAuthn needs a domain): the api
# accepts that origin for passkeys (WEBAUTHN_RP_ID localhost) and for the cookie's CSRF check.
# The provider `dev` is oidc.test.mjs's (it starts it); results go back to the demo page.
start_api PUBLIC_BASE_URL="http://127.0.0.1:$app_port" WEBAUTHN_RP_ID=localhost \
  WEBAUTHN_ORIGINS="http://localhost:$passkey_port" CORS_ALLOWED_ORIGINS="http://localhost:$passkey_port" \
  OIDC_PROVIDERS=dev OIDC_DEV_ISSUER="http://localhost:$oidc_port" OIDC_DEV_CLIENT_ID=securecrud \
  OIDC_DEV_CLIENT_SECRET="$oidc_secret" OIDC_DEV_DISPLAY_NAME="Development provider" \
  OIDC_REDIRECT_ALLOWLIST="http://127.0.0.1:$app_port/"

cd "$here"
BASE_URL="$base" DOCS_PASSWORD="$password" APP_PORT="$app_port" EVIL_PORT="$evil_port" \
  PASSKEY_PORT="$passkey_port" OIDC_PORT="$oidc_port" OIDC_CLIENT_ID=securecrud OIDC_CLIENT_SECRET="$oidc_secret" \
  node --test --test-concurrency=1 docs.test.mjs session.test.mjs passkey.test.mjs oidc.test.mjs
