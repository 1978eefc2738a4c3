"""The dashboard signs in once: a bearer token becomes an HttpOnly, SameSite=Strict session cookie,
and a change made with the cookie needs the session's CSRF token."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from provtrack.adapters.store.repository import SqlStore
from provtrack.api.app import create_app
from provtrack.services import access
from provtrack.settings import Settings
from tests.conftest import FakeClock
from tests.factories import order_body
from tests.integration.tmf import ORDERS, assert_tmf_error

SESSION = "/provtrack/v1/session"


@pytest.fixture
def browser(database_url: str, store: SqlStore, clock: FakeClock) -> Iterator[TestClient]:
    app = create_app(Settings(database_url=database_url, session_seconds=3600), store, clock=clock)
    with TestClient(app, base_url="http://testserver") as client:
        yield client


@pytest.fixture
def signed_in(browser: TestClient, store: SqlStore, clock: FakeClock) -> str:
    _, token = access.create_api_key(
        store, client="ops-desk", scopes="orders:read orders:write", name="d", now=clock()
    )
    response = browser.post(SESSION, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 201, response.text
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=strict" in cookie
    assert response.json()["client"] == "ops-desk"
    csrf: str = response.json()["csrfToken"]
    return csrf


def test_a_signed_in_browser_reads_with_its_cookie_alone(browser: TestClient, signed_in: str) -> None:
    response = browser.get(ORDERS)

    assert response.status_code == 200


def test_a_change_with_the_cookie_needs_the_csrf_token(browser: TestClient, signed_in: str) -> None:
    assert_tmf_error(browser.post(ORDERS, json=order_body()), 403, "CSRF_REFUSED")
    assert_tmf_error(browser.post(ORDERS, json=order_body(), headers={"X-CSRF-Token": "guess"}), 403)
    assert browser.get(ORDERS).headers["x-total-count"] == "0"

    created = browser.post(ORDERS, json=order_body(), headers={"X-CSRF-Token": signed_in})

    assert created.status_code == 201
    assert browser.get(ORDERS).headers["x-total-count"] == "1"


def test_the_session_keeps_the_tokens_scopes(browser: TestClient, signed_in: str) -> None:
    response = browser.delete(f"{ORDERS}/x", headers={"X-CSRF-Token": signed_in})

    assert_tmf_error(response, 403, "FORBIDDEN")


def test_a_session_ends_when_it_expires_or_signs_out(
    browser: TestClient, signed_in: str, clock: FakeClock
) -> None:
    clock.advance(seconds=3601)
    assert_tmf_error(browser.get(ORDERS), 401, "UNAUTHENTICATED")

    browser.delete(SESSION)
    assert_tmf_error(browser.get(ORDERS), 401, "UNAUTHENTICATED")
    assert "provtrack_session" not in browser.cookies


def test_a_forged_cookie_is_refused(browser: TestClient, signed_in: str) -> None:
    real = browser.cookies["provtrack_session"]
    body, _, signature = real.partition(".")
    browser.cookies.clear()
    assert browser.get(ORDERS, headers={"Cookie": f"provtrack_session={real}"}).status_code == 200

    forged = browser.get(ORDERS, headers={"Cookie": f"provtrack_session={body[:-2]}xx.{signature}"})

    assert_tmf_error(forged, 401, "UNAUTHENTICATED")


def test_signing_in_needs_a_valid_token(browser: TestClient) -> None:
    assert_tmf_error(browser.post(SESSION), 401, "UNAUTHENTICATED")
    assert_tmf_error(browser.post(SESSION, headers={"Authorization": "Bearer pt_x_y"}), 401)
    assert "provtrack_session" not in browser.cookies
