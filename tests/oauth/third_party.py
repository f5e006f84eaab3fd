"""Third-party OAuth 2.0 and JOSE clients against a running SecureCRUD api, unmodified.

    python3 tests/oauth/third_party.py BASE_URL USERNAME PASSWORD

- requests-oauthlib (legacy-application client, RFC 6749 §4.3): fetch a token, use it, refresh it, read our
  errors as oauthlib exceptions, and revoke (RFC 7009, the request prepared by oauthlib).
- PyJWT's PyJWKClient: verify the api's access token from /.well-known/jwks.json alone (EdDSA or ES256).

The endpoints come from the api's RFC 8414 metadata. Prints one line per step; any failure raises (exit 1).
Run by tests/api/third_party.rs; `make test` installs the packages.
"""

import json
import os
import sys
import urllib.request

# The test api listens on plain http://127.0.0.1; oauthlib refuses http:// unless told it is a test.
os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = "1"

import jwt  # PyJWT
import requests
from oauthlib.oauth2 import InvalidGrantError, LegacyApplicationClient
from requests_oauthlib import OAuth2Session

base, username, password = sys.argv[1:4]
CLIENT_ID = "python-requests-oauthlib"


def step(message):
    print(f"ok: {message}", flush=True)


with urllib.request.urlopen(f"{base}/.well-known/oauth-authorization-server") as response:
    metadata = json.load(response)
token_url = metadata["token_endpoint"].replace(metadata["issuer"], base)
revocation_url = metadata["revocation_endpoint"].replace(metadata["issuer"], base)
jwks_url = metadata["jwks_uri"].replace(metadata["issuer"], base)
assert "refresh_token" in metadata["grant_types_supported"], metadata
step(f"metadata: issuer {metadata['issuer']}")

# 1. Fetch a token with the password grant, as the library sends it (client id as Basic credentials).
session = OAuth2Session(client=LegacyApplicationClient(client_id=CLIENT_ID))
token = session.fetch_token(token_url=token_url, username=username, password=password)
assert token["token_type"].lower() == "bearer", token
step("fetch_token (password grant)")

# 2. Use it.
me = session.get(f"{base}/api/v1/users/me")
assert me.status_code == 200, (me.status_code, me.text)
assert me.json()["username"] == username
step("GET /users/me with the fetched token")

# 3. Our errors are RFC 6749 errors the library understands.
try:
    OAuth2Session(client=LegacyApplicationClient(client_id=CLIENT_ID)).fetch_token(
        token_url=token_url, username=username, password="not the password"
    )
    raise AssertionError("a wrong password fetched a token")
except InvalidGrantError as error:
    step(f"wrong password -> {type(error).__name__} ({error.description})")

# 4. Refresh (grant_type=refresh_token): a new pair; the old refresh token is rotated away.
old_refresh = token["refresh_token"]
refreshed = session.refresh_token(token_url, refresh_token=old_refresh)
assert refreshed["access_token"] != token["access_token"]
assert refreshed["refresh_token"] != old_refresh
me = session.get(f"{base}/api/v1/users/me")
assert me.status_code == 200, (me.status_code, me.text)
step("refresh_token (refresh grant) and use the new token")

# 5. PyJWT verifies the access token from the JWKS alone, the algorithm pinned by us, not by the token.
jwks_client = jwt.PyJWKClient(jwks_url)
signing_key = jwks_client.get_signing_key_from_jwt(refreshed["access_token"])
claims = jwt.decode(
    refreshed["access_token"],
    signing_key.key,
    algorithms=[signing_key.algorithm_name],
    audience="securecrud-api",
    issuer=metadata["issuer"],
)
assert claims["typ"] == "access" and claims["sub"] == me.json()["id"], claims
assert signing_key.algorithm_name in ("EdDSA", "ES256"), signing_key.algorithm_name
step(f"PyJWKClient verified the {signing_key.algorithm_name} token (kid {signing_key.key_id})")

# 6. Revoke (RFC 7009) with the request oauthlib prepares; the session ends for every token of it.
url, headers, body = session._client.prepare_token_revocation_request(
    revocation_url, refreshed["refresh_token"], token_type_hint="refresh_token"
)
revoked = requests.post(url, headers=headers, data=body, timeout=10)
assert revoked.status_code == 200, (revoked.status_code, revoked.text)
me = session.get(f"{base}/api/v1/users/me")
assert me.status_code == 401, (me.status_code, me.text)
try:
    session.refresh_token(token_url, refresh_token=refreshed["refresh_token"])
    raise AssertionError("a revoked refresh token was refreshed")
except InvalidGrantError:
    pass
step("revoked: the access token and the refresh token are refused")
print("ALL OK", flush=True)
