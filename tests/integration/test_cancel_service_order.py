"""POST /cancelServiceOrder and GET /cancelServiceOrder[/{id}] through the API alone (no engine: orders
without a plan); cancellation under way is tests/integration/test_cancellation_in_flight.py."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from provtrack.adapters.store.repository import SqlStore
from tests.conftest import FakeClock
from tests.factories import business_ethernet_body, item, order_body, sim_port_in_body
from tests.integration.tmf import CANCELS, MERGE_PATCH, ORDERS, assert_tmf_error, create_order


def cancel(client: TestClient, order: dict[str, Any], **fields: Any) -> dict[str, Any]:
    response = client.post(CANCELS, json={"serviceOrder": {"id": order["id"]}, **fields})
    assert response.status_code == 201, response.text
    task: dict[str, Any] = response.json()
    return task


def move(client: TestClient, order: dict[str, Any], *states: str) -> None:
    for state in states:
        response = client.patch(f"{ORDERS}/{order['id']}", json={"state": state}, headers=MERGE_PATCH)
        assert response.status_code == 200, response.text


def read(client: TestClient, order: dict[str, Any]) -> dict[str, Any]:
    current: dict[str, Any] = client.get(f"{ORDERS}/{order['id']}").json()
    return current


# --- an order that has not started ----------------------------------------------------------------


def test_an_acknowledged_order_is_cancelled_at_once_and_the_task_is_done(
    client: TestClient, clock: FakeClock
) -> None:
    order = create_order(client, order_body())
    clock.advance(hours=5)

    task = cancel(client, order, cancellationReason="customer moved house")

    assert task["state"] == "done"
    assert task["effectiveCancellationDate"] == "2026-11-27T14:00:00.000Z"
    assert task["serviceOrder"]["id"] == order["id"]
    assert task["cancellationReason"] == "customer moved house"
    assert "errorMessage" not in task


def test_the_cancelled_order_carries_the_reason_and_date_and_every_item_is_cancelled(
    client: TestClient, clock: FakeClock
) -> None:
    ont = item("ont", spec="ont-install")
    order = create_order(
        client, order_body(item("line", serviceOrderItem=[ont]), item("tv", spec="iptv-addon"))
    )
    clock.advance(days=1)

    cancel(client, order, cancellationReason="customer moved house")

    cancelled = read(client, order)
    assert cancelled["state"] == "cancelled"
    assert cancelled["cancellationReason"] == "customer moved house"
    assert cancelled["cancellationDate"] == "2026-11-28T09:00:00.000Z"
    line, tv = cancelled["serviceOrderItem"]
    assert (line["state"], line["serviceOrderItem"][0]["state"], tv["state"]) == ("cancelled",) * 3


def test_the_task_answers_201_with_an_absolute_href_and_a_location(client: TestClient) -> None:
    order = create_order(client, order_body())

    response = client.post(CANCELS, json={"serviceOrder": {"id": order["id"]}})

    assert response.status_code == 201
    task = response.json()
    assert task["href"] == f"http://testserver{CANCELS}/{task['id']}"
    assert response.headers["location"] == task["href"]
    assert task["@type"] == "CancelServiceOrder"


def test_the_requested_cancellation_date_is_kept_in_utc(client: TestClient) -> None:
    order = create_order(client, order_body())

    task = cancel(client, order, requestedCancellationDate="2026-11-28T10:00:00+01:00")

    assert task["requestedCancellationDate"] == "2026-11-28T09:00:00.000Z"


# --- orders that cannot be cancelled now ----------------------------------------------------------


@pytest.mark.parametrize("path", [("inProgress",), ("inProgress", "held"), ("inProgress", "pending")])
def test_an_order_in_flight_with_nothing_planned_is_cancelled_through_the_cancellation_states(
    client: TestClient, store: SqlStore, path: tuple[str, ...]
) -> None:
    order = create_order(client, business_ethernet_body())
    move(client, order, *path)

    task = cancel(client, order, cancellationReason="project postponed")

    assert task["state"] == "done"
    cancelled = read(client, order)
    assert (cancelled["state"], cancelled["cancellationReason"]) == ("cancelled", "project postponed")
    with store.transaction(write=False) as tx:
        trail = tx.audit_trail(order["id"])
    moves = [c.new for c in trail if (c.subject, c.attribute) == ("serviceOrder", "state")]
    assert moves[-3:] == ["assessingCancellation", "pendingCancellation", "cancelled"]


@pytest.mark.parametrize("path", [("inProgress", "completed"), ("rejected",), ("cancelled",)])
def test_cancellation_is_refused_for_a_finished_order(client: TestClient, path: tuple[str, ...]) -> None:
    order = create_order(client, sim_port_in_body())
    move(client, order, *path)
    before = read(client, order)

    task = cancel(client, order)

    assert task["state"] == "terminatedWithError"
    assert task["errorMessage"]["code"] == "ORDER_FINISHED"
    assert path[-1] in task["errorMessage"]["message"]
    assert read(client, order) == before


def test_cancelling_twice_is_refused_the_second_time(client: TestClient) -> None:
    order = create_order(client, order_body())
    cancel(client, order)

    second = cancel(client, order)

    assert second["state"] == "terminatedWithError"
    assert "nothing left to cancel" in second["errorMessage"]["message"]


def test_cancelling_an_unknown_order_is_404_and_records_no_task(client: TestClient) -> None:
    response = client.post(CANCELS, json={"serviceOrder": {"id": "no-such-order"}})

    assert "no-such-order" in assert_tmf_error(response, 404, "NOT_FOUND")
    assert client.get(CANCELS).json() == []


def test_a_task_without_the_order_to_cancel_is_refused(client: TestClient) -> None:
    assert_tmf_error(client.post(CANCELS, json={"cancellationReason": "x"}), 400)
    message = assert_tmf_error(client.post(CANCELS, json={"serviceOrder": {"href": "x"}}), 400)
    assert message.startswith("serviceOrder.id")


@pytest.mark.parametrize("name", ["id", "href", "state", "effectiveCancellationDate"])
def test_a_task_field_the_server_owns_is_refused_naming_it(client: TestClient, name: str) -> None:
    order = create_order(client, order_body())

    response = client.post(CANCELS, json={"serviceOrder": {"id": order["id"]}, name: "2026-11-27T09:00:00Z"})

    assert assert_tmf_error(response, 400, "SERVER_OWNED_FIELD").startswith(name)
    assert read(client, order)["state"] == "acknowledged"


# --- reading tasks --------------------------------------------------------------------------------


def test_a_task_is_read_back_by_id(client: TestClient) -> None:
    task = cancel(client, create_order(client, order_body()), cancellationReason="duplicate order")

    response = client.get(f"{CANCELS}/{task['id']}")

    assert response.status_code == 200
    assert response.json() == task


def test_fields_selects_what_a_task_carries(client: TestClient) -> None:
    task = cancel(client, create_order(client, order_body()))

    selected = client.get(f"{CANCELS}/{task['id']}?fields=state").json()

    assert selected == {"id": task["id"], "href": task["href"], "state": "done"}


def test_reading_an_unknown_task_is_404(client: TestClient) -> None:
    assert "no-such-task" in assert_tmf_error(client.get(f"{CANCELS}/no-such-task"), 404, "NOT_FOUND")


def test_tasks_are_listed_newest_first_with_their_counts(client: TestClient, clock: FakeClock) -> None:
    first = cancel(client, create_order(client, order_body()))
    clock.advance(minutes=5)
    second = cancel(client, create_order(client, sim_port_in_body()))

    response = client.get(CANCELS)

    assert response.status_code == 200
    assert [t["id"] for t in response.json()] == [second["id"], first["id"]]
    assert response.headers["x-total-count"] == "2"
    assert response.headers["x-result-count"] == "2"


def test_tasks_are_filtered_by_state_and_by_order(client: TestClient) -> None:
    acknowledged = create_order(client, order_body())
    finished = create_order(client, business_ethernet_body())
    move(client, finished, "inProgress", "completed")
    done = cancel(client, acknowledged)
    refused = cancel(client, finished)

    assert [t["id"] for t in client.get(f"{CANCELS}?state=terminatedWithError").json()] == [refused["id"]]
    assert [t["id"] for t in client.get(f"{CANCELS}?state=done").json()] == [done["id"]]
    by_order = client.get(f"{CANCELS}?serviceOrder.id={acknowledged['id']}").json()
    assert [t["id"] for t in by_order] == [done["id"]]


def test_a_page_of_tasks_is_partial_when_more_match(client: TestClient) -> None:
    for _ in range(3):
        cancel(client, create_order(client, order_body()))

    response = client.get(f"{CANCELS}?limit=2")

    assert response.status_code == 206
    assert response.headers["x-total-count"] == "3"
    assert response.headers["x-result-count"] == "2"


@pytest.mark.parametrize("method", ["PATCH", "DELETE"])
def test_a_task_cannot_be_patched_or_deleted(client: TestClient, method: str) -> None:
    task = cancel(client, create_order(client, order_body()))

    response = client.request(method, f"{CANCELS}/{task['id']}", json={"state": "acknowledged"})

    assert_tmf_error(response, 405, "METHOD_NOT_ALLOWED")
