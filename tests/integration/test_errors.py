"""Every error is a TMF630 body {code, reason, message, status}; a refused create names the path at fault."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.factories import item, order_body
from tests.integration.tmf import BASE, CANCELS, MERGE_PATCH, ORDERS, assert_tmf_error, create_order

ONE_MIB = 1024 * 1024
JSON_HEADERS = {"Content-Type": "application/json"}


def refused(client: TestClient, body: Any) -> str:
    """POST an order that must be refused with 400; return the message after checking nothing was stored."""
    message = assert_tmf_error(client.post(ORDERS, json=body), 400)
    assert client.get(ORDERS).headers["x-total-count"] == "0"
    return message


def exactly(size: int) -> bytes:
    """An order body of exactly `size` bytes: notes of 5 000 characters (strings have a limit of
    their own), the description taking up the slack."""
    notes = [{"text": "x" * 5_000} for _ in range(size // 5_014 - 1)]
    empty = json.dumps(order_body(description="", note=notes)).encode()
    return json.dumps(order_body(description="x" * (size - len(empty)), note=notes)).encode()


# --- not found, wrong method, unreadable body, too large ------------------------------------------


@pytest.mark.parametrize("path", [f"{ORDERS}/no-such-order", f"{CANCELS}/no-such-task"])
def test_an_unknown_id_is_404(client: TestClient, path: str) -> None:
    assert "no-such-" in assert_tmf_error(client.get(path), 404, "NOT_FOUND")


@pytest.mark.parametrize(
    "path", [f"{BASE}/productOrder", "/tmf-api/serviceOrdering/v3/serviceOrder", "/nothing"]
)
def test_an_unknown_route_is_404(client: TestClient, path: str) -> None:
    message = assert_tmf_error(client.get(path), 404, "NOT_FOUND")

    assert "/tmf-api/serviceOrdering/v4" in message


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PUT", f"{ORDERS}/some-order"),
        ("POST", f"{ORDERS}/some-order"),
        ("DELETE", ORDERS),
        ("PATCH", ORDERS),
        ("PUT", CANCELS),
    ],
)
def test_a_method_the_resource_does_not_have_is_405(client: TestClient, method: str, path: str) -> None:
    response = client.request(method, path, json={})

    assert_tmf_error(response, 405, "METHOD_NOT_ALLOWED")
    assert response.headers["allow"]


@pytest.mark.parametrize(
    ("method", "path", "headers"),
    [
        ("POST", ORDERS, JSON_HEADERS),
        ("PATCH", f"{ORDERS}/{{id}}", MERGE_PATCH),
        ("POST", CANCELS, JSON_HEADERS),
    ],
)
def test_a_body_that_is_not_json_is_400(
    client: TestClient, method: str, path: str, headers: dict[str, str]
) -> None:
    order = create_order(client, order_body())

    response = client.request(
        method, path.format(id=order["id"]), content=b'{"serviceOrderItem": [', headers=headers
    )

    assert "not valid JSON" in assert_tmf_error(response, 400, "MALFORMED_BODY")
    assert client.get(f"{ORDERS}/{order['id']}").json() == order


def test_a_create_without_a_body_is_400(client: TestClient) -> None:
    assert "no body" in assert_tmf_error(client.post(ORDERS, headers=JSON_HEADERS), 400, "MALFORMED_BODY")


def test_a_body_over_1_mib_announced_by_its_length_is_413(client: TestClient) -> None:
    response = client.post(ORDERS, content=exactly(ONE_MIB + 1), headers=JSON_HEADERS)

    assert str(ONE_MIB) in assert_tmf_error(response, 413, "BODY_TOO_LARGE")
    assert client.get(ORDERS).headers["x-total-count"] == "0"


def test_a_body_over_1_mib_sent_in_chunks_without_a_length_is_413(client: TestClient) -> None:
    body = exactly(ONE_MIB + 1)

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body), 64 * 1024):
            yield body[start : start + 64 * 1024]

    response = client.post(ORDERS, content=chunks(), headers=JSON_HEADERS)

    assert_tmf_error(response, 413, "BODY_TOO_LARGE")
    assert client.get(ORDERS).headers["x-total-count"] == "0"


def test_a_patch_over_1_mib_is_413(client: TestClient) -> None:
    order = create_order(client, order_body())
    patch = json.dumps({"description": "x" * ONE_MIB}).encode()

    assert_tmf_error(client.patch(f"{ORDERS}/{order['id']}", content=patch, headers=MERGE_PATCH), 413)


def test_a_body_of_exactly_1_mib_is_accepted(client: TestClient) -> None:
    assert client.post(ORDERS, content=exactly(ONE_MIB), headers=JSON_HEADERS).status_code == 201


# --- the TMF641 rules of a new order --------------------------------------------------------------


def test_an_order_without_items_is_refused(client: TestClient) -> None:
    body = order_body()
    del body["serviceOrderItem"]

    assert refused(client, body).startswith("serviceOrderItem:")


@pytest.mark.parametrize("items", [[], None, "1,2"])
def test_an_order_whose_items_are_not_a_non_empty_list_is_refused(client: TestClient, items: Any) -> None:
    assert refused(client, order_body(serviceOrderItem=items)).startswith("serviceOrderItem:")


@pytest.mark.parametrize("body", [[], "an order", 42])
def test_a_body_that_is_not_an_object_is_refused(client: TestClient, body: Any) -> None:
    assert_tmf_error(client.post(ORDERS, json=body), 400)


def test_an_item_without_an_id_is_refused_naming_it(client: TestClient) -> None:
    nameless = item("x", spec="iptv-addon")
    del nameless["id"]

    assert refused(client, order_body(item("1"), nameless)).startswith("serviceOrderItem[1].id:")


def test_an_item_with_an_empty_id_is_refused_naming_it(client: TestClient) -> None:
    assert refused(client, order_body(item("1"), item(""))).startswith("serviceOrderItem[1].id:")


def test_two_items_with_the_same_id_are_refused(client: TestClient) -> None:
    message = refused(client, order_body(item("1"), item("1", spec="iptv-addon")))

    assert message.startswith("serviceOrderItem[1].id:")
    assert "serviceOrderItem[0]" in message


def test_a_nested_item_with_the_id_of_another_item_is_refused(client: TestClient) -> None:
    line = item("line", serviceOrderItem=[item("ont", spec="ont-install")])
    tv = item("tv", spec="iptv-addon", serviceOrderItem=[item("line", spec="stb-shipment")])

    message = refused(client, order_body(line, tv))

    assert message.startswith("serviceOrderItem[1].serviceOrderItem[0].id:")
    assert "'line'" in message


def test_an_item_without_an_action_is_refused_naming_it(client: TestClient) -> None:
    actionless = item("2", spec="iptv-addon")
    del actionless["action"]

    assert refused(client, order_body(item("1"), actionless)).startswith("serviceOrderItem[1].action:")


@pytest.mark.parametrize("action", ["create", "Add", "", 1])
def test_an_item_with_an_unknown_action_is_refused_naming_the_actions(
    client: TestClient, action: Any
) -> None:
    message = refused(client, order_body(item("1", action=action)))

    assert message.startswith("serviceOrderItem[0].action:")
    assert "noChange" in message


def test_an_item_without_a_service_is_refused_naming_it(client: TestClient) -> None:
    serviceless = item("1")
    del serviceless["service"]

    assert refused(client, order_body(serviceless)).startswith("serviceOrderItem[0].service:")


def test_a_nested_item_without_a_service_is_refused_naming_it(client: TestClient) -> None:
    ont = item("ont", spec="ont-install")
    del ont["service"]

    message = refused(client, order_body(item("line", serviceOrderItem=[ont])))

    assert message.startswith("serviceOrderItem[0].serviceOrderItem[0].service:")


@pytest.mark.parametrize("service", [{}, {"serviceSpecification": {}}, {"serviceSpecification": {"id": ""}}])
def test_an_add_without_a_service_specification_id_is_refused_naming_the_path(
    client: TestClient, service: dict[str, Any]
) -> None:
    message = refused(client, order_body(item("1"), item("2", service=service)))

    assert message.startswith("serviceOrderItem[1].service.serviceSpecification.id:")
    assert "add" in message


@pytest.mark.parametrize("action", ["modify", "delete"])
def test_a_modify_or_delete_without_a_service_id_is_refused_naming_the_path(
    client: TestClient, action: str
) -> None:
    change = item("bb", action=action, service={"serviceSpecification": {"id": "ftth-residential"}})

    message = refused(client, order_body(item("tv", spec="iptv-addon"), change))

    assert message.startswith("serviceOrderItem[1].service.id:")
    assert action in message


def test_a_relationship_to_an_item_that_is_not_in_the_order_is_refused(client: TestClient) -> None:
    message = refused(client, order_body(item("1"), item("2", spec="iptv-addon", depends_on=("9",))))

    assert message.startswith("serviceOrderItem[1].serviceOrderItemRelationship[0].orderItem.itemId:")
    assert "'9'" in message


def test_a_relationship_of_an_item_to_itself_is_refused(client: TestClient) -> None:
    message = refused(client, order_body(item("1", depends_on=("1",))))

    assert message.startswith("serviceOrderItem[0].serviceOrderItemRelationship[0].orderItem.itemId:")


def test_relationships_that_form_a_cycle_are_refused_naming_it(client: TestClient) -> None:
    body = order_body(
        item("port", spec="olt-port", depends_on=("activate",)),
        item("ont", spec="ont-install", depends_on=("port",)),
        item("activate", spec="ftth-activation", depends_on=("ont",)),
    )

    message = refused(client, body)

    assert ".serviceOrderItemRelationship:" in message
    assert "cycle" in message
    assert all(name in message for name in ("port", "ont", "activate"))


def test_a_cycle_through_nested_items_is_refused(client: TestClient) -> None:
    ont = item("ont", spec="ont-install", depends_on=("line",))
    line = item("line", depends_on=("ont",), serviceOrderItem=[ont])

    assert "cycle" in refused(client, order_body(line))


def test_a_relationship_without_its_target_is_refused_naming_it(client: TestClient) -> None:
    tv = item("tv", spec="iptv-addon", serviceOrderItemRelationship=[{"relationshipType": "dependency"}])

    message = refused(client, order_body(item("1"), tv))

    assert message.startswith("serviceOrderItem[1].serviceOrderItemRelationship[0].orderItem")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("id", "so-chosen-by-client"),
        ("href", "http://bss.example/serviceOrder/1"),
        ("orderDate", "2026-11-27T09:00:00Z"),
        ("state", "inProgress"),
        ("startDate", "2026-11-27T09:00:00Z"),
        ("completionDate", "2026-12-01T09:00:00Z"),
        ("expectedCompletionDate", "2026-12-01T09:00:00Z"),
        ("jeopardyAlert", [{"id": "j1", "jeopardyType": "Critical"}]),
        ("milestone", [{"id": "m1", "name": "ONT installed"}]),
        ("errorMessage", [{"code": "E1", "reason": "no capacity"}]),
    ],
)
def test_a_field_the_server_owns_is_refused_naming_it(client: TestClient, name: str, value: Any) -> None:
    response = client.post(ORDERS, json=order_body(**{name: value}))

    message = assert_tmf_error(response, 400, "SERVER_OWNED_FIELD")
    assert message.startswith(f"{name}:")
    assert "set by the server" in message


@pytest.mark.parametrize(("name", "value"), [("state", "completed"), ("errorMessage", [{"code": "E1"}])])
def test_an_item_field_the_server_owns_is_refused_naming_its_path(
    client: TestClient, name: str, value: Any
) -> None:
    response = client.post(ORDERS, json=order_body(item("1"), item("2", **{name: value})))

    assert assert_tmf_error(response, 400, "SERVER_OWNED_FIELD").startswith(f"serviceOrderItem[1].{name}:")


def test_a_wrongly_typed_attribute_is_refused_naming_its_path(client: TestClient) -> None:
    bad = item(
        "2",
        spec="iptv-addon",
        service={"serviceSpecification": {"id": "iptv-addon"}, "serviceCharacteristic": [{"value": "x"}]},
    )

    message = refused(client, order_body(item("1"), bad))

    assert message.startswith("serviceOrderItem[1].service.serviceCharacteristic[0].name:")
