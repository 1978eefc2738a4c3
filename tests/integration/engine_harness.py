"""The provisioning engine against real HTTP on loopback: the simulator and the provtrack API each
served by uvicorn in a thread, the worker driven by the test with an injected clock."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from provtrack.adapters.catalog_file import parse_catalog_text
from provtrack.adapters.store.repository import SqlStore
from provtrack.adapters.tmf652 import ResourceOrderingClient
from provtrack.api.app import create_app
from provtrack.domain.catalog import Catalog
from provtrack.engine.provisioning import ProvisioningEngine
from provtrack.engine.worker import Worker
from provtrack.services import hub_subscriptions
from provtrack.services.ports import Context
from provtrack.settings import Settings
from provtrack.simulator.resource_ordering import Behaviour, ResourceOrderingSimulator
from provtrack.simulator.serving import serving_in_thread
from tests.conftest import AS_ADMIN, FakeClock

ORDERS = "/tmf-api/serviceOrdering/v4/serviceOrder"
TMF652 = "tmf-api/resourceOrderingManagement/v4"

# A three-activity chain for fibre (two on a polled system, the last on a hub system), and a TV
# service on the hub system. Polling every 10 s: the tests move the clock, nothing sleeps.
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
inventory:
  url: {sim}/inventory/tmf-api/serviceInventory/v4
services:
  fibre:
    add:
      - id: reserve-port
        system: inventory
        resourceSpecification: olt-port
        characteristics: {{address: "{{installationAddress:unknown}}"}}
        expectedDuration: PT2M
      - id: configure-port
        system: inventory
        resourceSpecification: olt-port-config
        after: [reserve-port]
        expectedDuration: PT5M
      - id: activate-line
        system: activation
        resourceSpecification: broadband-profile
        characteristics: {{downloadMbps: "{{downloadSpeed}}"}}
        after: [configure-port]
        expectedDuration: PT10M
        pointOfNoReturn: true
  tv:
    add:
      - id: entitle-tv
        system: activation
        resourceSpecification: iptv-entitlement
        expectedDuration: PT1M
    delete:
      - id: revoke-tv
        system: activation
        resourceSpecification: iptv-entitlement
        resourceAction: delete
        expectedDuration: PT1M
"""


def fibre(item_id: str = "1", **extra: Any) -> dict[str, Any]:
    return {
        "id": item_id,
        "action": "add",
        "service": {
            "serviceSpecification": {"id": "fibre"},
            "serviceCharacteristic": [{"name": "downloadSpeed", "value": 1000}],
        },
        **extra,
    }


def tv(item_id: str = "2", *, after: str | None = "1") -> dict[str, Any]:
    item: dict[str, Any] = {"id": item_id, "action": "add", "service": {"serviceSpecification": {"id": "tv"}}}
    if after:
        item["serviceOrderItemRelationship"] = [
            {"relationshipType": "dependency", "orderItem": {"itemId": after}}
        ]
    return item


def body(*items: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"externalId": "BSS-42", "category": "residential", "serviceOrderItem": list(items), **fields}


@dataclass
class Engine:
    """Everything a test drives: the API over HTTP, the worker, the simulated systems, the clock."""

    api: httpx.Client
    worker: Worker
    simulator: ResourceOrderingSimulator
    store: SqlStore
    clock: FakeClock
    catalog: Catalog

    def create(self, order: dict[str, Any]) -> str:
        response = self.api.post(ORDERS, json=order)
        assert response.status_code == 201, response.text
        order_id: str = response.json()["id"]
        return order_id

    def order(self, order_id: str) -> dict[str, Any]:
        response = self.api.get(f"{ORDERS}/{order_id}")
        assert response.status_code == 200, response.text
        document: dict[str, Any] = response.json()
        return document

    def plan(self, order_id: str) -> dict[str, Any]:
        response = self.api.get(f"/provtrack/v1/serviceOrder/{order_id}/plan")
        assert response.status_code == 200, response.text
        document: dict[str, Any] = response.json()
        return document

    def activity(self, order_id: str, name: str, item_id: str | None = None) -> dict[str, Any]:
        for activity in self.plan(order_id)["activity"]:
            if activity["name"] == name and item_id in (None, activity["serviceOrderItemId"]):
                return dict(activity)
        raise AssertionError(f"no activity {name} in the plan of {order_id}")

    def run_until(
        self, condition: Callable[[], bool], *, step_seconds: float = 0, timeout: float = 10
    ) -> None:
        """Run due jobs (moving the clock by `step_seconds` per round) until `condition` holds.

        Notifications arrive over real HTTP from the simulator's thread, so this waits on a
        condition with a bounded loop; it never waits for time to pass.
        """
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError("condition not reached in time")
            if not self.worker.run_until_idle():
                if step_seconds:
                    self.clock.advance(seconds=step_seconds)
                else:
                    time.sleep(0.005)

    def state(self, order_id: str) -> str:
        return str(self.order(order_id)["state"])


@pytest.fixture
def simulator() -> Iterator[tuple[ResourceOrderingSimulator, str]]:
    simulator = ResourceOrderingSimulator(Behaviour(delay=0.0, seed=7))
    with serving_in_thread(simulator.app()) as url:
        yield simulator, url


@pytest.fixture
def engine(
    simulator: tuple[ResourceOrderingSimulator, str], store: SqlStore, clock: FakeClock, database_url: str
) -> Iterator[Engine]:
    sim, sim_url = simulator
    catalog = parse_catalog_text(CATALOG.format(sim=sim_url, tmf652=TMF652), source="test-catalog.yaml")
    app = create_app(Settings(database_url=database_url), store, clock=clock, authenticator=AS_ADMIN)
    app.state.catalog = catalog
    with serving_in_thread(app) as api_url, httpx.Client(base_url=api_url, timeout=10) as api:
        provisioning_engine = ProvisioningEngine(
            store, catalog, ResourceOrderingClient(timeout=5), listener_base_url=api_url
        )
        handlers = provisioning_engine.handlers()
        worker = Worker(store, handlers, clock=clock, threads=2)
        ctx = Context(now=clock.now.strftime("%Y-%m-%dT%H:%M:%S.000Z"), actor="test", new_id=lambda: "x")
        hub_subscriptions.subscribe_to_hubs(store, catalog, ctx=ctx)
        worker.run_until_idle()
        assert len(sim.subscribers.get("activation", {})) == 1
        yield Engine(api, worker, sim, store, clock, catalog)
        worker.stop()
        provisioning_engine.close()
