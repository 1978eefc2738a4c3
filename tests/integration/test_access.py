"""Access: a bearer token on every route but liveness, one scope per route, and each client sees
only its own orders and subscriptions (another client's answers 404, as one that does not exist)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from provtrack.adapters.store.repository import SqlStore
from provtrack.api.app import create_app
from provtrack.api.security import PUBLIC, ROUTE_SCOPES
from provtrack.domain.access import SCOPES, Scope
from provtrack.services import access
from provtrack.settings import Settings
from tests.conftest import FakeClock
from tests.factories import order_body
from tests.integration.tmf import BASE, CANCELS, MERGE_PATCH, ORDERS, assert_tmf_error

EXT = "/provtrack/v1"


@pytest.fixture
def app(database_url: str, store: SqlStore, clock: FakeClock) -> FastAPI:
    """The app as `provtrack serve` builds it: API keys from the store (not remembered between
    requests, so that a revocation shows at once)."""
    settings = Settings(database_url=database_url, auth_cache_seconds=0, events_callback_allow="127.0.0.1")
    return create_app(settings, store, clock=clock)


@pytest.fixture
def api(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, base_url="http://testserver") as client:
        yield client


def token(store: SqlStore, clock: FakeClock, client: str, *scopes: str, **extra: Any) -> dict[str, str]:
    _, text = access.create_api_key(
        store, client=client, scopes=list(scopes), name="test", now=clock(), **extra
    )
    return {"Authorization": f"Bearer {text}"}


def routes(app: FastAPI) -> list[tuple[str, str]]:
    """Every (method, path) of the API, as the router sees them."""
    found = []
    for route in app.routes:
        contexts = route.effective_route_contexts() if hasattr(route, "effective_route_contexts") else [route]
        for context in contexts:
            if type(context).__name__ in ("APIRoute", "_EffectiveRouteContext"):
                found += [(m, context.path) for m in sorted(context.methods) if m != "HEAD"]
    return found


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x", path)


# --- every route -------------------------------------------------------------------------------


def test_every_route_has_an_access_rule(app: FastAPI) -> None:
    unlisted = [r for r in routes(app) if r not in ROUTE_SCOPES]

    assert unlisted == [], "add them to provtrack/api/security.py ROUTE_SCOPES"


def test_every_route_refuses_a_request_without_a_token(app: FastAPI, api: TestClient) -> None:
    checked = 0
    for method, path in routes(app):
        if ROUTE_SCOPES[(method, path)] is PUBLIC:
            continue
        response = api.request(method, concrete(path), json={})
        assert_tmf_error(response, 401, "UNAUTHENTICATED")
        assert response.headers["www-authenticate"] == 'Bearer realm="provtrack"', (method, path)
        checked += 1
    assert checked >= 25


def test_liveness_needs_no_token(api: TestClient) -> None:
    assert api.get(f"{EXT}/health").status_code == 200


@pytest.mark.parametrize(
    ("header", "error"),
    [
        ("Bearer pt_0000_unknown", "invalid_token"),
        ("Bearer eyJhbGciOiJIUzI1NiJ9.e30.x", "invalid_token"),  # a JWT, and no issuer configured
        ("Basic dXNlcjpwYXNz", "invalid_request"),
        ("Bearer", "invalid_request"),
        ("Bearer a b", "invalid_request"),
    ],
)
def test_a_token_that_proves_nothing_is_401(api: TestClient, header: str, error: str) -> None:
    response = api.get(ORDERS, headers={"Authorization": header})

    assert_tmf_error(response, 401, "UNAUTHENTICATED")
    assert response.headers["www-authenticate"] == f'Bearer realm="provtrack", error="{error}"'


def test_a_revoked_key_is_refused_at_once(api: TestClient, store: SqlStore, clock: FakeClock) -> None:
    headers = token(store, clock, "bss", "orders:read")
    assert api.get(ORDERS, headers=headers).status_code == 200
    key = next(k for k in access.list_api_keys(store) if k.client == "bss")

    access.revoke_api_key(store, key.id, now=clock())

    assert_tmf_error(api.get(ORDERS, headers=headers), 401, "UNAUTHENTICATED")


def test_an_expired_key_is_refused(api: TestClient, store: SqlStore, clock: FakeClock) -> None:
    headers = token(store, clock, "bss", "orders:read", expires_at=clock() + timedelta(hours=1))
    assert api.get(ORDERS, headers=headers).status_code == 200

    clock.advance(hours=1)

    assert_tmf_error(api.get(ORDERS, headers=headers), 401, "UNAUTHENTICATED")


def test_only_a_hash_of_the_key_is_kept(store: SqlStore, clock: FakeClock) -> None:
    key, text = access.create_api_key(store, client="bss", scopes=["orders:read"], name="k", now=clock())

    with store.engine.connect() as conn:
        rows = [tuple(r) for r in conn.exec_driver_sql("SELECT * FROM api_key")]
    assert rows
    assert all(text not in str(value) for row in rows for value in row)
    assert key.token_hash in rows[0]


SCOPED = sorted((k, v) for k, v in ROUTE_SCOPES.items() if v not in (PUBLIC, Scope.ADMIN))


@pytest.mark.parametrize(("route", "scope"), SCOPED, ids=[f"{m} {p}" for (m, p), _ in SCOPED])
def test_a_token_without_the_routes_scope_is_403(
    api: TestClient, store: SqlStore, clock: FakeClock, route: tuple[str, str], scope: Scope
) -> None:
    others = [s for s in SCOPES if s not in (scope, Scope.ADMIN)]
    method, path = route

    response = api.request(method, concrete(path), json={}, headers=token(store, clock, "bss", *others))

    assert_tmf_error(response, 403, "FORBIDDEN")
    assert response.headers["www-authenticate"] == (
        f'Bearer realm="provtrack", error="insufficient_scope", scope="{scope}"'
    )


def test_deleting_an_order_needs_admin(api: TestClient, store: SqlStore, clock: FakeClock) -> None:
    everything = token(store, clock, "bss", *[s for s in SCOPES if s != Scope.ADMIN])
    order = api.post(ORDERS, json=order_body(), headers=everything).json()

    assert_tmf_error(api.delete(f"{ORDERS}/{order['id']}", headers=everything), 403, "FORBIDDEN")
    assert (
        api.delete(f"{ORDERS}/{order['id']}", headers=token(store, clock, "ops", "admin")).status_code == 204
    )


# --- each client sees its own ----------------------------------------------------------------------


@pytest.fixture
def two_clients(api: TestClient, store: SqlStore, clock: FakeClock) -> dict[str, Any]:
    every = [s for s in SCOPES if s != Scope.ADMIN]
    alice, bob = token(store, clock, "alice", *every), token(store, clock, "bob", *every)
    order = api.post(ORDERS, json=order_body(externalId="A-1"), headers=alice)
    assert order.status_code == 201
    api.post(ORDERS, json=order_body(externalId="B-1"), headers=bob)
    return {"alice": alice, "bob": bob, "order": order.json(), "admin": token(store, clock, "ops", "admin")}


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", f"{ORDERS}/{{id}}", None),
        ("GET", f"{ORDERS}/{{id}}?asOf=2030-01-01T00:00:00Z", None),
        ("PATCH", f"{ORDERS}/{{id}}", {"description": "mine now"}),
        ("GET", f"{EXT}/serviceOrder/{{id}}/plan", None),
        ("GET", f"{EXT}/serviceOrder/{{id}}/timeline", None),
        ("POST", CANCELS, {"serviceOrder": {"id": "{id}"}}),
    ],
)
def test_another_clients_order_is_404_as_if_it_did_not_exist(
    api: TestClient, two_clients: dict[str, Any], method: str, path: str, body: Any
) -> None:
    order_id = two_clients["order"]["id"]
    if body is not None:
        body = {k: ({"id": order_id} if v == {"id": "{id}"} else v) for k, v in body.items()}
    bob = {**two_clients["bob"], **MERGE_PATCH}
    absent = api.request(method, path.format(id="no-such-order"), json=body, headers=bob)

    response = api.request(method, path.format(id=order_id), json=body, headers=bob)

    assert_tmf_error(response, 404, "NOT_FOUND")
    assert response.json()["message"] == absent.json()["message"].replace("no-such-order", order_id)
    order = api.get(f"{ORDERS}/{order_id}", headers=two_clients["alice"]).json()
    assert order["description"] == two_clients["order"]["description"]
    assert order["state"] == "acknowledged"


def test_a_list_shows_only_the_clients_own_orders(api: TestClient, two_clients: dict[str, Any]) -> None:
    def external_ids(headers: dict[str, str], query: str = "") -> list[str]:
        response = api.get(f"{ORDERS}{query}", headers=headers)
        assert response.status_code == 200
        return sorted(o["externalId"] for o in response.json())

    assert external_ids(two_clients["alice"]) == ["A-1"]
    assert external_ids(two_clients["bob"]) == ["B-1"]
    assert external_ids(two_clients["bob"], "?externalId=A-1") == []
    assert external_ids(two_clients["admin"]) == ["A-1", "B-1"]
    assert api.get(ORDERS, headers=two_clients["bob"]).headers["x-total-count"] == "1"


def test_cancel_tasks_are_seen_by_the_orders_client_only(
    api: TestClient, two_clients: dict[str, Any]
) -> None:
    order_id = two_clients["order"]["id"]
    task = api.post(CANCELS, json={"serviceOrder": {"id": order_id}}, headers=two_clients["alice"]).json()

    assert api.get(f"{CANCELS}/{task['id']}", headers=two_clients["alice"]).status_code == 200
    assert_tmf_error(api.get(f"{CANCELS}/{task['id']}", headers=two_clients["bob"]), 404, "NOT_FOUND")
    assert api.get(CANCELS, headers=two_clients["bob"]).json() == []
    assert len(api.get(CANCELS, headers=two_clients["admin"]).json()) == 1


def test_an_administrator_reads_and_changes_every_clients_orders(
    api: TestClient, two_clients: dict[str, Any]
) -> None:
    url = f"{ORDERS}/{two_clients['order']['id']}"
    admin = {**two_clients["admin"], **MERGE_PATCH}

    assert api.get(url, headers=admin).status_code == 200
    assert api.patch(url, json={"description": "by ops"}, headers=admin).status_code == 200
    assert api.get(url, headers=two_clients["alice"]).json()["description"] == "by ops"


def test_hub_subscriptions_belong_to_their_client(api: TestClient, two_clients: dict[str, Any]) -> None:
    body = {"callback": "http://127.0.0.1:9/listener"}
    mine = api.post(f"{BASE}/hub", json=body, headers=two_clients["alice"])
    assert mine.status_code == 201
    url = f"{BASE}/hub/{mine.json()['id']}"

    assert_tmf_error(api.get(url, headers=two_clients["bob"]), 404, "NOT_FOUND")
    assert_tmf_error(api.delete(url, headers=two_clients["bob"]), 404, "NOT_FOUND")
    rotate = api.post(f"{EXT}/hub/{mine.json()['id']}/rotateSecret", json={}, headers=two_clients["bob"])
    assert_tmf_error(rotate, 404, "NOT_FOUND")
    assert api.get(f"{EXT}/hub", headers=two_clients["bob"]).json() == []
    letters = api.get(f"{EXT}/deadLetter?subscription={mine.json()['id']}", headers=two_clients["bob"])
    assert_tmf_error(letters, 404, "NOT_FOUND")
    assert api.get(url, headers=two_clients["alice"]).status_code == 200
    assert api.get(url, headers=two_clients["admin"]).status_code == 200
    assert api.delete(url, headers=two_clients["alice"]).status_code == 204


def test_the_openapi_document_says_how_to_authenticate(api: TestClient) -> None:
    document = api.get("/openapi.json").json()

    assert document["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    create = document["paths"][f"{BASE}/serviceOrder"]["post"]
    assert create["security"] == [{"bearerAuth": []}]
    assert {"401", "403"} <= create["responses"].keys()
    assert document["paths"][f"{EXT}/health"]["get"]["security"] == []


def test_the_audit_trail_records_the_client_the_token_proved(
    api: TestClient, store: SqlStore, clock: FakeClock
) -> None:
    headers = token(store, clock, "bss", "orders:read", "orders:write")
    order = api.post(ORDERS, json=order_body(), headers=headers).json()
    api.patch(
        f"{ORDERS}/{order['id']}",
        json={"description": "changed"},
        headers={**headers, **MERGE_PATCH, "X-Actor": "provtrack-engine"},  # a header proves nothing
    )

    timeline = api.get(f"{EXT}/serviceOrder/{order['id']}/timeline", headers=headers).json()

    assert {c["actor"] for c in timeline} == {"bss"}
