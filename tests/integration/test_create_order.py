"""POST /serviceOrder: what a new order looks like. The refusals are in test_errors.py."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import FakeClock
from tests.factories import (
    business_ethernet_body,
    iptv_add_on_body,
    item,
    order_body,
    sim_port_in_body,
)
from tests.integration.tmf import ORDERS, assert_tmf_error, create_order

BODIES: dict[str, Callable[[], dict[str, Any]]] = {
    "ftth-with-iptv": order_body,
    "business-ethernet": business_ethernet_body,
    "sim-port-in": sim_port_in_body,
    "iptv-add-on": iptv_add_on_body,
}


@pytest.mark.parametrize("build", BODIES.values(), ids=BODIES.keys())
def test_a_new_order_and_each_of_its_items_are_acknowledged(
    client: TestClient, build: Callable[[], dict[str, Any]]
) -> None:
    body = build()

    order = create_order(client, body)

    assert order["state"] == "acknowledged"
    assert [i["id"] for i in order["serviceOrderItem"]] == [i["id"] for i in body["serviceOrderItem"]]
    assert {i["state"] for i in order["serviceOrderItem"]} == {"acknowledged"}


def test_nested_items_are_acknowledged_too(client: TestClient) -> None:
    ont = item("ont", spec="ont-install", appointment={"id": "appt-7781"})
    line = item("line", spec="ftth-residential", serviceOrderItem=[ont])

    order = create_order(client, order_body(line))

    nested = order["serviceOrderItem"][0]["serviceOrderItem"][0]
    assert nested["id"] == "ont"
    assert nested["state"] == "acknowledged"
    assert nested["appointment"] == {"id": "appt-7781"}


def test_the_response_has_an_absolute_href_that_the_location_header_repeats(client: TestClient) -> None:
    response = client.post(ORDERS, json=order_body())

    assert response.status_code == 201
    order = response.json()
    assert order["href"] == f"http://testserver{ORDERS}/{order['id']}"
    assert response.headers["location"] == order["href"]


def test_every_order_gets_an_id_of_its_own(client: TestClient) -> None:
    first = create_order(client, order_body())
    second = create_order(client, order_body())

    assert first["id"] != second["id"]


def test_the_order_date_is_taken_from_the_server_clock(client: TestClient, clock: FakeClock) -> None:
    clock.advance(hours=2, minutes=15, seconds=30)

    order = create_order(client, order_body())

    assert order["orderDate"] == "2026-11-27T11:15:30.000Z"
    assert "startDate" not in order
    assert "completionDate" not in order


def test_what_the_client_sent_is_kept_as_sent(client: TestClient) -> None:
    body = business_ethernet_body(
        note=[{"author": "presales", "text": "site access via loading bay"}],
        orderRelationship=[
            {"id": "PO-88121", "relationshipType": "cross-ref", "@referredType": "ProductOrder"}
        ],
        siteContactHours="08:00-17:00",  # an extension field of a subclass
    )

    order = create_order(client, body)

    for name in ("externalId", "priority", "description", "category", "relatedParty", "note"):
        assert order[name] == body[name]
    assert order["orderRelationship"] == body["orderRelationship"]
    assert order["siteContactHours"] == "08:00-17:00"
    characteristics = order["serviceOrderItem"][0]["service"]["serviceCharacteristic"]
    assert {"name": "bandwidthMbps", "value": 500} in characteristics


def test_the_order_and_its_items_get_a_default_type(client: TestClient) -> None:
    order = create_order(client, order_body())

    assert order["@type"] == "ServiceOrder"
    assert {i["@type"] for i in order["serviceOrderItem"]} == {"ServiceOrderItem"}


def test_requested_dates_are_stored_in_utc_with_milliseconds(client: TestClient) -> None:
    body = order_body(
        requestedStartDate="2026-12-01T09:30:00+01:00",
        requestedCompletionDate="2026-12-04T18:00:00Z",
    )

    order = create_order(client, body)

    assert order["requestedStartDate"] == "2026-12-01T08:30:00.000Z"
    assert order["requestedCompletionDate"] == "2026-12-04T18:00:00.000Z"


def test_a_requested_completion_before_the_requested_start_is_refused(client: TestClient) -> None:
    body = order_body(
        requestedStartDate="2026-12-04T09:00:00Z", requestedCompletionDate="2026-12-01T09:00:00Z"
    )

    message = assert_tmf_error(client.post(ORDERS, json=body), 400)

    assert "requestedCompletionDate" in message


def test_a_requested_date_that_is_not_a_date_is_refused_naming_it(client: TestClient) -> None:
    message = assert_tmf_error(client.post(ORDERS, json=order_body(requestedStartDate="next Tuesday")), 400)

    assert message.startswith("requestedStartDate")


def test_a_relationship_to_an_item_of_another_order_is_accepted(client: TestClient) -> None:
    other = {"itemId": "1", "serviceOrderId": "so-elsewhere"}
    tv = item(
        "tv",
        spec="iptv-addon",
        serviceOrderItemRelationship=[{"relationshipType": "dependency", "orderItem": other}],
    )

    order = create_order(client, order_body(tv))

    assert order["serviceOrderItem"][0]["serviceOrderItemRelationship"][0]["orderItem"] == other


def test_the_created_order_can_be_read_back_unchanged(client: TestClient) -> None:
    order = create_order(client, sim_port_in_body())

    assert client.get(f"{ORDERS}/{order['id']}").json() == order


def test_fields_selects_what_the_create_response_carries(client: TestClient) -> None:
    response = client.post(f"{ORDERS}?fields=state", json=order_body())

    assert response.status_code == 201
    order = response.json()
    assert set(order) == {"id", "href", "state"}
    assert response.headers["location"] == order["href"]
