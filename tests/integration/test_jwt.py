"""JWTs of a configured issuer, verified against its JWKS served on loopback: signature, issuer,
audience, expiry with clock skew, and key rotation (a new `kid` fetches the keys again)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi.testclient import TestClient
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from provtrack.adapters.store.repository import SqlStore
from provtrack.api.app import create_app
from provtrack.api.jwt import JwtVerifier
from provtrack.api.security import Tokens
from provtrack.settings import Settings
from tests.conftest import FakeClock
from tests.factories import order_body
from tests.integration.tmf import ORDERS, assert_tmf_error

ISSUER = "https://idp.example.net/realms/telco"


class Issuer:
    """An identity provider's JWKS endpoint and its signing keys, rotated at will."""

    def __init__(self) -> None:
        self.keys: dict[str, Any] = {}
        self.fetches = 0
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                issuer.fetches += 1
                body = json.dumps({"keys": [issuer.public(kid) for kid in issuer.keys]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.jwks_url = f"http://127.0.0.1:{self.server.server_address[1]}/certs"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def add_rsa(self, kid: str) -> None:
        self.keys[kid] = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def add_ec(self, kid: str) -> None:
        self.keys[kid] = ec.generate_private_key(ec.SECP256R1())

    def public(self, kid: str) -> dict[str, Any]:
        key = self.keys[kid]
        algorithm = RSAAlgorithm if isinstance(key, rsa.RSAPrivateKey) else ECAlgorithm
        return {**json.loads(algorithm.to_jwk(key.public_key())), "kid": kid, "use": "sig"}

    def token(self, kid: str, **claims: Any) -> str:
        now = int(time.time())
        body = {"iss": ISSUER, "aud": "provtrack", "iat": now, "exp": now + 300, "client_id": "bss", **claims}
        body = {k: v for k, v in body.items() if v is not None}
        key = self.keys[kid]
        algorithm = "RS256" if isinstance(key, rsa.RSAPrivateKey) else "ES256"
        return jwt.encode(body, key, algorithm=algorithm, headers={"kid": kid})

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def issuer() -> Iterator[Issuer]:
    running = Issuer()
    running.add_rsa("2026-11")
    yield running
    running.stop()


@pytest.fixture
def api(issuer: Issuer, database_url: str, store: SqlStore, clock: FakeClock) -> Iterator[TestClient]:
    verifier = JwtVerifier(
        issuer=ISSUER, audience="provtrack", jwks_url=issuer.jwks_url, refetch_cooldown_seconds=0
    )
    authenticator = Tokens(store, clock=clock, jwt=verifier, cache_seconds=0)
    app = create_app(Settings(database_url=database_url), store, clock=clock, authenticator=authenticator)
    with TestClient(app) as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_token_of_the_issuer_with_the_scope_is_accepted(api: TestClient, issuer: Issuer) -> None:
    token = issuer.token("2026-11", scope="openid profile orders:read orders:write")

    created = api.post(ORDERS, json=order_body(), headers=bearer(token))

    assert created.status_code == 201
    assert api.get(ORDERS, headers=bearer(token)).headers["x-total-count"] == "1"
    other = issuer.token("2026-11", client_id="another", scope="orders:read")
    assert api.get(ORDERS, headers=bearer(other)).headers["x-total-count"] == "0"  # bss's order


def test_the_scopes_of_the_token_decide(api: TestClient, issuer: Issuer) -> None:
    reader = issuer.token("2026-11", scope="openid orders:read")

    assert api.get(ORDERS, headers=bearer(reader)).status_code == 200
    assert_tmf_error(api.post(ORDERS, json=order_body(), headers=bearer(reader)), 403, "FORBIDDEN")
    as_list = issuer.token("2026-11", scope=None, scp=["orders:write"])
    assert api.post(ORDERS, json=order_body(), headers=bearer(as_list)).status_code == 201


@pytest.mark.parametrize(
    ("claims", "says"),
    [
        ({"aud": "another-api"}, "Audience"),
        ({"iss": "https://evil.example.net"}, "issuer"),
        ({"exp": -120}, "expired"),  # seconds from now
        ({"nbf": +120}, "not yet valid"),
        ({"exp": None}, "exp"),
        ({"client_id": None, "sub": None}, "names no client"),
    ],
    ids=["audience", "issuer", "expired", "not-yet-valid", "no-expiry", "no-client"],
)
def test_a_token_that_fails_a_check_is_401(
    api: TestClient, issuer: Issuer, claims: dict[str, Any], says: str
) -> None:
    now = int(time.time())
    timed = {k: now + v if k in ("exp", "nbf") and v is not None else v for k, v in claims.items()}
    token = issuer.token("2026-11", scope="orders:read", **timed)

    response = api.get(ORDERS, headers=bearer(token))

    assert says in assert_tmf_error(response, 401, "UNAUTHENTICATED")
    assert response.headers["www-authenticate"] == 'Bearer realm="provtrack", error="invalid_token"'


def test_clock_skew_within_the_leeway_is_allowed(api: TestClient, issuer: Issuer) -> None:
    token = issuer.token("2026-11", scope="orders:read", exp=int(time.time()) - 30, nbf=int(time.time()) + 30)

    assert api.get(ORDERS, headers=bearer(token)).status_code == 200


def test_a_token_signed_by_a_key_the_issuer_does_not_publish_is_401(api: TestClient, issuer: Issuer) -> None:
    forger = Issuer()
    try:
        forger.add_rsa("2026-11")  # the same kid, another key
        token = forger.token("2026-11", scope="orders:read")
    finally:
        forger.stop()

    assert "Signature" in assert_tmf_error(api.get(ORDERS, headers=bearer(token)), 401, "UNAUTHENTICATED")


def test_a_rotated_key_is_fetched_when_a_token_names_it(api: TestClient, issuer: Issuer) -> None:
    assert api.get(ORDERS, headers=bearer(issuer.token("2026-11", scope="orders:read"))).status_code == 200
    fetched = issuer.fetches

    issuer.add_ec("2026-12")  # the issuer rotates: a new key, another algorithm
    del issuer.keys["2026-11"]
    response = api.get(ORDERS, headers=bearer(issuer.token("2026-12", scope="orders:read")))

    assert response.status_code == 200
    assert issuer.fetches == fetched + 1


def test_a_token_with_an_unsigned_header_is_refused(api: TestClient) -> None:
    unsigned = jwt.encode(
        {"iss": ISSUER, "aud": "provtrack", "exp": int(time.time()) + 60}, None, algorithm="none"
    )

    assert_tmf_error(api.get(ORDERS, headers=bearer(unsigned)), 401, "UNAUTHENTICATED")
