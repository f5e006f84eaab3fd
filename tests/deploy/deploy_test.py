#!/usr/bin/env python3
"""The deployment test: nginx (deploy/nginx/securecrud.conf, TLS) in front of two api instances on one
PostgreSQL database, configured as docs/DEPLOYMENT.md says. Run by tests/deploy/run.sh (`make test-deploy`),
which installs nginx and builds the api first.

Checks, through nginx:
1. the client address that limits, sessions and audit events record is the client's (this test talks from
   127.0.0.2..127.0.0.9, nginx from 127.0.0.1), and a client-sent X-Forwarded-For cannot choose it;
2. a lockout made through one instance holds on the other; a logout through one is refused at once by the other;
3. rolling restart: SIGTERM to one instance under load, zero failed requests, and it takes traffic again;
4. database outage: PostgreSQL stopped under load, every request that needs it answers 503 with Retry-After
   within 1 s, /health/live stays 200, /health/ready says 503; PostgreSQL back, service resumes within 2 s
   without a restart, the outbox sends again, and every task acknowledged before the outage is still there.

Prints the figures (requests sent and failed, the slowest 503, time to recovery) and exits non-zero on any
failure. Stops PostgreSQL for a few seconds: never run it beside other tests that use that server.
"""

import http.client
import json
import os
import secrets
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
WORK = os.environ["WORK"]
API = os.environ["API_BIN"]
NGINX = os.environ["NGINX_BIN"]
PG_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")
PASSWORD = "correct horse battery staple"


def log(message):
    print(message, flush=True)


def fail(message):
    print(f"FAIL: {message}", flush=True)
    for name in ("a.log", "b.log", "nginx/logs/error.log"):
        path = os.path.join(WORK, name)
        if os.path.exists(path):
            print(f"--- {name} (last 30 lines)")
            with open(path, encoding="utf-8", errors="replace") as f:
                print("".join(f.readlines()[-30:]))
    raise SystemExit(1)


def check(condition, message):
    if not condition:
        fail(message)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- PostgreSQL


def pg_cluster():
    """The Debian cluster (version, name) listening on TEST_POSTGRES_URL's port: it is the one stopped."""
    port = PG_URL.port or 5432
    for version in sorted(os.listdir("/etc/postgresql")):
        for name in sorted(os.listdir(f"/etc/postgresql/{version}")):
            conf = f"/etc/postgresql/{version}/{name}/postgresql.conf"
            if os.path.exists(conf):
                with open(conf, encoding="utf-8") as f:
                    for line in f:
                        key, _, value = line.partition("=")
                        if key.strip() == "port" and value.split("#")[0].strip() == str(port):
                            return version, name
    fail(f"no Debian PostgreSQL cluster listens on port {port} (pg_ctlcluster is needed to stop it)")


def pg(*args):
    version, name = pg_cluster()
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, name, *args],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


PG_URL = urllib.parse.urlsplit(PG_ADMIN_URL)


def pg_ready():
    host, port = PG_URL.hostname or "127.0.0.1", str(PG_URL.port or 5432)
    return subprocess.run(["pg_isready", "-h", host, "-p", port, "-q"], check=False).returncode == 0


def psql(sql, url=PG_ADMIN_URL):
    out = subprocess.run(
        ["psql", url, "-v", "ON_ERROR_STOP=1", "-qtAc", sql],
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip()


# ---------------------------------------------------------------- HTTP


TLS = None  # the test's own certificate authority, set once the certificate exists (see make_cert)


class Client:
    """HTTP/1.1 with keep-alive from one source address, to nginx (TLS) or straight to an instance."""

    def __init__(self, host, port, source="127.0.0.2", tls=True, timeout=10):
        self.host, self.port, self.source, self.tls, self.timeout = host, port, source, tls, timeout
        self.conn = None
        self.retries = 0

    def _connect(self):
        if self.tls:
            return http.client.HTTPSConnection(
                self.host, self.port, context=TLS, timeout=self.timeout,
                source_address=(self.source, 0),
            )
        return http.client.HTTPConnection(
            self.host, self.port, timeout=self.timeout, source_address=(self.source, 0)
        )

    def request(self, method, path, body=None, token=None, headers=None):
        """(status, headers dict lower-cased, parsed JSON or None, seconds)."""
        all_headers = {"Accept": "application/json"}
        if body is not None:
            all_headers["Content-Type"] = "application/json"
            body = json.dumps(body)
        if token:
            all_headers["Authorization"] = f"Bearer {token}"
        all_headers.update(headers or {})
        started = time.monotonic()
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = self._connect()
            try:
                self.conn.request(method, path, body=body, headers=all_headers)
                response = self.conn.getresponse()
                raw = response.read()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as err:
                # A kept-alive client connection nginx closed between requests: a GET is sent again once on a
                # new connection (what any HTTP client does), counted; anything else is a failure, so a POST
                # lost during a restart can never hide behind a retry.
                self.conn.close()
                self.conn = None
                if attempt == 2 or method != "GET":
                    raise err
                self.retries += 1
            except Exception:
                self.conn.close()
                self.conn = None
                raise
        elapsed = time.monotonic() - started
        if response.getheader("Connection", "").lower() == "close":
            self.conn.close()
            self.conn = None
        parsed = None
        if raw:
            try:
                parsed = json.loads(raw)
            except ValueError:
                parsed = raw.decode("utf-8", "replace")
        return response.status, {k.lower(): v for k, v in response.getheaders()}, parsed, elapsed


# ---------------------------------------------------------------- the deployment


class Instance:
    def __init__(self, name, port, env):
        self.name, self.port, self.env, self.proc = name, port, env, None
        self.metrics_port = free_port()
        self.log_path = os.path.join(WORK, f"{name}.log")

    def start(self):
        env = dict(self.env, BIND_ADDR=f"127.0.0.1:{self.port}",
                   METRICS_ADDR=f"127.0.0.1:{self.metrics_port}")
        self.logfile = open(self.log_path, "a", encoding="utf-8")
        self.proc = subprocess.Popen(
            [API, "serve"], env=env, stdout=self.logfile, stderr=subprocess.STDOUT
        )

    def wait_ready(self, timeout=30):
        client = Client("127.0.0.1", self.port, source="127.0.0.1", tls=False, timeout=2)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            check(self.proc.poll() is None, f"instance {self.name} exited")
            try:
                if client.request("GET", "/health/ready")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        fail(f"instance {self.name} did not become ready")

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            return self.proc.wait(timeout=60)
        return None

    def requests_logged(self):
        with open(self.log_path, encoding="utf-8", errors="replace") as f:
            return sum(1 for line in f if '"path"' in line and "securecrud::access" in line)

    def metric(self, name):
        """The value of the sample `name` on this instance's METRICS_ADDR."""
        client = Client("127.0.0.1", self.metrics_port, source="127.0.0.1", tls=False, timeout=5)
        status, _, body, _ = client.request("GET", "/metrics")
        check(status == 200, f"/metrics on {self.name}: {status}")
        for line in body.splitlines():
            key, _, value = line.rpartition(" ")
            if key == name:
                return float(value)
        return None

    def direct(self, source="127.0.0.1"):
        return Client("127.0.0.1", self.port, source=source, tls=False)


def make_cert():
    tls = os.path.join(WORK, "tls")
    os.makedirs(tls, exist_ok=True)
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
         "-keyout", os.path.join(tls, "key.pem"), "-out", os.path.join(tls, "cert.pem")],
        check=True, capture_output=True,
    )
    global TLS
    TLS = ssl.create_default_context(cafile=os.path.join(tls, "cert.pem"))


def nginx_config(https_port, http_port, a_port, b_port):
    """deploy/nginx/securecrud.conf with only addresses, ports, certificate paths and server_name replaced,
    inside a minimal nginx.conf of the test's own (paths in a temp folder, no root needed)."""
    with open(os.path.join(ROOT, "deploy", "nginx", "securecrud.conf"), encoding="utf-8") as f:
        site = f.read()
    replacements = {
        "server 127.0.0.1:8081 ": f"server 127.0.0.1:{a_port} ",
        "server 127.0.0.1:8082 ": f"server 127.0.0.1:{b_port} ",
        "listen 80;": f"listen 127.0.0.1:{http_port};",
        "listen [::]:80;": "",
        "listen 443 ssl http2;": f"listen 127.0.0.1:{https_port} ssl http2;",
        "listen [::]:443 ssl http2;": "",
        "server_name api.example.com;": "server_name localhost;",
        "/etc/ssl/certs/api.example.com.pem": os.path.join(WORK, "tls", "cert.pem"),
        "/etc/ssl/private/api.example.com.key": os.path.join(WORK, "tls", "key.pem"),
    }
    for old, new in replacements.items():
        check(old in site, f"deploy/nginx/securecrud.conf no longer contains {old!r}")
        site = site.replace(old, new)
    site_path = os.path.join(WORK, "nginx", "securecrud.conf")
    with open(site_path, "w", encoding="utf-8") as f:
        f.write(site)
    tmp = os.path.join(WORK, "nginx", "tmp")
    main = f"""worker_processes 2;
daemon off;
error_log {WORK}/nginx/logs/error.log warn;
pid {WORK}/nginx/nginx.pid;
events {{ worker_connections 256; }}
http {{
  access_log {WORK}/nginx/logs/access.log;
  client_body_temp_path {tmp}/body;
  proxy_temp_path {tmp}/proxy;
  fastcgi_temp_path {tmp}/fastcgi;
  uwsgi_temp_path {tmp}/uwsgi;
  scgi_temp_path {tmp}/scgi;
  include {site_path};
}}
"""
    with open(os.path.join(WORK, "nginx", "nginx.conf"), "w", encoding="utf-8") as f:
        f.write(main)


class Load:
    """`threads` clients through nginx, each creating (1 in 4) or listing tasks as fast as answers come,
    recording every answer (start time, status, seconds, Retry-After) and every acknowledged task id."""

    def __init__(self, port, token, threads=6, source="127.0.0.5"):
        self.port, self.token, self.threads, self.source = port, token, threads, source
        self.results = []  # (started, status, seconds, retry_after, method)
        self.created = []
        self.errors = []
        self.lock = threading.Lock()
        self.stop_flag = threading.Event()
        self.workers = []
        self.clients = []

    def retries(self):
        """GETs sent again on a new client connection (see Client.request)."""
        return sum(client.retries for client in self.clients)

    def run(self, index):
        client = Client("127.0.0.1", self.port, source=self.source, timeout=15)
        self.clients.append(client)
        n = 0
        while not self.stop_flag.is_set():
            n += 1
            create = n % 4 == 0
            started = time.monotonic()
            try:
                if create:
                    status, headers, body, seconds = client.request(
                        "POST", "/api/v1/tasks", {"title": f"load {index}-{n}"}, self.token
                    )
                else:
                    status, headers, body, seconds = client.request(
                        "GET", "/api/v1/tasks?limit=5", token=self.token
                    )
            except OSError as err:
                with self.lock:
                    self.errors.append((started, repr(err)))
                client = Client("127.0.0.1", self.port, source=self.source, timeout=15)
                self.clients.append(client)
                continue
            with self.lock:
                self.results.append(
                    (started, status, seconds, headers.get("retry-after"), "POST" if create else "GET")
                )
                if create and status == 201:
                    self.created.append(body["id"])

    def start(self):
        for i in range(self.threads):
            t = threading.Thread(target=self.run, args=(i,), daemon=True)
            t.start()
            self.workers.append(t)

    def stop(self):
        self.stop_flag.set()
        for t in self.workers:
            t.join(timeout=30)

    def window(self, since, until=None):
        with self.lock:
            return [r for r in self.results if r[0] >= since and (until is None or r[0] < until)]


def main():
    # A CI timeout or Ctrl-C ends the test through its cleanup (PostgreSQL is started again).
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda number, _frame: (_ for _ in ()).throw(SystemExit(128 + number)))
    os.makedirs(os.path.join(WORK, "nginx", "logs"), exist_ok=True)
    os.makedirs(os.path.join(WORK, "nginx", "tmp"), exist_ok=True)
    make_cert()

    check(pg_ready(), "PostgreSQL is not running at 127.0.0.1:5432")
    database = f"securecrud_deploy_{secrets.token_hex(4)}"
    psql(f'CREATE DATABASE "{database}"')
    parsed = urllib.parse.urlsplit(PG_ADMIN_URL)
    database_url = urllib.parse.urlunsplit(parsed._replace(path=f"/{database}"))

    a_port, b_port, https_port, http_port = free_port(), free_port(), free_port(), free_port()
    key_file = os.path.join(WORK, "jwt.pem")
    subprocess.run([API, "keys", "generate", "--out", key_file], check=True, capture_output=True)
    mail_dir = os.path.join(WORK, "mail")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "APP_ENV": "production",
        "DATABASE_URL": database_url,
        "JWT_PRIVATE_KEY_FILE": key_file,
        "JWT_SECRET": secrets.token_urlsafe(48),
        "MFA_ENCRYPTION_KEY": secrets.token_urlsafe(48),
        "PUBLIC_BASE_URL": f"https://localhost:{https_port}",
        "BCRYPT_COST": "10",
        "TRUSTED_PROXIES": "127.0.0.1/32",
        "LOG_FORMAT": "json",
        "RUST_LOG": "info",
        "WORKERS": "2",
        "DB_MAX_CONNECTIONS": "10",
        "LOGIN_MAX_FAILURES": "3",
        "RATE_LIMIT_AUTH_PER_MIN": "20",
        "RATE_LIMIT_API_PER_MIN": "1000000",
        "MAIL_DIR": mail_dir,
        "MAIL_POLL_MS": "200",
        "SHUTDOWN_TIMEOUT_SECS": "30",
    }
    a = Instance("a", a_port, env)
    b = Instance("b", b_port, env)
    nginx = None
    try:
        # Both instances start at once on an empty database: migrations are serialised (an advisory lock).
        a.start()
        b.start()
        a.wait_ready()
        b.wait_ready()
        log("ok: two instances started at once on an empty PostgreSQL database and both are ready")

        nginx_config(https_port, http_port, a_port, b_port)
        conf = os.path.join(WORK, "nginx", "nginx.conf")
        subprocess.run([NGINX, "-t", "-p", os.path.join(WORK, "nginx"), "-c", conf], check=True,
                       capture_output=True)
        nginx = subprocess.Popen([NGINX, "-p", os.path.join(WORK, "nginx"), "-c", conf],
                                 stderr=open(os.path.join(WORK, "nginx.stderr"), "w"))
        proxy = Client("localhost", https_port, source="127.0.0.2")
        for _ in range(50):
            try:
                if proxy.request("GET", "/health/live")[0] == 200:
                    break
            except OSError:
                time.sleep(0.1)
        status, headers, _, _ = proxy.request("GET", "/health/ready")
        check(status == 200, f"/health/ready through nginx: {status}")
        check("strict-transport-security" in headers, "HSTS header missing")
        plain = Client("127.0.0.1", http_port, source="127.0.0.2", tls=False)
        status, headers, _, _ = plain.request("GET", "/api/v1/tasks")
        check(status == 308 and headers.get("location", "").startswith("https://"),
              f"plain HTTP is not redirected to HTTPS: {status} {headers.get('location')}")
        log("ok: nginx serves TLS with HSTS and redirects plain HTTP")

        client_ip_checks(proxy, https_port, a, b)
        lockout_and_logout_checks(https_port, a, b)
        rolling_restart(https_port, a, b)
        database_outage(https_port, a, b, mail_dir)
        log("ALL OK")
    finally:
        # Each step on its own: one failing must not leave PostgreSQL stopped or processes running.
        steps = [
            lambda: None if pg_ready() else pg("start"),
            lambda: a.stop(signal.SIGKILL),
            lambda: b.stop(signal.SIGKILL),
            lambda: nginx and (nginx.terminate(), nginx.wait(timeout=10)),
            lambda: psql(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'),
        ]
        for step in steps:
            try:
                step()
            except Exception as err:  # noqa: BLE001 - cleanup goes on whatever failed
                print(f"warning: cleanup step failed: {err!r}")


def register(client, username):
    status, _, body, _ = client.request(
        "POST", "/api/v1/auth/register",
        {"username": username, "email": f"{username}@example.com", "password": PASSWORD},
    )
    check(status == 201, f"register {username}: {status} {body}")
    return body


def login(client, username, password=PASSWORD, headers=None):
    return client.request("POST", "/api/v1/auth/login", {"login": username, "password": password},
                          headers=headers)


def client_ip_checks(proxy, https_port, a, b):
    register(proxy, "ada_l")
    # A forged X-Forwarded-For from the client: nginx appends the real peer, the api believes only that.
    status, _, tokens, _ = login(
        Client("localhost", https_port, source="127.0.0.3"), "ada_l",
        headers={"X-Forwarded-For": "203.0.113.7"},
    )
    check(status == 200, f"login through nginx: {status} {tokens}")
    status, _, sessions, _ = proxy.request("GET", "/api/v1/users/me/sessions", token=tokens["access_token"])
    check(status == 200, f"sessions: {status}")
    ips = {s["ip"] for s in sessions["items"]}
    check(ips == {"127.0.0.3"}, f"the session records {ips}, not the client's 127.0.0.3")

    # The audit trail: an admin made with the CLI reads the login events.
    subprocess.run(
        [API, "create-admin", "--username", "root_admin", "--email", "root@example.com",
         "--password-stdin"],
        input=PASSWORD + "\n", text=True, env=a.env, check=True, capture_output=True,
    )
    status, _, admin, _ = login(Client("localhost", https_port, source="127.0.0.4"), "root_admin")
    check(status == 200, f"admin login: {status}")
    status, _, audit, _ = proxy.request("GET", "/api/v1/admin/audit?type=login_succeeded",
                                        token=admin["access_token"])
    check(status == 200, f"audit: {status}")
    recorded = {e["ip"] for e in audit["items"]}
    check(recorded == {"127.0.0.3", "127.0.0.4"},
          f"audit events record {recorded}, not the clients' 127.0.0.3 and 127.0.0.4")

    # The per-IP auth limit (20 a minute here) counts each client, not nginx: one client spends its quota
    # (forging a different X-Forwarded-For on every request), another is untouched. The minutes are fixed
    # windows of the wall clock: should one end among these requests, the count starts again, so the
    # client is refused by its 41st request at the latest, and never before its 21st. A new name each time:
    # the per-name lockout (3 failures here) must not be what refuses it.
    greedy = Client("localhost", https_port, source="127.0.0.6")
    statuses = []
    for i in range(41):
        status = login(greedy, f"nobody_{i}", "wrong password!",
                       headers={"X-Forwarded-For": f"198.51.100.{i}"})[0]
        statuses.append(status)
        if status == 429:
            break
    check(statuses[-1] == 429 and len(statuses) > 20 and set(statuses[:-1]) == {401},
          f"the limit did not hold against a forged X-Forwarded-For: {statuses}")
    status = login(Client("localhost", https_port, source="127.0.0.7"), "ada_l")[0]
    check(status == 200, f"another client was limited too: {status}")
    log("ok: sessions, audit events and the per-IP limit record the client's address "
        "(127.0.0.3/4/6/7), not nginx's; a forged X-Forwarded-For changes nothing")


def lockout_and_logout_checks(https_port, a, b):
    proxy = Client("localhost", https_port, source="127.0.0.8")
    register(proxy, "grace_h")
    # Three wrong passwords through instance A lock the name; B refuses the right one.
    for _ in range(3):
        status = login(a.direct("127.0.0.8"), "grace_h", "wrong password!")[0]
        check(status == 401, f"wrong password through A: {status}")
    status, headers, _, _ = login(b.direct("127.0.0.8"), "grace_h")
    check(status == 429 and "retry-after" in headers, f"B after A's lockout: {status}")
    status = login(proxy, "grace_h")[0]
    check(status == 429, f"nginx after A's lockout: {status}")
    log("ok: a lockout made through instance A holds on instance B and through nginx")

    # Logout through B; A refuses the same access token on the very next request.
    status, _, tokens, _ = login(a.direct("127.0.0.9"), "ada_l")
    check(status == 200, f"login through A: {status}")
    token = tokens["access_token"]
    check(a.direct().request("GET", "/api/v1/users/me", token=token)[0] == 200, "A accepts the token")
    status = b.direct().request("POST", "/api/v1/auth/logout", {"refresh_token": tokens["refresh_token"]},
                                token=token)[0]
    check(status == 204, f"logout through B: {status}")
    status = a.direct().request("GET", "/api/v1/users/me", token=token)[0]
    check(status == 401, f"A still accepted a token logged out through B: {status}")
    log("ok: a logout through instance B is refused at once by instance A")


def load_token(https_port):
    proxy = Client("localhost", https_port, source="127.0.0.5")
    register(proxy, "load_user")
    status, _, tokens, _ = login(proxy, "load_user")
    check(status == 200, f"load user login: {status}")
    return tokens["access_token"]


def rolling_restart(https_port, a, b):
    """docs/DEPLOYMENT.md's rolling restart, under load: each instance in turn is stopped with SIGTERM,
    started again at once, waited for until ready, then 3 s more (nginx's fail_timeout is 2 s)."""
    token = load_token(https_port)
    load = Load(https_port, token)
    load.start()
    time.sleep(2)
    started = time.monotonic()
    figures = []
    for instance in (a, b):
        stopping = time.monotonic()
        code = instance.stop(signal.SIGTERM)
        drained = time.monotonic() - stopping
        check(code == 0, f"instance {instance.name} exited {code} after SIGTERM")
        before = instance.requests_logged()
        instance.start()
        instance.wait_ready()
        ready = time.monotonic() - stopping
        time.sleep(3)
        served = instance.requests_logged() - before
        check(served > 20, f"instance {instance.name} served {served} requests after it came back")
        figures.append(f"{instance.name.upper()} drained and exited 0 in {drained:.2f} s, was ready "
                       f"{ready:.1f} s after the signal and served {served} requests in the next 3 s")
    load.stop()
    window = load.window(started)
    failed = [r for r in window if r[1] not in (200, 201)]
    check(not load.errors, f"{len(load.errors)} requests failed at the transport: {load.errors[:3]}")
    check(not failed, f"{len(failed)} of {len(window)} requests failed during the restarts: "
          f"{sorted({r[1] for r in failed})}")
    posts = sum(1 for r in window if r[4] == "POST")
    log(f"ok: rolling restart of both instances: {len(window)} requests through nginx ({posts} POST; "
        f"{load.retries()} GETs re-sent by the client on a new connection): 0 failed; " + "; ".join(figures))


def database_outage(https_port, a, b, mail_dir):
    proxy = Client("localhost", https_port, source="127.0.0.2")
    token = load_token_for(proxy, "outage_user")
    # A message in the outbox before the outage: a reset request for a user who exists.
    sent_before = mail_count(mail_dir)
    load = Load(https_port, token)
    load.start()
    time.sleep(1.5)
    acknowledged_before = list(load.created)
    pg("stop", "-m", "fast")
    down_at = time.monotonic()
    time.sleep(1.0)
    live = proxy.request("GET", "/health/live")[0]
    ready = proxy.request("GET", "/health/ready")
    direct_ready = [i.direct().request("GET", "/health/ready")[0] for i in (a, b)]
    db_up_during = [i.metric("securecrud_db_up") for i in (a, b)]
    reset_status = proxy.request("POST", "/api/v1/auth/password-reset/request",
                                 {"email": "outage_user@example.com"})
    time.sleep(3.0)
    pg("start")
    while not pg_ready():
        time.sleep(0.02)
    up_at = time.monotonic()
    # Time until each instance serves a database request again, asked every 50 ms, straight to each.
    recovered = {}
    deadline = up_at + 10
    while len(recovered) < 2 and time.monotonic() < deadline:
        for instance in (a, b):
            if instance.name in recovered:
                continue
            try:
                status = instance.direct("127.0.0.2").request("GET", "/api/v1/tasks?limit=1",
                                                              token=token)[0]
            except OSError:
                status = 0
            if status == 200:
                recovered[instance.name] = time.monotonic() - up_at
        time.sleep(0.05)
    time.sleep(1.0)
    load.stop()
    check(live == 200, f"/health/live answered {live} during the outage")
    check(ready[0] == 503 and "retry-after" in ready[1], f"/health/ready answered {ready[0]} during the outage")
    check(direct_ready == [503, 503], f"the instances' /health/ready during the outage: {direct_ready}")
    check(db_up_during == [0.0, 0.0], f"securecrud_db_up during the outage: {db_up_during}")
    db_up_after = [i.metric("securecrud_db_up") for i in (a, b)]
    check(db_up_after == [1.0, 1.0], f"securecrud_db_up after the outage: {db_up_after}")
    check(reset_status[0] == 503, f"a reset request during the outage answered {reset_status[0]}")

    during = load.window(down_at, up_at)
    unavailable = [r for r in during if r[1] == 503]
    other = [r for r in during if r[1] not in (200, 201, 503)]
    check(unavailable, "no request was answered 503 during the outage")
    check(not other, f"during the outage some answers were neither success nor 503: {sorted({r[1] for r in other})}")
    check(all(r[3] for r in unavailable), "a 503 came without Retry-After")
    slowest = max(r[2] for r in unavailable)
    check(slowest <= 1.0, f"the slowest 503 took {slowest:.3f} s (more than 1 s)")
    slow_any = max(r[2] for r in during)
    check(slow_any <= 1.0, f"a request during the outage took {slow_any:.3f} s")
    check(not load.errors, f"transport errors during the outage: {load.errors[:3]}")
    check(len(recovered) == 2, f"not every instance recovered within 10 s: {recovered}")
    worst_recovery = max(recovered.values())
    check(worst_recovery <= 2.0, f"an instance took {worst_recovery:.2f} s to serve again")

    # Nothing acknowledged before the outage (or during it, before the stop) is lost.
    acknowledged = set(load.created)
    present = set()
    offset = 0
    while True:
        status, _, page, _ = proxy.request("GET", f"/api/v1/tasks?limit=100&offset={offset}", token=token)
        check(status == 200, f"listing after the outage: {status}")
        present.update(item["id"] for item in page["items"])
        offset += len(page["items"])
        if not page["items"] or offset >= page["total"]:
            break
    missing = acknowledged - present
    check(not missing, f"{len(missing)} acknowledged tasks are missing after the outage")

    # The outbox sends again: a reset request now is delivered as a message.
    status = proxy.request("POST", "/api/v1/auth/password-reset/request",
                           {"email": "outage_user@example.com"})[0]
    check(status in (200, 202, 204), f"reset request after the outage: {status}")
    deadline = time.monotonic() + 10
    while mail_count(mail_dir) <= sent_before and time.monotonic() < deadline:
        time.sleep(0.1)
    check(mail_count(mail_dir) > sent_before, "the outbox did not send after the outage")
    log(f"ok: database outage: {len(during)} requests while PostgreSQL was down for "
        f"{up_at - down_at:.1f} s: {len(unavailable)} answered 503 with Retry-After, the slowest in "
        f"{slowest * 1000:.0f} ms (any request: {slow_any * 1000:.0f} ms); /health/live 200, /health/ready 503, "
        f"securecrud_db_up 0 on both instances (1 again after)")
    log(f"ok: recovery without a restart: instance A served again {recovered['a']:.2f} s and B "
        f"{recovered['b']:.2f} s after PostgreSQL accepted connections; all {len(acknowledged)} acknowledged "
        f"tasks ({len(acknowledged_before)} before the outage) are there; the outbox delivered a message")


def load_token_for(client, username):
    register(client, username)
    status, _, tokens, _ = login(client, username)
    check(status == 200, f"{username} login: {status}")
    return tokens["access_token"]


def mail_count(mail_dir):
    if not os.path.isdir(mail_dir):
        return 0
    return sum(1 for name in os.listdir(mail_dir) if name.endswith(".eml"))


if __name__ == "__main__":
    main()
