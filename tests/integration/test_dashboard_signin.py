"""The dashboard behind its sign-in: a browser without a session is sent to the sign-in page, signs in
with an API key through its form, and each of the dashboard's forms carries the session's CSRF token,
without which a change is refused and nothing changes (docs/security.md)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient

from provtrack.adapters.store.repository import SqlStore
from provtrack.api.app import create_app
from provtrack.api.errors import ERRORS
from provtrack.services import access, orders
from provtrack.services.ports import Context
from provtrack.settings import Settings
from provtrack.web.app import install_dashboard
from tests.conftest import FakeClock
from tests.factories import order_body

SIGN_IN = "/provtrack/v1/signin"


@pytest.fixture
def browser(database_url: str, store: SqlStore, clock: FakeClock) -> Iterator[TestClient]:
    app = create_app(Settings(database_url=database_url), store, clock=clock)
    install_dashboard(app, errors=ERRORS)
    with TestClient(app, base_url="http://testserver", follow_redirects=False) as client:
        yield client


def key(store: SqlStore, clock: FakeClock, scopes: str) -> str:
    _, token = access.create_api_key(store, client="ops", scopes=scopes, name="desk", now=clock())
    return token


def an_order(store: SqlStore, clock: FakeClock) -> str:
    ctx = Context(now=clock().isoformat(), actor="test", new_id=lambda: "order-1")
    return orders.create_order(store, order_body(), ctx=ctx, client="ops").id


def test_a_page_without_a_session_sends_the_browser_to_sign_in_and_back(
    browser: TestClient, store: SqlStore, clock: FakeClock
) -> None:
    asked = browser.get("/jeopardy")
    sign_in_page = browser.get(asked.headers["location"])
    signed_in = browser.post(SIGN_IN, data={"token": key(store, clock, "admin"), "next": "/jeopardy"})
    page = browser.get("/jeopardy")

    assert asked.status_code == 303
    assert parse_qs(urlsplit(asked.headers["location"]).query) == {"next": ["/jeopardy"]}
    assert sign_in_page.status_code == 200
    assert 'action="/provtrack/v1/signin"' in sign_in_page.text
    assert signed_in.status_code == 303
    assert signed_in.headers["location"] == "/jeopardy"
    assert "httponly" in signed_in.headers["set-cookie"].lower()
    assert page.status_code == 200


def test_a_refused_key_or_a_foreign_next_signs_nobody_in(browser: TestClient) -> None:
    refused = browser.post(SIGN_IN, data={"token": "pt_not-a-key", "next": "/"})
    elsewhere = browser.post(SIGN_IN, data={"token": "", "next": "//evil.example/"})
    backslash = browser.post(SIGN_IN, data={"token": "", "next": "/\\evil.example/"})

    assert refused.status_code == 303
    assert "problem=refused" in refused.headers["location"]
    assert "set-cookie" not in refused.headers
    assert parse_qs(urlsplit(elsewhere.headers["location"]).query)["next"] == ["/"]
    assert parse_qs(urlsplit(backslash.headers["location"]).query)["next"] == ["/"]
    assert browser.get("/").status_code == 303


def test_a_form_posts_with_the_session_csrf_token_and_without_it_changes_nothing(
    browser: TestClient, store: SqlStore, clock: FakeClock
) -> None:
    order_id = an_order(store, clock)
    browser.post(SIGN_IN, data={"token": key(store, clock, "admin"), "next": "/"})
    page = browser.get(f"/orders/{order_id}").text
    [csrf] = set(re.findall(r'name="csrf" value="([^"]+)"', page))

    forged = browser.post(f"/orders/{order_id}/note", data={"text": "from another site", "csrf": "guess"})
    bare = browser.post(f"/orders/{order_id}/note", data={"text": "no token"})
    noted = browser.post(f"/orders/{order_id}/note", data={"text": "Customer away", "csrf": csrf})

    assert forged.status_code == 403
    assert forged.json()["code"] == "CSRF_REFUSED"
    assert bare.status_code == 403
    assert noted.status_code == 303
    notes = [n["text"] for n in json.loads(orders.get_order_json(store, order_id)).get("note", [])]
    assert notes == ["Customer away"]


def test_a_client_key_without_admin_signs_in_but_the_dashboard_refuses_it(
    browser: TestClient, store: SqlStore, clock: FakeClock
) -> None:
    browser.post(SIGN_IN, data={"token": key(store, clock, "orders:read orders:write"), "next": "/"})

    page = browser.get("/")

    assert page.status_code == 403
    assert page.json()["code"] == "FORBIDDEN"
