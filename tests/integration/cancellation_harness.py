"""Cancellation against real HTTP on loopback: the simulated TMF652 systems and the provtrack API served
by uvicorn in threads, a worker with the provisioning and cancellation handlers driven by the test,
the store with the cancellation hook, the clock injected."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest

from provtrack.adapters.catalog_file import parse_catalog_text
from provtrack.adapters.store.repository import SqlStore
from provtrack.adapters.tmf622 import ProductOrderingClient
from provtrack.adapters.tmf652 import ResourceOrderingClient
from provtrack.api.app import create_app
from provtrack.bootstrap import merge_handlers
from provtrack.domain.clock import format_datetime
from provtrack.engine.cancellation import CancellationEngine
from provtrack.engine.product_orders import ProductOrderingEngine
from provtrack.engine.provisioning import ProvisioningEngine
from provtrack.engine.worker import Worker
from provtrack.services import hub_subscriptions, product_orders
from provtrack.services.cancellation import CancellationBookkeeping
from provtrack.services.ports import Context
from provtrack.services.product_orders import ProductOrderWatch
from provtrack.settings import Settings
from provtrack.simulator.product_ordering import BASE as PRODUCT_ORDERING
from provtrack.simulator.product_ordering import ProductOrderingSimulator
from provtrack.simulator.resource_ordering import ResourceOrderingSimulator
from provtrack.simulator.serving import serving_in_thread
from tests.conftest import AS_ADMIN, FakeClock
from tests.integration.engine_harness import TMF652, Engine

CANCELS = "/tmf-api/serviceOrdering/v4/cancelServiceOrder"
SLOW = 3600.0  # seconds a slow resource specification takes: it stays under way for the whole test

# Fibre: reserve a port (undone by releasing it), configure it (the point of no return), activate
# the line. Inventory is polled, activation notifies; copper goes to a system that cannot cancel.
CATALOG = """
systems:
  inventory:
    url: {sim}/inventory/{tmf652}
    progress: poll
    pollInterval: PT10S
  activation:
    url: {sim}/activation/{tmf652}
    progress: hub
    pollInterval: PT5M
  legacy:
    url: {sim}/legacy/{tmf652}
    progress: poll
    pollInterval: PT10S
    cancellable: false
services:
  fibre:
    add:
      - id: reserve-port
        system: inventory
        resourceSpecification: olt-port
        characteristics: {{address: "{{installationAddress:unknown}}"}}
        expectedDuration: PT2M
        undo: release-port
      - id: configure-port
        system: inventory
        resourceSpecification: olt-port-config
        after: [reserve-port]
        expectedDuration: PT5M
        pointOfNoReturn: true
      - id: activate-line
        system: activation
        resourceSpecification: broadband-profile
        characteristics: {{downloadMbps: "{{downloadSpeed:1000}}"}}
        after: [configure-port]
        expectedDuration: PT10M
    modify:
      - id: change-profile
        system: activation
        resourceSpecification: broadband-profile
        resourceAction: modify
        characteristics: {{downloadMbps: "{{downloadSpeed:1000}}"}}
        expectedDuration: PT5M
    undo:
      - id: release-port
        system: inventory
        resourceSpecification: olt-port
        resourceAction: delete
        expectedDuration: PT2M
  vlan:
    add:
      - id: assign-vlan
        system: inventory
        resourceSpecification: vlan-id
        characteristics: {{vlan: "{{vlanId}}"}}
        expectedDuration: PT1M
        undo: release-vlan
      - id: survey-site
        system: inventory
        resourceSpecification: site-survey
        after: [assign-vlan]
        expectedDuration: PT1H
      - id: configure-vlan
        system: activation
        resourceSpecification: vlan-config
        characteristics: {{vlan: "{{vlanId}}"}}
        after: [survey-site]
        expectedDuration: PT5M
        pointOfNoReturn: true
    undo:
      - id: release-vlan
        system: inventory
        resourceSpecification: vlan-id
        resourceAction: delete
        expectedDuration: PT1M
  tv:
    add:
      - id: entitle-tv
        system: activation
        resourceSpecification: iptv-entitlement
        expectedDuration: PT1M
  copper:
    add:
      - id: jumper
        system: legacy
        resourceSpecification: copper-jumper
        expectedDuration: PT1H
"""


@dataclass
class Cancelling(Engine):
    """The engine harness, with cancellation."""

    def create(self, order: dict[str, Any]) -> str:
        """Create the order and run the jobs due (it is planned, its first resource orders sent)."""
        order_id = super().create(order)
        self.worker.run_until_idle()
        return order_id

    def cancel(self, order_id: str, **fields: Any) -> dict[str, Any]:
        response = self.api.post(CANCELS, json={"serviceOrder": {"id": order_id}, **fields})
        assert response.status_code == 201, response.text
        task: dict[str, Any] = response.json()
        return task

    def task(self, task_id: str) -> dict[str, Any]:
        response = self.api.get(f"{CANCELS}/{task_id}")
        assert response.status_code == 200, response.text
        document: dict[str, Any] = response.json()
        return document

    def impact(self, order_id: str) -> dict[str, Any]:
        response = self.api.get(f"/provtrack/v1/serviceOrder/{order_id}/cancellationImpact")
        assert response.status_code == 200, response.text
        document: dict[str, Any] = response.json()
        return document

    def steps(self, order_id: str) -> list[dict[str, Any]]:
        return [a for a in self.plan(order_id)["activity"] if "withdraws" in a or "undoes" in a]

    def slow(self, *specifications: str) -> None:
        self.simulator.behaviour.spec_delay = dict.fromkeys(specifications, SLOW)


def one_item(spec: str) -> dict[str, Any]:
    return {
        "serviceOrderItem": [{"id": "1", "action": "add", "service": {"serviceSpecification": {"id": spec}}}]
    }


def fibre_order(**fields: Any) -> dict[str, Any]:
    item = {
        "id": "1",
        "action": "add",
        "service": {
            "serviceSpecification": {"id": "fibre"},
            "serviceCharacteristic": [{"name": "downloadSpeed", "value": 1000}],
        },
    }
    return {"externalId": "BSS-42", "serviceOrderItem": [item], **fields}


def assert_outcome_matches(preview: dict[str, Any], plan: dict[str, Any]) -> None:
    """What the preview said the cancellation would stop, cancel and undo is what it did."""
    steps = plan["activity"]
    # A manual task leaves its queue at once (`withdraw`); everything else stopped gets a step.
    at_once = [e["activity"] for e in preview["stop"] if e["how"] == "withdraw"]
    stopped = [e["activity"] for e in preview["stop"] if e["how"] != "withdraw"]
    assert stopped == [a["withdraws"] for a in steps if "withdraws" in a]
    assert [e["activity"] for e in preview["undo"]] == [a["undoes"] for a in steps if "undoes" in a]
    assert [e["undoActivity"] for e in preview["undo"]] == [a["name"] for a in steps if "undoes" in a]
    cancelled_at_once = {
        a["id"] for a in steps if a["state"] == "cancelled" and "withdraws" not in a and "undoes" not in a
    }
    assert {e["activity"] for e in preview["cancel"]} | set(at_once) <= cancelled_at_once


@contextmanager
def running(
    sim: ResourceOrderingSimulator,
    sim_url: str,
    store: SqlStore,
    clock: FakeClock,
    settings: Settings,
) -> Iterator[Cancelling]:
    """The API and a worker with the provisioning, cancellation and TMF622 handlers, the store with
    the cancellation and product-order hooks, as the assembly builds them."""
    catalog = parse_catalog_text(CATALOG.format(sim=sim_url, tmf652=TMF652), source="cancel-catalog.yaml")
    watch = ProductOrderWatch(_poll(settings))
    hooked = SqlStore(
        store.engine, after_change=(CancellationBookkeeping(catalog).after_change, watch.after_change)
    )
    app = create_app(settings, hooked, clock=clock, catalog=catalog, authenticator=AS_ADMIN)
    with serving_in_thread(app) as api_url, httpx.Client(base_url=api_url, timeout=10) as api:
        engines = (
            ProvisioningEngine(hooked, catalog, ResourceOrderingClient(timeout=5), listener_base_url=api_url),
            CancellationEngine(hooked, catalog, ResourceOrderingClient(timeout=5)),
            ProductOrderingEngine(
                hooked,
                catalog,
                ProductOrderingClient(timeout=5),
                url=settings.product_ordering_url,
                listener_base_url=api_url,
                poll_interval=timedelta(seconds=settings.product_ordering_poll_seconds),
            ),
        )
        worker = Worker(hooked, merge_handlers(e.handlers() for e in engines), clock=clock, threads=2)
        ctx = Context(now=format_datetime(clock.now), actor="test", new_id=lambda: "x")
        hub_subscriptions.subscribe_to_hubs(hooked, catalog, ctx=ctx)
        if settings.product_ordering_url:
            product_orders.subscribe_to_hub(hooked, ctx=ctx)
        worker.run_until_idle()
        yield Cancelling(api, worker, sim, hooked, clock, catalog)
        worker.stop()
        for engine in engines:
            engine.close()


def _poll(settings: Settings) -> timedelta | None:
    if not settings.product_ordering_url:
        return None
    return timedelta(seconds=settings.product_ordering_poll_seconds)


@pytest.fixture
def cancelling(
    simulator: tuple[ResourceOrderingSimulator, str], store: SqlStore, clock: FakeClock, database_url: str
) -> Iterator[Cancelling]:
    with running(*simulator, store, clock, Settings(database_url=database_url)) as harness:
        yield harness


@pytest.fixture
def product_ordering() -> Iterator[tuple[ProductOrderingSimulator, str]]:
    """The simulated customer order system; its TMF622 base URL."""
    simulator = ProductOrderingSimulator()
    with serving_in_thread(simulator.app()) as url:
        yield simulator, f"{url}{PRODUCT_ORDERING}"


@pytest.fixture
def customer_orders(
    simulator: tuple[ResourceOrderingSimulator, str],
    product_ordering: tuple[ProductOrderingSimulator, str],
    store: SqlStore,
    clock: FakeClock,
    database_url: str,
) -> Iterator[tuple[Cancelling, ProductOrderingSimulator, str]]:
    """Cancellation with a product ordering API configured (provtrack subscribed to its hub): the
    harness, the simulated customer order system and its TMF622 base URL."""
    product_simulator, url = product_ordering
    settings = Settings(
        database_url=database_url, product_ordering_url=url, product_ordering_poll_seconds=600
    )
    with running(*simulator, store, clock, settings) as harness:
        assert len(product_simulator.subscribers) == 1
        yield harness, product_simulator, url
