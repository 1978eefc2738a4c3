"""Hostile input is refused at the door with a TMF630 400/415, the same on SQLite and PostgreSQL, and
leaves nothing behind: every case here once answered 500, or was accepted and then stuck."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
import structlog
from fastapi.testclient import TestClient

from tests.conftest import AS_ADMIN
from tests.factories import item, order_body
from tests.integration.tmf import (
    BASE,
    CANCELS,
    JSON_PATCH,
    MERGE_PATCH,
    ORDERS,
    assert_tmf_error,
    create_order,
)

JSON_HEADERS = {"Content-Type": "application/json"}


def raw_post(client: TestClient, path: str, raw: bytes, content_type: str = "application/json") -> Any:
    return client.post(path, content=raw, headers={"Content-Type": content_type})


def nothing_stored(client: TestClient) -> None:
    assert client.get(ORDERS).headers["x-total-count"] == "0"


def json_queries_answer(client: TestClient) -> None:
    """Filters and sorts on JSON attributes (not columns) still work: the ones a stored NUL broke."""
    assert client.get(f"{ORDERS}?description=x").status_code == 200
    assert client.get(f"{ORDERS}?sort=description").status_code == 200
    assert client.get(f"{ORDERS}?relatedParty.name=x").status_code == 200


# --- NUL characters ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        order_body(description="FTTH\u0000"),
        order_body(item("1", characteristics={"address": "12 rue\u0000"})),
        order_body(note=[{"text": "a", "author\u0000": "x"}]),
        order_body(relatedParty=[{"id": "c\u0000", "role": "customer"}]),
    ],
    ids=["description", "characteristic", "attribute-name", "related-party"],
)
def test_a_nul_character_anywhere_in_an_order_is_refused(client: TestClient, body: dict[str, Any]) -> None:
    message = assert_tmf_error(client.post(ORDERS, json=body), 400, "INVALID_VALUE")

    assert "NUL" in message
    nothing_stored(client)
    json_queries_answer(client)


def test_a_nul_character_in_a_patch_is_refused_and_changes_nothing(client: TestClient) -> None:
    order = create_order(client, order_body())
    url = f"{ORDERS}/{order['id']}"

    assert_tmf_error(client.patch(url, json={"description": "a\u0000"}, headers=MERGE_PATCH), 400)
    patch = [{"op": "replace", "path": "/description", "value": "a\u0000"}]
    assert_tmf_error(client.patch(url, content=json.dumps(patch), headers=JSON_PATCH), 400)

    assert client.get(url).json()["description"] == order["description"]
    json_queries_answer(client)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", f"{ORDERS}/%00"),
        ("PATCH", f"{ORDERS}/%00"),
        ("DELETE", f"{ORDERS}/%00"),
        ("GET", f"{CANCELS}/%00"),
        ("GET", "/provtrack/v1/serviceOrder/%00/plan"),
        ("GET", "/provtrack/v1/serviceOrder/%00/timeline"),
        ("GET", "/provtrack/v1/activity/%00"),
        ("POST", "/provtrack/v1/activity/%00/retry"),
        ("GET", f"{BASE}/hub/%00"),
        ("DELETE", f"{BASE}/hub/a%00b"),
    ],
)
def test_a_nul_character_in_an_id_is_a_400(client: TestClient, method: str, path: str) -> None:
    message = assert_tmf_error(client.request(method, path, headers=MERGE_PATCH), 400, "INVALID_VALUE")

    assert "NUL" in message


@pytest.mark.parametrize(
    "query", ["externalId=a%00b", "sort=description%00", "fields=state%00", "state=acknowledged,%00"]
)
def test_a_nul_character_in_a_query_is_a_400(client: TestClient, query: str) -> None:
    assert "NUL" in assert_tmf_error(client.get(f"{ORDERS}?{query}"), 400, "INVALID_QUERY")


# --- depth, dates, numbers -----------------------------------------------------------------------


def nested(levels: int) -> bytes:
    """An order whose unknown attribute `x` holds objects nested `levels` deep (built as text: the
    JSON encoders themselves refuse deep documents)."""
    body = orjson.dumps(order_body(x=0))
    return body.replace(b'"x":0', b'"x":' + b'{"a":' * levels + b"0" + b"}" * levels)


def test_an_order_nested_a_thousand_deep_is_refused_without_a_traceback(client: TestClient) -> None:
    with structlog.testing.capture_logs() as logs:
        message = assert_tmf_error(raw_post(client, ORDERS, nested(1000)), 400, "LIMIT_EXCEEDED")

    assert "nested deeper than 32 levels" in message
    assert logs == []
    nothing_stored(client)


def test_the_depth_limit_counts_the_whole_document(client: TestClient) -> None:
    # the order is one level, and `x` holds 31 more: 32 in all, the limit
    assert raw_post(client, ORDERS, nested(31)).status_code == 201
    assert_tmf_error(raw_post(client, ORDERS, nested(32)), 400, "LIMIT_EXCEEDED")


@pytest.mark.parametrize("value", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59.999Z", "1969-12-31"])
@pytest.mark.parametrize("field", ["requestedStartDate", "requestedCompletionDate"])
def test_a_date_out_of_range_is_refused_on_create_and_patch(
    client: TestClient, field: str, value: str
) -> None:
    message = assert_tmf_error(client.post(ORDERS, json=order_body(**{field: value})), 400, "INVALID_VALUE")
    assert message.startswith(f"{field}: ")
    assert "out of range" in message
    nothing_stored(client)

    order = create_order(client, order_body())
    response = client.patch(f"{ORDERS}/{order['id']}", json={field: value}, headers=MERGE_PATCH)
    assert "out of range" in assert_tmf_error(response, 400, "INVALID_VALUE")
    assert field not in client.get(f"{ORDERS}/{order['id']}").json()


def test_a_cancellation_date_out_of_range_is_refused(client: TestClient) -> None:
    order = create_order(client, order_body())
    body = {"serviceOrder": {"id": order["id"]}, "requestedCancellationDate": "0001-01-01T00:00:00+14:00"}

    assert "out of range" in assert_tmf_error(client.post(CANCELS, json=body), 400, "INVALID_VALUE")
    assert client.get(f"{ORDERS}/{order['id']}").json()["state"] == "acknowledged"


@pytest.mark.parametrize("priority", ["1" * 5000, "5", "-1", "high", 7])
def test_a_priority_outside_0_to_4_is_refused(client: TestClient, priority: Any) -> None:
    assert_tmf_error(client.post(ORDERS, json=order_body(priority=priority)), 400, "INVALID_VALUE")
    nothing_stored(client)
    assert client.get(f"{ORDERS}?priority.gt=1").status_code == 200


@pytest.mark.parametrize(
    ("patch", "name"),
    [
        ([{"op": "replace", "path": "/priority", "value": 7}], "priority"),
        ([{"op": "replace", "path": "/priority", "value": "7"}], "priority"),
        ([{"op": "replace", "path": "/description", "value": 7}], "description"),
        ([{"op": "add", "path": "/note", "value": {"text": "not a list"}}], "note"),
    ],
)
def test_a_json_patch_is_checked_as_the_same_merge_patch_is(
    client: TestClient, patch: list[dict[str, Any]], name: str
) -> None:
    order = create_order(client, order_body())
    url = f"{ORDERS}/{order['id']}"
    as_merge = {patch[0]["path"][1:]: patch[0]["value"]}

    merge_message = assert_tmf_error(client.patch(url, json=as_merge, headers=MERGE_PATCH), 400)
    json_message = assert_tmf_error(client.patch(url, content=json.dumps(patch), headers=JSON_PATCH), 400)

    assert json_message == merge_message
    assert json_message.startswith(name)
    assert client.get(url).json().get(name) == order.get(name)


# --- queries -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("orderDate.gt=notadate", "is not an ISO 8601 date-time"),
        ("requestedCompletionDate.lte=tomorrow", "is not an ISO 8601 date-time"),
        ("orderDate=2026", "is not an ISO 8601 date-time"),
        ("orderDate.gt=0001-01-01T00:00:00%2B14:00", "out of range"),
        ("sort=" + ",".join(f"a{i}" for i in range(9)), "at most 8 attributes"),
        ("&".join(f"a{i}=1" for i in range(21)), "at most 20 attribute filters"),
        ("state=" + ",".join(["acknowledged"] * 101), "at most 100 alternatives"),
        ("x.gt=" + "9" * 5000, "a number has at most 30 digits"),
        ("offset=" + "9" * 40, "must be at most"),
        ("priority.gt=%D9%A1", "is not"),
    ],
)
def test_a_query_beyond_reason_is_a_400(client: TestClient, query: str, says: str) -> None:
    create_order(client, order_body())
    response = client.get(f"{ORDERS}?{query}")

    if says == "is not":  # Arabic-Indic digits are text, not a number a database would read
        assert response.status_code == 200
        return
    assert says in assert_tmf_error(response, 400, "INVALID_QUERY")


def test_5000_sort_terms_are_refused(client: TestClient) -> None:
    response = client.get(f"{ORDERS}?sort=" + ",".join("a" for _ in range(5000)))

    assert "at most 8 attributes" in assert_tmf_error(response, 400, "INVALID_QUERY")


def test_a_query_string_longer_than_16_kib_is_refused(client: TestClient) -> None:
    response = client.get(f"{ORDERS}?description=" + "x" * 17_000)

    assert "longer than 16384 bytes" in assert_tmf_error(response, 400, "INVALID_QUERY")


# --- bodies ------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [ORDERS, CANCELS, f"{BASE}/hub", "/provtrack/v1/deadLetter/replay"])
@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", ""])
def test_a_body_that_is_not_json_is_a_415(client: TestClient, path: str, content_type: str) -> None:
    response = raw_post(client, path, json.dumps(order_body()).encode(), content_type)

    assert_tmf_error(response, 415, "UNSUPPORTED_MEDIA_TYPE")
    nothing_stored(client)


def test_a_replay_naming_a_subscription_by_a_number_is_a_400(client: TestClient) -> None:
    response = client.post("/provtrack/v1/deadLetter/replay", json={"subscription": 5})

    assert "subscription" in assert_tmf_error(response, 400, "INVALID_VALUE")


@pytest.mark.parametrize("ids", [[10**30], [True], [-1], ["1"]])
def test_a_replay_of_ids_that_are_not_dead_letter_ids_is_a_400(client: TestClient, ids: list[Any]) -> None:
    assert_tmf_error(client.post("/provtrack/v1/deadLetter/replay", json={"ids": ids}), 400, "INVALID_VALUE")


def test_a_failed_patch_says_which_operation_without_showing_the_order(client: TestClient) -> None:
    order = create_order(client, order_body())
    patch = [
        {"op": "replace", "path": "/description", "value": "ok"},
        {"op": "remove", "path": "/nothere/x"},
    ]

    message = assert_tmf_error(
        client.patch(f"{ORDERS}/{order['id']}", content=json.dumps(patch), headers=JSON_PATCH), 400
    )

    assert message == "operation 1 (remove /nothere/x): that location does not exist in the order"
    assert "{" not in message


def test_a_json_patch_that_copies_the_order_into_itself_is_stopped(client: TestClient) -> None:
    order = create_order(client, order_body(x={"n": list(range(100))}))
    bomb = [{"op": "copy", "from": "/x", "path": f"/x/c{i}"} for i in range(40)]

    response = client.patch(f"{ORDERS}/{order['id']}", content=json.dumps(bomb), headers=JSON_PATCH)

    assert "larger than 100000 values" in assert_tmf_error(response, 400, "LIMIT_EXCEEDED")


def test_a_json_patch_of_more_than_100_operations_is_refused(client: TestClient) -> None:
    order = create_order(client, order_body())
    patch = [{"op": "replace", "path": "/description", "value": str(i)} for i in range(101)]

    response = client.patch(f"{ORDERS}/{order['id']}", content=json.dumps(patch), headers=JSON_PATCH)

    assert "at most 100 operations" in assert_tmf_error(response, 400, "INVALID_PATCH")


# --- limits ------------------------------------------------------------------------------------


def items(count: int, prefix: str = "") -> list[dict[str, Any]]:
    return [item(f"{prefix}{i}") for i in range(count)]


@pytest.mark.parametrize(
    ("accepted", "refused", "says"),
    [
        (order_body(*items(100)), order_body(*items(101)), "more than 100 items"),
        (
            order_body(item("parent", serviceOrderItem=items(99, "child"))),
            order_body(item("parent", serviceOrderItem=items(100, "child"))),
            "more than 100 items (nested items included)",
        ),
        (
            order_body(item("1", characteristics={f"c{i}": i for i in range(200)})),
            order_body(item("1", characteristics={f"c{i}": i for i in range(201)})),
            "more than 200 characteristics",
        ),
        (order_body(description="x" * 16_384), order_body(description="x" * 16_385), "longer than 16384"),
        (order_body(**{"k" * 256: 1}), order_body(**{"k" * 257: 1}), "longer than 256"),
        (order_body(x=2**63 - 1), order_body(x=2**63), "64 bits"),
    ],
    ids=["items", "nested-items", "characteristics", "string", "attribute-name", "integer"],
)
def test_a_limit_accepts_up_to_it_and_refuses_beyond(
    client: TestClient, accepted: dict[str, Any], refused: dict[str, Any], says: str
) -> None:
    assert client.post(ORDERS, json=accepted).status_code == 201

    message = assert_tmf_error(client.post(ORDERS, json=refused), 400, "LIMIT_EXCEEDED")

    assert says in message
    assert client.get(ORDERS).headers["x-total-count"] == "1"


def test_a_characteristic_added_by_patch_counts_against_the_limit(client: TestClient) -> None:
    order = create_order(client, order_body(item("1", characteristics={f"c{i}": i for i in range(200)})))
    items_after = order["serviceOrderItem"]
    items_after[0]["service"]["serviceCharacteristic"].append({"name": "one-more", "value": 1})

    response = client.patch(
        f"{ORDERS}/{order['id']}", json={"serviceOrderItem": items_after}, headers=MERGE_PATCH
    )

    assert "more than 200 characteristics" in assert_tmf_error(response, 400, "LIMIT_EXCEEDED")


def test_the_limits_are_settings(database_url: str, store: Any) -> None:
    from provtrack.api.app import create_app
    from provtrack.settings import Settings

    settings = Settings(database_url=database_url, max_items_per_order=2, max_string_length=20)
    with TestClient(create_app(settings, store, authenticator=AS_ADMIN)) as small:
        three = order_body(*items(3), description="short")
        assert "more than 2 items" in assert_tmf_error(small.post(ORDERS, json=three), 400)
        assert "longer than 20" in assert_tmf_error(small.post(ORDERS, json=order_body(x="y" * 21)), 400)


# --- failures of the server itself -----------------------------------------------------------------


def test_a_client_that_disconnects_mid_body_is_logged_in_one_line(client: TestClient) -> None:
    import anyio

    app = client.app
    sent: list[dict[str, Any]] = []
    messages = iter([{"type": "http.request", "body": b'{"serviceOrderItem"', "more_body": True}])

    async def receive() -> dict[str, Any]:
        return next(messages, {"type": "http.disconnect"})

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": ORDERS,
        "raw_path": ORDERS.encode(),
        "query_string": b"",
        "headers": [(b"content-type", b"application/json")],
        "http_version": "1.1",
        "scheme": "http",
        "server": ("testserver", 80),
        "client": ("127.0.0.1", 1234),
        "root_path": "",
        "app": app,
    }
    with structlog.testing.capture_logs() as logs:
        anyio.run(app, scope, receive, send)  # type: ignore[arg-type]

    assert [entry["event"] for entry in logs] == ["client disconnected before its body was read"]
    assert "traceback" not in logs[0]
    nothing_stored(client)


def test_an_unexpected_error_is_a_500_logged_once_with_a_short_traceback(client: TestClient) -> None:
    from fastapi import FastAPI

    app = client.app
    assert isinstance(app, FastAPI)

    def recurse(depth: int) -> int:
        return recurse(depth + 1) + 1

    @app.get("/recursion")
    def recursion() -> int:
        return recurse(0)

    with structlog.testing.capture_logs() as logs:
        response = client.get("/recursion")

    assert_tmf_error(response, 500, "INTERNAL_ERROR")
    assert [entry["event"] for entry in logs] == ["unhandled error"]
    assert logs[0]["error"].startswith("RecursionError")
    assert logs[0]["traceback"].count("\n") < 100
