#!/usr/bin/env python3
"""Measures issue 25's attack on the second factor at the api's default limits, from one client address.

The attacker has the password's mailbox but not the authenticator. They repeat: reset the password through the
mailed link, log in (the password is right: `mfa_required` and an mfa_token), then guess codes until refused;
on any 429 they wait as told. The script counts the codes the api compared (each `401 invalid_credentials` at
`/auth/mfa/verify`) and prints the rate per day it reached.

    tests/security/mfa_reset_loop.py MINUTES

Starts its own api (target/debug/api, built first) on a temp SQLite database with the default limits; only
BCRYPT_COST is lowered (4), which changes the time a hash takes, not how many attempts are allowed.
"""
import base64, hashlib, hmac, json, os, random, re, struct, subprocess, sys, tempfile, time, urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PASSWORD = "a long enough passphrase 1"


def totp(secret_b32, at=None):
    key = base64.b32decode(secret_b32 + "=" * (-len(secret_b32) % 8))
    counter = int((at or time.time()) // 30)
    digest = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 15
    return "%06d" % ((struct.unpack(">I", digest[offset:offset + 4])[0] & 0x7FFFFFFF) % 1_000_000)


class Api:
    def __init__(self, base):
        self.base = base

    def call(self, method, path, body=None, token=None):
        request = urllib.request.Request(self.base + path, method=method,
                                         data=None if body is None else json.dumps(body).encode())
        request.add_header("Content-Type", "application/json")
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                text = response.read()
                return response.status, (json.loads(text) if text else {}), response.headers
        except urllib.error.HTTPError as err:
            text = err.read()
            return err.code, (json.loads(text) if text else {}), err.headers

    def patient(self, method, path, body=None, token=None):
        """A call that waits out the per-IP limit (429 with a short Retry-After) and tries again."""
        while True:
            status, answer, headers = self.call(method, path, body, token)
            if status == 429 and int(headers.get("Retry-After", "0")) <= 60:
                time.sleep(int(headers.get("Retry-After", "1")))
                continue
            return status, answer, headers


def main():
    minutes = float(sys.argv[1]) if len(sys.argv) > 1 else 5
    subprocess.run(["cargo", "build", "--quiet", "--bin", "api"], cwd=ROOT, check=True)
    work = tempfile.mkdtemp()
    mail = os.path.join(work, "mail")
    os.makedirs(mail)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RATE_", "LOGIN_", "MFA_"))}
    env.update(DATABASE_URL=f"sqlite://{work}/api.db?mode=rwc", BIND_ADDR="127.0.0.1:8097", MAIL_DIR=mail,
               BCRYPT_COST="4", RUST_LOG="warn")
    api_process = subprocess.Popen([os.path.join(ROOT, "target/debug/api")], cwd=work, env=env)
    try:
        api = Api("http://127.0.0.1:8097")
        for _ in range(100):
            try:
                if api.call("GET", "/health/live")[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.1)
        status, _, _ = api.patient("POST", "/api/v1/auth/register",
                                   {"username": "victim", "email": "victim@example.com", "password": PASSWORD})
        assert status == 201, status
        _, tokens, _ = api.patient("POST", "/api/v1/auth/login", {"login": "victim", "password": PASSWORD})
        access = tokens["access_token"]
        _, enrolment, _ = api.patient("POST", "/api/v1/users/me/mfa/totp", {"current_password": PASSWORD}, access)
        status, _, _ = api.patient("POST", "/api/v1/users/me/mfa/totp/confirm",
                                   {"code": totp(enrolment["secret"])}, access)
        assert status == 200, status

        compared = capped = resets = 0
        capped_at = None
        seen = set()
        start = time.time()
        end = start + minutes * 60
        while time.time() < end:
            # The mailbox: a reset link.
            api.patient("POST", "/api/v1/auth/password-reset/request", {"email": "victim@example.com"})
            link = None
            for _ in range(200):
                fresh = set(os.listdir(mail)) - seen
                for name in fresh:
                    seen.add(name)
                    text = open(os.path.join(mail, name), encoding="utf-8", errors="replace").read()
                    text = text.replace("=\n", "").replace("=3D", "=")
                    found = re.search(r"reset-password\?token=([A-Za-z0-9_-]+)", text)
                    link = found.group(1) if found else link
                if link:
                    break
                time.sleep(0.05)
            status, _, _ = api.patient("POST", "/api/v1/auth/password-reset/confirm",
                                       {"token": link, "new_password": PASSWORD})
            resets += status == 204
            status, answer, _ = api.patient("POST", "/api/v1/auth/login", {"login": "victim", "password": PASSWORD})
            if status != 401 or answer.get("code") != "mfa_required":
                continue  # locked out: the next reset ends the lock
            mfa_token = answer["mfa_token"]
            while time.time() < end:
                status, answer, headers = api.patient(
                    "POST", "/api/v1/auth/mfa/verify",
                    {"mfa_token": mfa_token, "code": "%06d" % random.randrange(1_000_000)})
                if status == 401 and answer.get("code") == "invalid_credentials":
                    compared += 1
                    continue
                # The cap answers 429 with an hour's Retry-After; a login lockout's is at most 15 minutes.
                if status == 429 and int(headers.get("Retry-After", "0")) >= 3600:
                    capped += 1
                    capped_at = capped_at or time.time()
                break
        elapsed = time.time() - start
        print(f"{elapsed / 60:.1f} min from one address at the default limits: {resets} password resets, "
              f"{compared} codes compared")
        if capped_at:
            before = (capped_at - start) / 60
            print(f"the cap was reached after {before:.1f} min ({compared * 1440 / before:,.0f} codes a day "
                  f"until then); in the {(time.time() - capped_at) / 60:.1f} min after it, {capped} more "
                  f"logins (each after a password reset) were refused at the code step, no code compared")
        else:
            print(f"{compared * 86400 / elapsed:,.0f} codes a day at this rate; the cap was not reached")
    finally:
        api_process.terminate()
        api_process.wait()


if __name__ == "__main__":
    main()
