"""Safe retries and concurrent edits: `Idempotency-Key` on POST gives a repeat the first answer,
and ETags with If-Match / If-None-Match keep a stale change from landing."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from provtrack.adapters.store.repository import SqlStore
from provtrack.api.app import create_app
from provtrack.api.security import Trusted
from provtrack.domain.access import Principal
from provtrack.domain.idempotency import CLAIM_LEASE, RETENTION, fingerprint, new_record
from provtrack.services import idempotency
from provtrack.settings import Settings
from tests.conftest import FakeClock
from tests.factories import order_body
from tests.integration.tmf import BASE, CANCELS, JSON_PATCH, MERGE_PATCH, ORDERS, assert_tmf_error

KEY = {"Idempotency-Key": "3f2a9c1e-7b44-4d6a-9f0e-1c2b3a4d5e6f"}


def count(client: TestClient) -> int:
    return int(client.get(ORDERS).headers["x-total-count"])


# --- Idempotency-Key ---------------------------------------------------------------------------


def test_a_repeat_with_the_same_key_and_body_gets_the_first_answer(client: TestClient) -> None:
    first = client.post(ORDERS, json=order_body(), headers=KEY)
    assert first.status_code == 201
    client.patch(first.headers["location"], json={"description": "changed since"}, headers=MERGE_PATCH)

    again = client.post(ORDERS, json=order_body(), headers=KEY)

    assert again.status_code == 201
    assert again.content == first.content  # the first answer, not the order as it is now
    assert again.headers["location"] == first.headers["location"]
    assert again.headers["etag"] == first.headers["etag"]
    assert again.headers["idempotent-replayed"] == "true"
    assert count(client) == 1


def test_the_same_key_with_another_body_is_a_422(client: TestClient) -> None:
    assert client.post(ORDERS, json=order_body(), headers=KEY).status_code == 201

    response = client.post(ORDERS, json=order_body(description="another"), headers=KEY)

    assert "used for another request" in assert_tmf_error(response, 422, "IDEMPOTENCY_KEY_REUSED")
    assert count(client) == 1


def test_the_same_key_on_another_resource_is_a_422(client: TestClient) -> None:
    order = client.post(ORDERS, json=order_body(), headers=KEY).json()

    response = client.post(CANCELS, json={"serviceOrder": {"id": order["id"]}}, headers=KEY)

    assert_tmf_error(response, 422, "IDEMPOTENCY_KEY_REUSED")


def test_a_repeat_while_the_first_is_running_is_a_409(
    client: TestClient, store: SqlStore, clock: FakeClock
) -> None:
    body = json.dumps(order_body()).encode()
    held = idempotency.begin(
        store,
        client="test-admin",
        key=KEY["Idempotency-Key"],
        fingerprint=fingerprint("POST", ORDERS, body),
        claim="the first request",
        now=clock(),
    )
    assert held is None  # the first request holds the key and runs

    response = client.post(ORDERS, content=body, headers={**KEY, "Content-Type": "application/json"})

    assert "still running" in assert_tmf_error(response, 409, "IDEMPOTENCY_KEY_IN_USE")
    assert count(client) == 0


def test_a_key_whose_request_died_without_committing_runs_again_once_the_claim_lapses(
    client: TestClient, store: SqlStore, clock: FakeClock
) -> None:
    body = json.dumps(order_body()).encode()
    headers = {**KEY, "Content-Type": "application/json"}
    record = new_record(
        "test-admin", KEY["Idempotency-Key"], fingerprint("POST", ORDERS, body), "dead", clock()
    )
    with store.transaction(write=True) as tx:
        tx.idempotency.claim(record)  # a server died here: the claim, and nothing else, committed

    assert_tmf_error(client.post(ORDERS, content=body, headers=headers), 409, "IDEMPOTENCY_KEY_IN_USE")
    clock.advance(seconds=CLAIM_LEASE.total_seconds() + 1)
    first = client.post(ORDERS, content=body, headers=headers)

    assert first.status_code == 201
    assert client.post(ORDERS, content=body, headers=headers).content == first.content
    assert count(client) == 1


def test_a_request_that_fails_frees_its_key(client: TestClient) -> None:
    refused = client.post(ORDERS, json={"serviceOrderItem": []}, headers=KEY)
    assert refused.status_code == 400

    assert client.post(ORDERS, json={"serviceOrderItem": []}, headers=KEY).status_code == 400
    assert client.post(ORDERS, json=order_body(), headers=KEY).status_code == 201


def test_keys_are_kept_a_day_then_forgotten(client: TestClient, store: SqlStore, clock: FakeClock) -> None:
    first = client.post(ORDERS, json=order_body(), headers=KEY)
    clock.advance(seconds=RETENTION.total_seconds() - 1)
    assert client.post(ORDERS, json=order_body(), headers=KEY).content == first.content

    clock.advance(seconds=2)
    idempotency.prune(store, None, clock())  # type: ignore[arg-type]
    with store.transaction(write=False) as tx:
        assert tx.idempotency.get("test-admin", KEY["Idempotency-Key"]) is None
    assert client.post(ORDERS, json=order_body(), headers=KEY).json()["id"] != first.json()["id"]
    assert count(client) == 2


def test_keys_are_per_client(database_url: str, store: SqlStore, clock: FakeClock) -> None:
    def app_of(name: str) -> TestClient:
        principal = Principal(name, frozenset({"orders:write", "orders:read"}))
        return TestClient(
            create_app(
                Settings(database_url=database_url), store, clock=clock, authenticator=Trusted(principal)
            )
        )

    with app_of("alice") as alice, app_of("bob") as bob:
        mine = alice.post(ORDERS, json=order_body(), headers=KEY)
        theirs = bob.post(ORDERS, json=order_body(), headers=KEY)

        assert mine.status_code == theirs.status_code == 201
        assert mine.json()["id"] != theirs.json()["id"]


def test_a_cancel_task_repeat_gets_the_first_task(client: TestClient) -> None:
    order = client.post(ORDERS, json=order_body()).json()
    body = {"serviceOrder": {"id": order["id"]}}

    first = client.post(CANCELS, json=body, headers=KEY)
    again = client.post(CANCELS, json=body, headers=KEY)

    assert first.status_code == again.status_code == 201
    assert again.content == first.content
    assert len(client.get(CANCELS).json()) == 1


def test_a_hub_registration_repeat_gets_the_first_subscription(client: TestClient) -> None:
    client.app.state.settings = client.app.state.settings.model_copy(
        update={"events_callback_allow": "127.0.0.1"}
    )
    body = {"callback": "http://127.0.0.1:9/listener"}

    first = client.post(f"{BASE}/hub", json=body, headers=KEY)
    again = client.post(f"{BASE}/hub", json=body, headers=KEY)

    assert first.status_code == again.status_code == 201
    assert again.json()["id"] == first.json()["id"]
    assert len(client.get("/provtrack/v1/hub").json()) == 1


@pytest.mark.parametrize("key", ["", "x" * 256, "clé", "a b"])
def test_a_key_that_is_not_printable_ascii_up_to_255_is_a_400(client: TestClient, key: str) -> None:
    response = client.post(ORDERS, json=order_body(), headers={"Idempotency-Key": key.encode()})

    assert "Idempotency-Key" in assert_tmf_error(response, 400, "INVALID_VALUE")
    assert count(client) == 0


# --- ETag, If-Match, If-None-Match ---------------------------------------------------------------


@pytest.fixture
def order(client: TestClient) -> dict[str, Any]:
    created = client.post(ORDERS, json=order_body())
    return {
        "url": created.headers["location"].removeprefix("http://testserver"),
        "etag": created.headers["etag"],
    }


def test_every_order_answer_carries_its_etag(client: TestClient, order: dict[str, Any]) -> None:
    read = client.get(order["url"])
    patched = client.patch(order["url"], json={"description": "x"}, headers=MERGE_PATCH)

    assert read.headers["etag"] == order["etag"] == '"1"'
    assert patched.headers["etag"] == '"2"'
    assert client.get(order["url"]).headers["etag"] == '"2"'


@pytest.mark.parametrize("form", ["merge", "json"])
def test_a_patch_with_a_stale_if_match_is_412_and_changes_nothing(
    client: TestClient, order: dict[str, Any], form: str
) -> None:
    client.patch(order["url"], json={"description": "someone else"}, headers=MERGE_PATCH)
    if form == "merge":
        response = client.patch(
            order["url"], json={"description": "mine"}, headers={**MERGE_PATCH, "If-Match": order["etag"]}
        )
    else:
        patch = json.dumps([{"op": "replace", "path": "/description", "value": "mine"}])
        response = client.patch(
            order["url"], content=patch, headers={**JSON_PATCH, "If-Match": order["etag"]}
        )

    assert "ETag" in assert_tmf_error(response, 412, "PRECONDITION_FAILED")
    assert client.get(order["url"]).json()["description"] == "someone else"


def test_a_patch_with_the_current_if_match_applies(client: TestClient, order: dict[str, Any]) -> None:
    response = client.patch(
        order["url"], json={"description": "mine"}, headers={**MERGE_PATCH, "If-Match": order["etag"]}
    )

    assert response.status_code == 200
    assert client.get(order["url"]).json()["description"] == "mine"


@pytest.mark.parametrize("tag", ['"2"', 'W/"1"', '"x"'])
def test_a_delete_with_a_stale_or_weak_if_match_is_412_and_deletes_nothing(
    client: TestClient, order: dict[str, Any], tag: str
) -> None:
    assert_tmf_error(client.delete(order["url"], headers={"If-Match": tag}), 412, "PRECONDITION_FAILED")

    assert client.get(order["url"]).status_code == 200
    assert client.delete(order["url"], headers={"If-Match": f'"0", {order["etag"]}'}).status_code == 204


def test_if_match_star_matches_any_version(client: TestClient, order: dict[str, Any]) -> None:
    assert client.delete(order["url"], headers={"If-Match": "*"}).status_code == 204


def test_if_none_match_with_the_current_tag_is_304(client: TestClient, order: dict[str, Any]) -> None:
    response = client.get(order["url"], headers={"If-None-Match": order["etag"]})

    assert response.status_code == 304
    assert response.content == b""
    assert response.headers["etag"] == order["etag"]
    assert client.get(order["url"], headers={"If-None-Match": f"W/{order['etag']}"}).status_code == 304


def test_if_none_match_with_a_stale_tag_gets_the_order(client: TestClient, order: dict[str, Any]) -> None:
    client.patch(order["url"], json={"description": "x"}, headers=MERGE_PATCH)

    response = client.get(order["url"], headers={"If-None-Match": order["etag"]})

    assert response.status_code == 200
    assert response.json()["description"] == "x"


def test_a_stale_if_match_loses_to_a_change_made_meanwhile_by_the_engine(
    client: TestClient, store: SqlStore, order: dict[str, Any], clock: FakeClock
) -> None:
    from provtrack.services.ports import Context
    from provtrack.services.unit_of_work import change_order

    order_id = order["url"].rsplit("/", 1)[-1]
    ctx = Context(now="2026-11-27T09:00:01.000Z", actor="engine", new_id=lambda: "n")
    change_order(
        store,
        order_id,
        lambda _tx, o, _p: o.set_attribute("description", "engine", now=ctx.now, actor="engine"),
        ctx=ctx,
    )

    response = client.patch(
        order["url"], json={"note": [{"text": "hi"}]}, headers={**MERGE_PATCH, "If-Match": order["etag"]}
    )

    assert_tmf_error(response, 412, "PRECONDITION_FAILED")
    assert "note" not in client.get(order["url"]).json()
