#!/usr/bin/env bash
# nginx forward auth in front of an upstream that knows nothing of SecureCRUD, with the snippet users copy
# (deploy/nginx/forward-auth.conf, included verbatim). nginx is Debian's package, installed when missing.
#
# Checks: a valid token reaches the upstream with the caller's X-Auth-* headers (and without the token);
# no token, a bad token, or forged X-Auth-* headers do not; a POST is checked too; a browser session's cookie
# passes the check and is stripped from what the upstream gets; after a logout the same token is refused by
# nginx on its very next request.
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/../support/api.sh"

if ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ]; then
  echo "== installing nginx (Debian)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >/dev/null
fi
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)

start_api

python3 "$here/upstream.py" > "$work/upstream.port" 2> "$work/upstream.log" &
upstream_pid=$!
for _ in $(seq 1 50); do [ -s "$work/upstream.port" ] && break; sleep 0.1; done
upstream_port=$(head -n1 "$work/upstream.port")

nginx_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$work/nginx/logs" "$work/nginx/tmp"
cat > "$work/nginx/nginx.conf" <<CONF
worker_processes 1;
daemon off;
error_log $work/nginx/logs/error.log warn;
pid $work/nginx/nginx.pid;
events { worker_connections 64; }
http {
  access_log $work/nginx/logs/access.log;
  client_body_temp_path $work/nginx/tmp/body;
  proxy_temp_path $work/nginx/tmp/proxy;
  fastcgi_temp_path $work/nginx/tmp/fastcgi;
  uwsgi_temp_path $work/nginx/tmp/uwsgi;
  scgi_temp_path $work/nginx/tmp/scgi;
  include $root/deploy/nginx/forward-auth-http.conf;
  upstream securecrud { server 127.0.0.1:$port; }
  upstream app { server 127.0.0.1:$upstream_port; }
  server {
    listen 127.0.0.1:$nginx_port;
    include $root/deploy/nginx/forward-auth.conf;
  }
}
CONF
"$nginx_bin" -t -p "$work/nginx" -c "$work/nginx/nginx.conf" 2> "$work/nginx-t.log" || { cat "$work/nginx-t.log"; exit 1; }
"$nginx_bin" -p "$work/nginx" -c "$work/nginx/nginx.conf" 2> "$work/nginx.log" &
nginx_pid=$!
trap 'kill $nginx_pid $upstream_pid 2>/dev/null || true; cleanup_api' EXIT
proxy="http://127.0.0.1:$nginx_port"
for _ in $(seq 1 50); do curl -s -o /dev/null "$proxy/" && break; sleep 0.1; done

fail() { echo "FAIL: $*"; echo "--- nginx error log"; cat "$work/nginx/logs/error.log"; exit 1; }
status() { curl -s -o "$work/body" -w '%{http_code}' "$@"; }
json() { python3 -c "import json,sys; print(json.load(open('$work/body'))$1)"; }

curl -sf -X POST "$base/api/v1/auth/register" -H 'Content-Type: application/json' \
  -d '{"username":"ada_l","email":"ada@example.com","password":"correct horse battery staple"}' > "$work/user.json"
user_id=$(python3 -c "import json; print(json.load(open('$work/user.json'))['id'])")
curl -sf -X POST "$base/api/v1/auth/login" -H 'Content-Type: application/json' \
  -d '{"login":"ada_l","password":"correct horse battery staple"}' > "$work/pair.json"
access=$(python3 -c "import json; print(json.load(open('$work/pair.json'))['access_token'])")
refresh=$(python3 -c "import json; print(json.load(open('$work/pair.json'))['refresh_token'])")

code=$(status "$proxy/app/hello" -H "Authorization: Bearer $access" -H "X-Auth-User-Id: forged" -H "X-Auth-Role: admin")
[ "$code" = 200 ] || fail "a valid token: $code"
[ "$(json "['headers']['X-Auth-User-Id']")" = "$user_id" ] || fail "X-Auth-User-Id: $(cat "$work/body")"
[ "$(json "['headers']['X-Auth-Username']")" = "ada_l" ] || fail "X-Auth-Username: $(cat "$work/body")"
[ "$(json "['headers']['X-Auth-Role']")" = "user" ] || fail "a forged X-Auth-Role reached the upstream: $(cat "$work/body")"
[ "$(json "['headers']['Authorization']")" = "None" ] || fail "the token reached the upstream: $(cat "$work/body")"
echo "ok: a valid token reaches the upstream as $user_id (forged X-Auth-* headers replaced, token not forwarded)"

code=$(status -X POST "$proxy/app/submit" -H "Authorization: Bearer $access" -H 'Content-Type: application/json' -d '{"a":1}')
[ "$code" = 200 ] && [ "$(json "['method']")" = POST ] || fail "a POST with a valid token: $code"
echo "ok: a POST is checked and passed on"

code=$(status "$proxy/app/hello")
[ "$code" = 401 ] || fail "no token: $code"
code=$(status "$proxy/app/hello" -H "X-Auth-User-Id: $user_id")
[ "$code" = 401 ] || fail "forged identity without a token: $code"
challenge=$(curl -s -o /dev/null -D - "$proxy/app/hello" -H "Authorization: Bearer not-a-token" | tr -d '\r' | sed -n 's/^[Ww][Ww][Ww]-[Aa]uthenticate: //p')
case "$challenge" in Bearer*) ;; *) fail "a bad token: no WWW-Authenticate challenge ($challenge)";; esac
echo "ok: no token, forged headers and a bad token are refused with 401 ($challenge)"

# A browser session: its cookie passes the check, and the upstream gets every cookie but that one.
curl -sf -c "$work/jar" -X POST "$base/api/v1/auth/login" -H 'Content-Type: application/json' \
  -H 'X-Requested-With: securecrud' \
  -d '{"login":"ada_l","password":"correct horse battery staple","session":"cookie"}' > /dev/null
cookie=$(awk '$6 == "__Host-securecrud_refresh" { print $7 }' "$work/jar")
[ -n "$cookie" ] || fail "no session cookie after a cookie login: $(cat "$work/jar")"
for sent in "theme=dark; __Host-securecrud_refresh=$cookie; lang=en" "__Host-securecrud_refresh=$cookie; lang=en" \
    "theme=dark; __Host-securecrud_refresh=$cookie" "__Host-securecrud_refresh=$cookie"; do
  code=$(status "$proxy/app/hello" -H "Cookie: $sent")
  [ "$code" = 200 ] || fail "a live session cookie: $code"
  [ "$(json "['headers']['X-Auth-User-Id']")" = "$user_id" ] || fail "X-Auth-User-Id with the cookie: $(cat "$work/body")"
  forwarded=$(json "['headers']['Cookie']")
  case "$forwarded" in *securecrud_refresh*) fail "the refresh cookie reached the upstream: $forwarded" ;; esac
  expected=$(printf '%s' "$sent" | python3 -c "import sys; print('; '.join(c for c in sys.stdin.read().split('; ') if not c.startswith('__Host-securecrud_refresh=')) or None)")
  [ "$forwarded" = "$expected" ] || fail "the upstream got Cookie: $forwarded (expected $expected)"
done
code=$(status "$proxy/app/hello" -H "Cookie: __Host-securecrud_refresh=forged")
[ "$code" = 401 ] || fail "a forged session cookie: $code"
# Two refresh cookies in one header (no browser sends that): the map would take out only one; refused whole.
for sent in "__Host-securecrud_refresh=$cookie; __Host-securecrud_refresh=$cookie" \
    "theme=dark; __Host-securecrud_refresh=x; lang=en; __Host-securecrud_refresh=$cookie"; do
  code=$(status "$proxy/app/hello" -H "Cookie: $sent")
  [ "$code" = 400 ] || fail "a refresh cookie sent twice: $code (the upstream may have got one: $(cat "$work/body"))"
done
echo "ok: a browser session's cookie passes the check and never reaches the upstream (the other cookies do)"

curl -sf -X POST "$base/api/v1/auth/logout" -H 'Content-Type: application/json' -d "{\"refresh_token\":\"$refresh\"}" > /dev/null
code=$(status "$proxy/app/hello" -H "Authorization: Bearer $access")
[ "$code" = 401 ] || fail "a logged-out token: $code"
echo "ok: after logout the same token is refused by nginx on its next request"
echo "== nginx forward auth: passed"
