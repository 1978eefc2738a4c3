"""The demo's customer orders: each service order comes from a product order at the simulated TMF622
API, and the customer cancels some of them there; provtrack, assembled as `serve --demo` assembles
it, cancels the service orders. Real HTTP on loopback, the worker on the real clock, bounded waits."""

from __future__ import annotations

import gc
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from provtrack.bootstrap import Assembly
from provtrack.settings import Settings
from provtrack.simulator.demo_orders import CustomerOrders, feed_orders
from provtrack.simulator.partner_ordering import PartnerBehaviour, PartnerOrderingSimulator
from provtrack.simulator.product_ordering import BASE, MOUNT, ProductOrderingSimulator
from provtrack.simulator.resource_ordering import Behaviour, ResourceOrderingSimulator
from provtrack.simulator.serving import serving_in_thread
from tests.conftest import AS_ADMIN

ORDERS = "/tmf-api/serviceOrdering/v4/serviceOrder"
Demo = tuple[httpx.Client, str, ResourceOrderingSimulator, PartnerOrderingSimulator]
CANCELS = "/tmf-api/serviceOrdering/v4/cancelServiceOrder"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_for(condition: Callable[[], bool], *, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)


@pytest.fixture
def demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Demo]:
    """`serve --demo` in miniature: the simulated systems and partners (their orders slow enough to be
    under way when cancelled) and customer order system, provtrack with the demo catalog and a worker."""
    monkeypatch.setenv("PROVTRACK_DEMO_WHOLESALE_TOKEN", "demo-token")  # the demo catalog's reference
    systems = ResourceOrderingSimulator(Behaviour(delay=3600.0))
    application = systems.app()
    application.mount(MOUNT, ProductOrderingSimulator().app())
    partners = PartnerOrderingSimulator(PartnerBehaviour(day_seconds=3600.0))
    with serving_in_thread(application) as simulated, serving_in_thread(partners.app()) as partnering:
        port = _free_port()
        settings = Settings(
            database_url=f"sqlite:///{tmp_path / 'demo.db'}",
            port=port,
            catalog="demo",
            simulator_url=simulated,
            partner_simulator_url=partnering,
            product_ordering_url=f"{simulated}{MOUNT}{BASE}",
        )
        assembly = Assembly.build(settings, migrate=True)
        with (
            serving_in_thread(assembly.app(with_worker=True, authenticator=AS_ADMIN), port=port) as url,
            httpx.Client(base_url=url, timeout=10) as api,
        ):
            yield api, settings.product_ordering_url or "", systems, partners
        # The worker has stopped and closed its features' clients: a connection left open would warn
        # now (warnings are errors), here rather than in whichever test collects it later.
        gc.collect()


def test_the_demo_cancels_customer_orders_through_tmf622(
    demo: Demo,
) -> None:
    api, product_ordering, systems, partners = demo
    customer_orders = CustomerOrders(product_ordering, cancel_share=1.0, cancel_after=(0.0, 0.0))

    fed = feed_orders(
        str(api.base_url),
        every=0.0,
        count=3,
        stop=threading.Event(),
        seed=11,
        customer_orders=customer_orders,
    )

    assert (fed.accepted, fed.refused) == (3, 0)
    orders: list[dict[str, Any]] = []

    def all_cancelled() -> bool:
        orders[:] = api.get(ORDERS).json()
        return len(orders) == 3 and all(o["state"] == "cancelled" for o in orders)

    _wait_for(all_cancelled)
    for order in orders:
        [task] = api.get(f"{CANCELS}?serviceOrder.id={order['id']}").json()
        assert task["state"] == "done"
        product_order_id = order["orderRelationship"][0]["id"]
        assert order["cancellationReason"].startswith(f"product order {product_order_id} cancelled: ")
    assert systems.cancellations  # what was under way was cancelled at its system
    assert partners.cancellations  # and at its partner
    assert all(order.cancelled_after is not None for order in partners.orders.values())
