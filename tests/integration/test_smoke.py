from __future__ import annotations

from fastapi.testclient import TestClient

from tests.factories import order_body

ORDERS = "/tmf-api/serviceOrdering/v4/serviceOrder"


def test_a_created_order_is_acknowledged_and_can_be_read_back(client: TestClient) -> None:
    created = client.post(ORDERS, json=order_body())
    assert created.status_code == 201, created.text
    order = created.json()
    assert order["state"] == "acknowledged"
    assert {i["state"] for i in order["serviceOrderItem"]} == {"acknowledged"}
    assert created.headers["location"] == order["href"] == f"http://testserver{ORDERS}/{order['id']}"
    assert order["orderDate"] == "2026-11-27T09:00:00.000Z"

    read = client.get(f"{ORDERS}/{order['id']}")
    assert read.status_code == 200
    assert read.json() == order
