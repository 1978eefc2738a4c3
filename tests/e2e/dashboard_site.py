"""A real provtrack on loopback for the browser tests: the one assembly (`Assembly.build`, as `provtrack
serve` builds it) on a SQLite file, simulated TMF652 systems, an injected clock, and the worker run by
the test (`site.run()`), so time passes only when the test moves the clock.

The seeded scenario, in the words of a provisioning coordinator:
- BSS-FIBRE-1 and BSS-FIBRE-2: residential fibre, delivered at once;
- BSS-FIBRE-3: residential fibre whose port is being reserved (the system answers within the hour);
- BSS-FALL-1: residential fibre whose port reservation was refused (`no capacity`): fallout, held;
- BSS-BIZ-1: a business E-Line waiting on its site survey (a manual task of field-engineering, 1 h
  expected, with a checklist), committed 2 h after it was ordered: it goes into jeopardy when the
  survey overruns.

A fibre order that is cancelled after its port was reserved has it released (the catalog's undo).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from provtrack.adapters.catalog_file import parse_catalog_text
from provtrack.bootstrap import Assembly
from provtrack.domain.clock import format_datetime
from provtrack.engine.worker import Worker
from provtrack.settings import Settings
from provtrack.simulator.resource_ordering import Behaviour, ResourceOrderingSimulator
from provtrack.simulator.serving import serving_in_thread
from tests.conftest import AS_ADMIN, FakeClock

ORDERS = "/tmf-api/serviceOrdering/v4/serviceOrder"
TMF652 = "tmf-api/resourceOrderingManagement/v4"
CATALOG = """
systems:
  inventory: {{url: "{sim}/inventory/{tmf652}", progress: poll, pollInterval: PT1H}}
  activation: {{url: "{sim}/activation/{tmf652}", progress: poll, pollInterval: PT1H}}
  network-config: {{url: "{sim}/network-config/{tmf652}", progress: poll, pollInterval: PT1H}}
workGroups:
  field-engineering: {{description: Site surveys}}
services:
  fibre:
    add:
      - {{id: reserve-port, system: inventory, resourceSpecification: olt-port, expectedDuration: PT2M,
          undo: release-port}}
      - {{id: configure-port, system: inventory, resourceSpecification: olt-config, after: [reserve-port],
          expectedDuration: PT5M}}
      - {{id: activate-line, system: activation, resourceSpecification: broadband-profile,
          after: [configure-port], expectedDuration: PT5M}}
      - {{id: register-line, system: activation, resourceSpecification: line-register,
          after: [reserve-port], expectedDuration: PT1M, undo: unregister-line}}
    undo:
      - {{id: release-port, system: inventory, resourceSpecification: olt-port, resourceAction: delete,
          expectedDuration: PT2M}}
      - {{id: unregister-line, system: activation, resourceSpecification: line-register,
          resourceAction: delete, expectedDuration: PT1M}}
  eline:
    add:
      - {{id: site-survey, kind: manualTask, workGroup: field-engineering, expectedDuration: PT1H,
          instructions: "Walk the cable route from the building entry to the customer's room.",
          checklist: [{{name: siteReady, type: boolean, description: the room has power and a free rack unit}},
                      {{name: cableRunMetres, type: number}},
                      {{name: remarks, type: text, required: false}}]}}
      - {{id: configure-pe-vlan, system: network-config, resourceSpecification: eline-vlan,
          after: [site-survey], expectedDuration: PT10M}}
"""
POLICY = """
defaults:
  commitment:
    - within: P10D
  overrunThreshold: 0.25
  margin: PT0S
  learnedDurations: {percentile: 80, minSamples: 1000}
contacts:
  desk: {webhook: "https://desk.example.net/hooks/provtrack"}
rules:
  - name: business-order-in-jeopardy
    when: order.level in ["inJeopardy", "late"] && order.category == "business"
    ladder:
      - after: PT0S
        actions: [{note: "Escalation level 1: projected to miss the committed date"}]
      - after: PT1H
        actions: [{raisePriority: 0}]
"""


def fibre(external_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "externalId": external_id,
        "category": "residential",
        "priority": "4",
        "description": f"FTTH 1G for {external_id}",
        "serviceOrderItem": [
            {"id": "1", "action": "add", "service": {"serviceSpecification": {"id": "fibre"}}}
        ],
        **fields,
    }


def eline(external_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "externalId": external_id,
        "category": "business",
        "priority": "3",
        "description": f"E-Line 500M for {external_id}",
        "serviceOrderItem": [
            {"id": "1", "action": "add", "service": {"serviceSpecification": {"id": "eline"}}}
        ],
        **fields,
    }


@dataclass
class Site:
    url: str
    api: httpx.Client
    worker: Worker
    clock: FakeClock
    simulator: ResourceOrderingSimulator
    assembly: Assembly
    t0: datetime
    ids: dict[str, str]

    def create(self, body: dict[str, Any]) -> str:
        response = self.api.post(ORDERS, json=body)
        assert response.status_code == 201, response.text
        order_id = str(response.json()["id"])
        self.ids[body["externalId"]] = order_id
        self.run()
        return order_id

    def run(self) -> int:
        return self.worker.run_until_idle()

    def at(self, instant: datetime) -> None:
        """Move the clock to `instant` and run what is due then."""
        self.clock.now = instant
        self.run()

    def order(self, external_id: str) -> dict[str, Any]:
        response = self.api.get(f"{ORDERS}/{self.ids[external_id]}")
        assert response.status_code == 200, response.text
        document: dict[str, Any] = response.json()
        return document

    def plan(self, external_id: str) -> dict[str, Any]:
        response = self.api.get(f"/provtrack/v1/serviceOrder/{self.ids[external_id]}/plan")
        assert response.status_code == 200, response.text
        document: dict[str, Any] = response.json()
        return document

    def page(self, path: str) -> str:
        return f"{self.url}{path}"


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    with running_site(tmp_path) as running:
        yield running


@contextmanager
def running_site(tmp_path: Path) -> Iterator[Site]:
    """The seeded site until the block ends (the fixture, and `make screenshots`)."""
    clock = FakeClock()
    simulator = ResourceOrderingSimulator(Behaviour(delay=0.0, instant=True, seed=7))
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'provtrack.db'}",
        policy=str(policy),
        dashboard_poll_seconds=0.2,
    )
    with serving_in_thread(simulator.app()) as sim_url:
        catalog = parse_catalog_text(
            CATALOG.format(sim=sim_url, tmf652=TMF652), source="dashboard-catalog.yaml"
        )
        assembly = Assembly.build(settings, migrate=True, catalog=catalog, clock=clock)
        app = assembly.app(with_worker=False, authenticator=AS_ADMIN)
        with serving_in_thread(app) as url, httpx.Client(base_url=url, timeout=10, trust_env=False) as api:
            worker = assembly.worker()
            site = Site(url, api, worker, clock, simulator, assembly, clock.now, {})
            site.run()
            seed(site)
            yield site
            worker.stop()


def seed(site: Site) -> None:
    """The scenario of the module docstring, at t0 (the clock moves only where it says)."""
    site.create(fibre("BSS-FIBRE-1", requestedCompletionDate=format_datetime(site.t0 + timedelta(days=1))))
    site.create(fibre("BSS-FIBRE-2"))
    site.simulator.behaviour.instant = False  # answered `acknowledged`; the poll an hour later sees it done
    site.create(fibre("BSS-FIBRE-3"))
    site.simulator.behaviour.instant = True
    site.simulator.behaviour.refuse_specs = ["olt-port"]
    site.create(fibre("BSS-FALL-1"))
    site.simulator.behaviour.refuse_specs = []
    site.create(eline("BSS-BIZ-1", requestedCompletionDate=format_datetime(site.t0 + timedelta(hours=2))))
