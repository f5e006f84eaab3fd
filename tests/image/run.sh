#!/usr/bin/env bash
# The container image of ./Containerfile, checked on a machine without a container registry or a container
# runtime that can run images (root, podman, debootstrap, a local PostgreSQL; `make test-image`).
#
# - A base image is made from Debian's packages (debootstrap minbase bookworm, from the mirror apt uses here)
#   and imported as localhost/securecrud-test-base:bookworm, once (kept for later runs).
# - The Containerfile's `runtime-local` stage (everything of the real `runtime` stage but where the binary
#   comes from) is built on it with podman --isolation=chroot, from a context holding only the Containerfile
#   and the api binary: $API_BIN, else target/release/api (built when missing). The build stage, which needs
#   the rust image from a registry, is not built.
# - Checks: the image's configuration (user, entrypoint, volume, healthcheck, settings) and filesystem; then
#   the image's own filesystem (podman image mount) is started with chroot as uid/gid 10001, with the image's
#   environment, a stand-in for its volume and a fresh database on the local PostgreSQL: keys generate,
#   migrate up on the default SQLite and on PostgreSQL, the production refusal without SMTP_URL, serve,
#   readiness, register, login, /users/me, mail written to the volume, the HEALTHCHECK command itself, the
#   process's uid, JSON logs, metrics, and a clean stop on SIGTERM.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
base_image=localhost/securecrud-test-base:bookworm
image=localhost/securecrud-api:test
admin_url="${TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
app_uid=10001

fail() { echo "FAIL: $*"; exit 1; }
[ "$(id -u)" = 0 ] || fail "run as root (podman image mount, chroot, debootstrap)"

missing=()
command -v podman >/dev/null || missing+=(podman)
command -v debootstrap >/dev/null || [ -x /usr/sbin/debootstrap ] || missing+=(debootstrap)
command -v psql >/dev/null || missing+=(postgresql-client)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "== installing ${missing[*]} (Debian)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
export PATH="$PATH:/usr/sbin:/sbin"
chroot_bin=$(command -v chroot)

work="$(mktemp -d)"
mnt="" api_pid="" db=""
cleanup() {
  set +e
  if [ -n "$api_pid" ] && kill -0 "$api_pid" 2>/dev/null; then
    kill "$api_pid"
    for _ in $(seq 1 50); do kill -0 "$api_pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$api_pid" 2>/dev/null
  fi
  # Every mount made here, innermost first: the volume stand-in over the image, debootstrap's /proc and /sys.
  for under in ${mnt:+"$mnt/"} "$work/"; do
    awk -v w="$under" 'index($2, w) == 1 { print $2 }' /proc/self/mounts | sort -r | while read -r m; do
      umount "$m" || umount -l "$m"
    done
  done
  [ -n "$mnt" ] && podman image umount -f "$image" >/dev/null
  [ -n "$db" ] && psql "$admin_url" -qAt -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null
  rm -rf --one-file-system "$work"
}
trap cleanup EXIT

# The Debian mirror apt uses here (DEBIAN_MIRROR overrides): the first non-security deb source.
debian_mirror() {
  if [ -n "${DEBIAN_MIRROR:-}" ]; then echo "$DEBIAN_MIRROR"; return; fi
  python3 - <<'PY'
import glob, re
found = []
for path in ["/etc/apt/sources.list"] + sorted(glob.glob("/etc/apt/sources.list.d/*.list")):
    try:
        for line in open(path):
            m = re.match(r"\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)", line)
            if m:
                found.append((m.group(1), [m.group(2)]))
    except OSError:
        pass
for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
    for stanza in open(path).read().split("\n\n"):
        fields = {}
        for line in stanza.splitlines():
            if line and not line[0].isspace() and not line.startswith("#") and ":" in line:
                key, value = line.split(":", 1)
                fields[key.strip().lower()] = value.split()
        if "deb" in fields.get("types", []) and fields.get("enabled", ["yes"]) != ["no"]:
            for uri in fields.get("uris", []):
                found.append((uri, fields.get("suites", [])))
for uri, suites in found:
    if "security" not in uri and any("-" not in s for s in suites) and "debian" in uri:
        print(uri.rstrip("/"))
        break
else:
    print("http://deb.debian.org/debian")
PY
}

# --- the base image ----------------------------------------------------------------------------------------
if podman image exists "$base_image"; then
  echo "== base image $base_image (cached; \`podman rmi $base_image\` makes it anew)"
else
  mirror=$(debian_mirror)
  echo "== making the base image $base_image: debootstrap --variant=minbase bookworm $mirror"
  rootfs="$work/rootfs"
  if ! debootstrap --variant=minbase bookworm "$rootfs" "$mirror" > "$work/debootstrap.log" 2>&1; then
    tail -n 40 "$work/debootstrap.log"
    fail "debootstrap"
  fi
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  tar --numeric-owner -C "$rootfs" -c . | podman import --message "debootstrap minbase bookworm ($mirror)" - "$base_image" > "$work/import.log" 2>&1 \
    || { cat "$work/import.log"; fail "podman import"; }
  rm -rf --one-file-system "$rootfs"
  echo "ok: $base_image imported ($(podman image inspect --format '{{.Size}}' "$base_image" | awk '{printf "%.0f MB", $1/1e6}'))"
fi

# --- the binary and the build ------------------------------------------------------------------------------
api_bin="${API_BIN:-$root/target/release/api}"
if [ ! -x "$api_bin" ]; then
  [ -z "${API_BIN:-}" ] || fail "API_BIN=$API_BIN is not an executable file"
  echo "== cargo build --release --locked -p securecrud-api --bin api"
  (cd "$root" && cargo build --release --locked -p securecrud-api --bin api)
fi
ctx="$work/context"
mkdir "$ctx"
cp "$root/Containerfile" "$ctx/Containerfile"
install -m 0755 "$api_bin" "$ctx/api"
echo "== podman build --target runtime-local (binary: $api_bin)"
old_id=$(podman image inspect --format '{{.Id}}' "$image" 2>/dev/null || true)
build_started=$(date +%s)
if ! podman build --isolation=chroot --format docker --pull=never --force-rm --target runtime-local \
    --build-arg RUNTIME_BASE="$base_image" --build-arg API_BIN=api \
    -t "$image" -f "$ctx/Containerfile" "$ctx" > "$work/build.log" 2>&1; then
  cat "$work/build.log"
  fail "podman build"
fi
if grep -qE '^WARN|level=warn|is not supported' "$work/build.log"; then
  cat "$work/build.log"
  fail "podman build warned (above)"
fi
if grep -q 'rust:1-bookworm' "$work/build.log"; then
  cat "$work/build.log"
  fail "the build stage was processed for --target runtime-local"
fi
new_id=$(podman image inspect --format '{{.Id}}' "$image")
if [ -n "$old_id" ] && [ "$old_id" != "$new_id" ]; then podman rmi "$old_id" > /dev/null 2>&1 || true; fi
echo "ok: built $image in $(( $(date +%s) - build_started )) s without the build stage ($(podman image inspect --format '{{.Size}}' "$image" | awk '{printf "%.0f MB", $1/1e6}'))"

# --- the image's configuration -----------------------------------------------------------------------------
podman image inspect "$image" > "$work/inspect.json"
python3 - "$work" <<'PY'
import json, sys
work = sys.argv[1]
data = json.load(open(f"{work}/inspect.json"))[0]
config = data["Config"]
def check(cond, what):
    if not cond:
        print(f"FAIL: image config: {what}\n{json.dumps(data, indent=1)[:4000]}")
        sys.exit(1)
check(config.get("User") == "securecrud", f"User is {config.get('User')!r}")
check(config.get("Entrypoint") == ["/usr/local/bin/api"], f"Entrypoint is {config.get('Entrypoint')!r}")
check(config.get("Cmd") == ["serve"], f"Cmd is {config.get('Cmd')!r}")
check(config.get("WorkingDir") == "/var/lib/securecrud", f"WorkingDir is {config.get('WorkingDir')!r}")
check("/var/lib/securecrud" in (config.get("Volumes") or {}), f"Volumes are {config.get('Volumes')!r}")
check("8080/tcp" in (config.get("ExposedPorts") or {}), f"ExposedPorts are {config.get('ExposedPorts')!r}")
print("ok: user securecrud, entrypoint /usr/local/bin/api serve, workdir and volume /var/lib/securecrud, port 8080")
env = dict(e.split("=", 1) for e in config.get("Env", []))
want = {
    "APP_ENV": "production",
    "BIND_ADDR": "0.0.0.0:8080",
    "DATABASE_URL": "sqlite:///var/lib/securecrud/securecrud.db?mode=rwc",
    "LOG_FORMAT": "json",
    "MALLOC_ARENA_MAX": "2",
}
for key, value in want.items():
    check(env.get(key) == value, f"{key}={env.get(key)!r}, want {value!r}")
check("MAIL_DIR" not in env, "MAIL_DIR is set: it would silence production's refusal to run without SMTP_URL")
print("ok: environment " + " ".join(f"{k}={v}" for k, v in want.items()) + " (no MAIL_DIR)")
hc = data.get("Healthcheck") or data.get("HealthCheck") or config.get("Healthcheck") or {}
test = hc.get("Test") or []
check(test[:1] == ["CMD"] and len(test) > 1, f"HEALTHCHECK is {hc!r} (built without --format docker?)")
second = 1_000_000_000
timing = (hc.get("Interval"), hc.get("Timeout"), hc.get("StartPeriod"), hc.get("Retries"))
check(timing == (10 * second, 3 * second, 20 * second, 3), f"HEALTHCHECK timing is {timing!r}")
print("ok: HEALTHCHECK every 10 s, timeout 3 s, start period 20 s, 3 retries")
with open(f"{work}/image.env", "w") as out:
    out.writelines(f"{e}\n" for e in config["Env"])
with open(f"{work}/healthcheck.args", "w") as out:
    out.writelines(f"{a}\n" for a in test[1:])
PY
mapfile -t image_env < "$work/image.env"
mapfile -t healthcheck < "$work/healthcheck.args"

# --- the image's filesystem --------------------------------------------------------------------------------
mnt=$(podman image mount "$image")
[ -d "$mnt/usr" ] || fail "podman image mount gave $mnt"
grep -q "^securecrud:x:$app_uid:$app_uid:.*:/var/lib/securecrud:/usr/sbin/nologin\$" "$mnt/etc/passwd" \
  || fail "/etc/passwd: $(grep securecrud "$mnt/etc/passwd" || echo 'no securecrud')"
grep -q "^securecrud:x:$app_uid:" "$mnt/etc/group" || fail "/etc/group has no securecrud:$app_uid"
[ "$(stat -c '%u:%g %a' "$mnt/var/lib/securecrud")" = "$app_uid:$app_uid 750" ] \
  || fail "/var/lib/securecrud is $(stat -c '%u:%g %a' "$mnt/var/lib/securecrud")"
[ "$(stat -c '%u:%g %a' "$mnt/usr/local/bin/api")" = "0:0 755" ] \
  || fail "/usr/local/bin/api is $(stat -c '%u:%g %a' "$mnt/usr/local/bin/api")"
cmp -s "$api_bin" "$mnt/usr/local/bin/api" || fail "/usr/local/bin/api is not $api_bin"
echo "ok: user and group securecrud = $app_uid; /var/lib/securecrud $app_uid:$app_uid 0750; /usr/local/bin/api root-owned 0755"
[ -s "$mnt/etc/ssl/certs/ca-certificates.crt" ] || fail "no /etc/ssl/certs/ca-certificates.crt"
[ -z "$(ls -A "$mnt/var/lib/apt/lists" 2>/dev/null | grep -v '^lock$\|^partial$' || true)" ] || fail "apt lists left in the image"
for tool in curl wget; do [ ! -e "$mnt/usr/bin/$tool" ] || fail "$tool is in the image"; done
echo "ok: ca-certificates installed, apt lists removed, no curl or wget"

# The volume: a fresh folder owned as the image's (what a new named volume starts as) over the read-only mount.
volume="$work/volume"
install -d -o "$app_uid" -g "$app_uid" -m 0750 "$volume"
mount --bind "$volume" "$mnt/var/lib/securecrud"

# Runs a command of the image as uid/gid 10001: `in_image VAR=value… -- command args…` (the image's
# environment first, the given variables over it; at most 120 s).
in_image() {
  local vars=()
  while [ "$1" != -- ]; do vars+=("$1"); shift; done
  shift
  timeout 120 env -i "${image_env[@]}" "${vars[@]}" "$chroot_bin" --userspec="$app_uid:$app_uid" "$mnt" "$@"
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

version=$(in_image -- /usr/local/bin/api --version) || fail "api --version"
echo "ok: $version runs from the image as uid $app_uid"

in_image -- /usr/local/bin/api keys generate --out /var/lib/securecrud/jwt.pem > "$work/keys.log" 2>&1 \
  || { cat "$work/keys.log"; fail "api keys generate"; }
[ "$(stat -c '%u:%g %a' "$volume/jwt.pem")" = "$app_uid:$app_uid 600" ] || fail "jwt.pem is $(stat -c '%u:%g %a' "$volume/jwt.pem")"
echo "ok: api keys generate --out wrote an EdDSA key in the volume, owned by $app_uid, mode 0600"

# Production settings as compose.yaml gives them (EdDSA with a key file, JWT_SECRET, MFA_ENCRYPTION_KEY), with
# files for mail.
jwt_secret=$(head -c 36 /dev/urandom | base64 -w0)
mfa_key=$(head -c 36 /dev/urandom | base64 -w0)
settings=(
  JWT_ALGORITHM=EdDSA JWT_PRIVATE_KEY_FILE=/var/lib/securecrud/jwt.pem JWT_SECRET="$jwt_secret"
  MFA_ENCRYPTION_KEY="$mfa_key"
  BCRYPT_COST=10 PUBLIC_BASE_URL=https://app.example.test
)

set +e
in_image "${settings[@]}" -- /usr/local/bin/api migrate status > "$work/refused.log" 2>&1
code=$?
set -e
[ "$code" = 2 ] && grep -q 'SMTP_URL' "$work/refused.log" \
  || { cat "$work/refused.log"; fail "production without SMTP_URL or MAIL_DIR: exit $code"; }
echo "ok: production refuses to start without SMTP_URL or an explicit MAIL_DIR (exit 2: $(head -c 80 "$work/refused.log")…)"
settings+=(MAIL_DIR=/var/lib/securecrud/mail)

in_image "${settings[@]}" -- /usr/local/bin/api migrate up > "$work/sqlite.log" 2>&1 \
  || { cat "$work/sqlite.log"; fail "api migrate up on the image's default SQLite"; }
[ "$(stat -c %u "$volume/securecrud.db" 2>/dev/null)" = "$app_uid" ] || fail "no securecrud.db owned by $app_uid in the volume"
echo "ok: api migrate up on the default DATABASE_URL made /var/lib/securecrud/securecrud.db (SQLite, in the volume)"

psql "$admin_url" -qAt -c 'SELECT 1' > /dev/null 2>&1 \
  || fail "PostgreSQL is not reachable at $admin_url (start it as .ci/run does, or set TEST_POSTGRES_URL)"
db="securecrud_image_$$_$RANDOM"
psql "$admin_url" -qAt -c "CREATE DATABASE $db" > /dev/null
db_url="${admin_url%/*}/$db"
in_image "${settings[@]}" DATABASE_URL="$db_url" -- /usr/local/bin/api migrate up > "$work/migrate.log" 2>&1 \
  || { cat "$work/migrate.log"; fail "api migrate up on PostgreSQL"; }
echo "ok: api migrate up on a fresh PostgreSQL database ($db)"

# --- serve ---------------------------------------------------------------------------------------------------
port=$(free_port)
base="http://127.0.0.1:$port"
serve_env=("${settings[@]}" DATABASE_URL="$db_url" BIND_ADDR="127.0.0.1:$port" SHUTDOWN_TIMEOUT_SECS=10)
metrics_port=""
if LC_ALL=C grep -aqF METRICS_ADDR "$api_bin"; then
  metrics_port=$(free_port)
  serve_env+=(METRICS_ADDR="127.0.0.1:$metrics_port")
fi
env -i "${image_env[@]}" "${serve_env[@]}" "$chroot_bin" --userspec="$app_uid:$app_uid" "$mnt" \
  /usr/local/bin/api serve > "$work/api.log" 2>&1 &
api_pid=$!
code=""
for _ in $(seq 1 300); do
  kill -0 "$api_pid" 2>/dev/null || { cat "$work/api.log"; fail "the api exited"; }
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$base/health/ready" || true)
  [ "$code" = 200 ] && break
  sleep 0.2
done
[ "$code" = 200 ] || { cat "$work/api.log"; fail "/health/ready: $code after 60 s"; }
echo "ok: api serve from the image answers /health/ready 200 on PostgreSQL"

read -r uid gid comm < <(ps -o uid=,gid=,comm= -p "$api_pid")
groups=$(awk '/^Groups:/ { $1 = ""; print }' "/proc/$api_pid/status" | xargs)
[ "$uid" = "$app_uid" ] && [ "$gid" = "$app_uid" ] && [ "$comm" = api ] && [ -z "${groups//$app_uid/}" ] \
  || fail "the serving process is $comm as uid $uid gid $gid, groups $groups"
echo "ok: the api process ($api_pid) runs as uid $uid, gid $gid, supplementary groups: ${groups:-none}"

python3 - "$work/api.log" <<'PY' || fail "the log is not JSON lines"
import json, sys
lines = [line for line in open(sys.argv[1]) if line.strip()]
records = [json.loads(line) for line in lines]
assert any("listening on" in r.get("msg", "") for r in records), lines
print(f"ok: LOG_FORMAT=json from the image: {len(records)} log lines, each a JSON object")
PY

status() { curl -s -o "$work/body" -w '%{http_code}' --max-time 10 "$@"; }
json() { python3 -c "import json,sys; print(json.load(open('$work/body'))$1)"; }
code=$(status -X POST "$base/api/v1/auth/register" -H 'Content-Type: application/json' \
  -d '{"username":"ada_l","email":"ada@example.com","password":"correct horse battery staple"}')
[ "$code" = 201 ] || fail "register: $code $(cat "$work/body")"
code=$(status -X POST "$base/api/v1/auth/login" -H 'Content-Type: application/json' \
  -d '{"login":"ada@example.com","password":"correct horse battery staple"}')
[ "$code" = 200 ] || fail "login: $code $(cat "$work/body")"
access=$(json "['access_token']")
code=$(status "$base/api/v1/users/me" -H "Authorization: Bearer $access")
[ "$code" = 200 ] && [ "$(json "['username']")" = ada_l ] || fail "me: $code $(cat "$work/body")"
echo "ok: register 201, login 200 with an access token, /users/me 200 as ada_l"
code=$(status "$base/.well-known/jwks.json")
[ "$code" = 200 ] && [ "$(json "['keys'][0]['crv']")" = Ed25519 ] || fail "jwks: $code $(cat "$work/body")"
echo "ok: tokens are signed with the key file (JWKS publishes its Ed25519 key)"

eml=""
for _ in $(seq 1 100); do
  eml=$(find "$volume/mail" -name '*.eml' 2>/dev/null | head -n1 || true)
  [ -n "$eml" ] && break
  sleep 0.1
done
[ -n "$eml" ] || { cat "$work/api.log"; fail "no verification email in the volume's mail folder"; }
grep -q 'verify-email?token=' "$eml" || fail "$eml has no verification link"
[ "$(stat -c %u "$eml")" = "$app_uid" ] || fail "$eml is owned by $(stat -c %u "$eml")"
echo "ok: the verification email was written to /var/lib/securecrud/mail/$(basename "$eml") by uid $app_uid"

# The HEALTHCHECK command of the image, run in it as the api's user with the api's BIND_ADDR.
in_image BIND_ADDR="127.0.0.1:$port" -- "${healthcheck[@]}" \
  || fail "the HEALTHCHECK command failed against a healthy api: ${healthcheck[*]}"
closed=$(free_port)
if in_image BIND_ADDR="127.0.0.1:$closed" -- "${healthcheck[@]}" 2> /dev/null; then
  fail "the HEALTHCHECK command passed with nothing listening"
fi
echo "ok: the HEALTHCHECK command passes against the api (port $port) and fails on a closed port"

if [ -n "$metrics_port" ]; then
  code=$(status "http://127.0.0.1:$metrics_port/metrics")
  [ "$code" = 200 ] || fail "/metrics on METRICS_ADDR: $code"
  code=$(status "$base/metrics")
  [ "$code" != 200 ] || fail "/metrics is served on BIND_ADDR too"
  echo "ok: METRICS_ADDR serves /metrics on its own listener (not on BIND_ADDR)"
else
  echo "skip: metrics: this api binary has no METRICS_ADDR setting"
fi

# --- stop ----------------------------------------------------------------------------------------------------
kill -TERM "$api_pid"
set +e
wait "$api_pid"
code=$?
set -e
api_pid=""
[ "$code" = 0 ] || { cat "$work/api.log"; fail "the api exited with $code after SIGTERM"; }
grep -q 'server stopped' "$work/api.log" || { cat "$work/api.log"; fail "no 'server stopped' in the log"; }
echo "ok: SIGTERM stops the api cleanly (exit 0)"
echo "== container image: passed"
