"""DELETE /serviceOrder/{id}: administration only, the order is gone afterwards."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.factories import business_ethernet_body, order_body
from tests.integration.tmf import CANCELS, ORDERS, assert_tmf_error, create_order


def test_deleting_an_order_answers_204_without_a_body(client: TestClient) -> None:
    order = create_order(client, order_body())

    response = client.delete(f"{ORDERS}/{order['id']}")

    assert response.status_code == 204
    assert response.content == b""


def test_a_deleted_order_can_no_longer_be_read(client: TestClient) -> None:
    order = create_order(client, order_body())

    client.delete(f"{ORDERS}/{order['id']}")

    assert_tmf_error(client.get(f"{ORDERS}/{order['id']}"), 404, "NOT_FOUND")


def test_a_deleted_order_leaves_the_list_and_the_others_stay(client: TestClient) -> None:
    gone = create_order(client, order_body())
    kept = create_order(client, business_ethernet_body())

    client.delete(f"{ORDERS}/{gone['id']}")

    response = client.get(ORDERS)
    assert [o["id"] for o in response.json()] == [kept["id"]]
    assert response.headers["x-total-count"] == "1"


def test_an_order_in_progress_can_be_deleted_too(client: TestClient) -> None:
    order = create_order(client, order_body())
    started = client.patch(
        f"{ORDERS}/{order['id']}",
        json={"state": "inProgress"},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert started.status_code == 200

    assert client.delete(f"{ORDERS}/{order['id']}").status_code == 204


def test_an_order_that_was_cancelled_can_be_deleted(client: TestClient) -> None:
    order = create_order(client, order_body())
    assert client.post(CANCELS, json={"serviceOrder": {"id": order["id"]}}).status_code == 201

    assert client.delete(f"{ORDERS}/{order['id']}").status_code == 204
    assert_tmf_error(client.get(f"{ORDERS}/{order['id']}"), 404)


def test_deleting_an_unknown_order_is_404(client: TestClient) -> None:
    message = assert_tmf_error(client.delete(f"{ORDERS}/no-such-order"), 404, "NOT_FOUND")

    assert "no-such-order" in message


def test_deleting_an_order_twice_is_404_the_second_time(client: TestClient) -> None:
    order = create_order(client, order_body())

    assert client.delete(f"{ORDERS}/{order['id']}").status_code == 204
    assert_tmf_error(client.delete(f"{ORDERS}/{order['id']}"), 404)
