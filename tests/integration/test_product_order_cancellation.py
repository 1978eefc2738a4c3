"""When the customer order is cancelled (TMF622): the service orders that came from it are cancelled,
once each, whatever the order and number of the events; against a simulated product ordering API
and simulated TMF652 systems over real HTTP."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx

from provtrack.services import access
from provtrack.services.product_orders import LISTENER_SOURCE
from provtrack.simulator.product_ordering import ProductOrderingSimulator
from tests.integration.cancellation_harness import (
    CANCELS,
    Cancelling,
    assert_outcome_matches,
    cancelling,
    customer_orders,
    fibre_order,
    one_item,
    product_ordering,
)
from tests.integration.engine_harness import simulator

__all__ = ["cancelling", "customer_orders", "product_ordering", "simulator"]


def tmf622_listener(cancelling: Cancelling) -> str:
    """The TMF622 listener with its callback token (the one provtrack registers at the hub)."""
    token = access.listener_token(cancelling.store, LISTENER_SOURCE, now=datetime.now(UTC))
    return f"/provtrack/v1/tmf622/{token}/listener"


def product_order(url: str) -> str:
    response = httpx.post(
        f"{url}/productOrder",
        json={"productOrderItem": [{"id": "1", "action": "add", "productOffering": {"id": "fibre-1g"}}]},
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def cancel_product_order(url: str, product_order_id: str, **fields: Any) -> dict[str, Any]:
    response = httpx.post(
        f"{url}/cancelProductOrder", json={"productOrder": {"id": product_order_id}, **fields}
    )
    assert response.status_code == 201, response.text
    task: dict[str, Any] = response.json()
    return task


def from_product_order(product_order_id: str, *, how: str = "orderRelationship") -> dict[str, Any]:
    """A fibre service order naming its product order the way `how` says."""
    references = {
        "orderRelationship": {
            "orderRelationship": [
                {"id": product_order_id, "relationshipType": "cross-ref", "@referredType": "ProductOrder"}
            ]
        },
        "externalReference": {
            "externalReference": [{"externalReferenceType": "ProductOrder", "name": product_order_id}]
        },
        "externalId": {"externalId": product_order_id},
    }[how]
    return fibre_order(**references)


def tasks_of(harness: Cancelling, order_id: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = harness.api.get(f"{CANCELS}?serviceOrder.id={order_id}").json()
    return found


def test_a_cancelled_product_order_cancels_every_service_order_that_came_from_it(
    customer_orders: tuple[Cancelling, ProductOrderingSimulator, str],
) -> None:
    harness, _product, url = customer_orders
    harness.slow("olt-port")
    po = product_order(url)
    related = [
        harness.create(from_product_order(po, how=how)) for how in ("orderRelationship", "externalReference")
    ]
    unrelated = harness.create(from_product_order("PO-999999"))
    previews = [harness.impact(order_id) for order_id in related]

    cancel_product_order(url, po, cancellationReason="customer moved abroad")
    harness.run_until(lambda: all(harness.state(o) == "cancelled" for o in related))

    for order_id, preview in zip(related, previews, strict=True):
        [task] = tasks_of(harness, order_id)
        assert task["state"] == "done"
        assert task["cancellationReason"] == f"product order {po} cancelled: customer moved abroad"
        assert harness.order(order_id)["cancellationReason"] == task["cancellationReason"]
        assert_outcome_matches(preview, harness.plan(order_id))
    assert harness.state(unrelated) == "inProgress"
    assert tasks_of(harness, unrelated) == []
    assert len(harness.simulator.cancellations) == 2  # each reserve-port under way, cancelled at its system


def test_events_delivered_twice_and_out_of_order_cancel_each_service_order_once(
    customer_orders: tuple[Cancelling, ProductOrderingSimulator, str],
) -> None:
    harness, product, url = customer_orders
    product.behaviour.repeat = 2
    product.behaviour.out_of_order = True  # `cancelled` arrives before the cancellation's creation
    harness.slow("olt-port")
    po = product_order(url)
    order_id = harness.create(from_product_order(po))

    cancel_product_order(url, po)
    harness.run_until(lambda: harness.state(order_id) == "cancelled")
    harness.run_until(lambda: product.notifications_sent == 8)  # 4 events, twice each
    harness.worker.run_until_idle()

    assert len(tasks_of(harness, order_id)) == 1


def test_the_safety_poll_finds_a_cancellation_whose_events_were_lost(
    customer_orders: tuple[Cancelling, ProductOrderingSimulator, str],
) -> None:
    harness, product, url = customer_orders
    po = product_order(url)
    harness.slow("olt-port")
    order_id = harness.create(from_product_order(po))
    product.subscribers.clear()  # every event of the cancellation is lost

    cancel_product_order(url, po)
    harness.run_until(lambda: product.orders[po]["state"] == "cancelled")
    harness.worker.run_until_idle()
    assert harness.state(order_id) == "inProgress"
    harness.run_until(lambda: harness.state(order_id) == "cancelled", step_seconds=300)

    assert len(tasks_of(harness, order_id)) == 1


def test_a_product_order_that_is_not_cancelled_cancels_nothing(
    customer_orders: tuple[Cancelling, ProductOrderingSimulator, str],
) -> None:
    harness, product, url = customer_orders
    po = product_order(url)
    order_id = harness.create(from_product_order(po))
    product.complete(po)  # delivered: its cancellation is refused by the customer order system

    cancel_product_order(url, po)
    harness.run_until(lambda: product.notifications_sent >= 1)
    harness.worker.run_until_idle()

    assert tasks_of(harness, order_id) == []


def test_without_a_product_ordering_api_the_listener_acts_on_the_event_once(cancelling: Cancelling) -> None:
    cancelling.slow("olt-port")
    order_id = cancelling.create(fibre_order(externalId="PO-77"))
    other = cancelling.create(one_item("tv"))
    create = {
        "eventType": "CancelProductOrderCreateEvent",
        "event": {
            "cancelProductOrder": {
                "id": "CPO-1",
                "state": "acknowledged",
                "cancellationReason": "duplicate order",
                "productOrder": {"id": "PO-77"},
            }
        },
    }
    cancelled = {
        "eventType": "ProductOrderStateChangeEvent",
        "event": {"productOrder": {"id": "PO-77", "state": "cancelled"}},
    }

    for event, name in (
        (cancelled, "productOrderStateChangeEvent"),
        (create, "cancelProductOrderCreateEvent"),
    ) * 2:
        response = cancelling.api.post(f"{tmf622_listener(cancelling)}/{name}", json=event)
        assert response.status_code == 204, response.text
    cancelling.run_until(lambda: cancelling.state(order_id) == "cancelled")

    [task] = tasks_of(cancelling, order_id)
    assert task["cancellationReason"] == "product order PO-77 cancelled"
    assert tasks_of(cancelling, other) == []


def test_a_refused_product_cancellation_or_another_event_opens_nothing(cancelling: Cancelling) -> None:
    order_id = cancelling.create(fibre_order(externalId="PO-78"))
    refused = {
        "event": {
            "cancelProductOrder": {
                "id": "CPO-2",
                "state": "terminatedWithError",
                "productOrder": {"id": "PO-78"},
            }
        }
    }
    progressing = {"event": {"productOrder": {"id": "PO-78", "state": "inProgress"}}}

    for event in (refused, progressing):
        assert cancelling.api.post(f"{tmf622_listener(cancelling)}/anyEvent", json=event).status_code == 204
    response = cancelling.api.post(f"{tmf622_listener(cancelling)}/anyEvent", json={"eventType": "x"})

    assert response.status_code == 400
    assert tasks_of(cancelling, order_id) == []
    assert cancelling.state(order_id) == "inProgress"
