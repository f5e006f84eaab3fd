#!/usr/bin/env python3
"""`mfa_pairs.py BASE_URL ACCOUNTS PASSWORD OUT`: second-factor answers for the MFA verify benchmark.

Registers ACCOUNTS users on the api at BASE_URL, turns on TOTP for each (enrolment and confirmation, the code
computed here as RFC 6238 says), then signs each in once per recovery code with the password: every sign-in
answers `401 mfa_required` with a fresh single-use `mfa_token`. Writes one JSON body a line to OUT,
`{"mfa_token": ..., "code": <a recovery code>}`, each good for exactly one `POST /api/v1/auth/mfa/verify`.
Run it against an instance with a low BCRYPT_COST: the hashes it creates keep that cost, so the sign-ins stay
cheap, and the instance being measured verifies codes, never passwords.
"""

import base64
import concurrent.futures
import hashlib
import hmac
import http.client
import json
import random
import secrets
import struct
import sys
import time
import urllib.parse


class Api:
    def __init__(self, base):
        url = urllib.parse.urlsplit(base)
        self.conn = http.client.HTTPConnection(url.hostname, url.port)

    def call(self, method, path, body, token=None):
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.conn.request(method, path, json.dumps(body), headers)
        answer = self.conn.getresponse()
        return answer.status, json.loads(answer.read() or b"null")


def totp(secret, at):
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    digest = hmac.new(key, struct.pack(">Q", int(at) // 30), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset:offset + 4])[0] & 0x7FFFFFFF
    return f"{value % 1_000_000:06d}"


def expect(status, body, want, what):
    if status != want:
        sys.exit(f"{what}: expected {want}, got {status}: {body}")
    return body


def enrolled(api, name, password):
    """Registers `name` with TOTP on; returns its recovery codes."""
    body = {"username": name, "email": f"{name}@example.com", "password": password}
    expect(*api.call("POST", "/api/v1/auth/register", body), 201, "register")
    login = {"login": name, "password": password}
    token = expect(*api.call("POST", "/api/v1/auth/login", login), 200, "login")["access_token"]
    start = {"current_password": password}
    secret = expect(*api.call("POST", "/api/v1/users/me/mfa/totp", start, token), 200, "enrol")["secret"]
    confirm = {"code": totp(secret, time.time())}
    answer = expect(*api.call("POST", "/api/v1/users/me/mfa/totp/confirm", confirm, token), 200, "confirm")
    return answer["recovery_codes"]


def pairs_of(base, name, password):
    """The account's ten (mfa_token, recovery code) bodies, one sign-in each."""
    api = Api(base)
    bodies = []
    for code in enrolled(api, name, password):
        status, body = api.call("POST", "/api/v1/auth/login", {"login": name, "password": password})
        challenge = expect(status, body, 401, "login with two-factor on")
        bodies.append(json.dumps({"mfa_token": challenge["mfa_token"], "code": code}))
    return bodies


def main():
    base, accounts, password, out = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    run = secrets.token_hex(4)
    names = [f"mfa{run}n{n}" for n in range(accounts)]
    # A few clients at once keep the instance's two cores busy; each account is one client's, in order.
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        results = pool.map(lambda name: pairs_of(base, name, password), names)
        bodies = [body for account in results for body in account]
    # Shuffled, so that requests in flight together are for different accounts, as real sign-ins are: an
    # account's concurrent second-factor checks are capped (LOGIN_MAX_FAILURES), and its ten answers side by
    # side would meet that cap instead of measuring the route.
    random.shuffle(bodies)
    with open(out, "w") as lines:
        lines.write("".join(body + "\n" for body in bodies))


if __name__ == "__main__":
    main()
