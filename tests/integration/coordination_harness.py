"""Coordination over real HTTP on loopback: the provtrack API, simulated TMF652 systems and simulated
TMF641 partners each served by uvicorn in a thread; the store, hooks and job handlers built by the
one assembly (`Assembly.build`); the worker driven by the test with an injected clock."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from provtrack.adapters.catalog_file import parse_catalog_text
from provtrack.adapters.store.repository import SqlStore
from provtrack.api.app import create_app
from provtrack.bootstrap import Assembly, close_features, merge_handlers
from provtrack.domain.clock import format_datetime
from provtrack.engine.worker import Worker
from provtrack.settings import Settings
from provtrack.simulator.partner_ordering import PartnerBehaviour, PartnerOrderingSimulator
from provtrack.simulator.resource_ordering import Behaviour, ResourceOrderingSimulator
from provtrack.simulator.serving import serving_in_thread
from tests.conftest import AS_ADMIN, FakeClock

ORDERS = "/tmf-api/serviceOrdering/v4/serviceOrder"
CANCELS = "/tmf-api/serviceOrdering/v4/cancelServiceOrder"
TASKS = "/provtrack/v1/task"
TOKEN_VARIABLE = "PROVTRACK_TEST_LOGISTICS_TOKEN"

# A fibre line needs a port (resource order), an ONT shipped (partner order) and installed (manual
# task, whose checklist the activation takes). `visit` is a task alone, `access` a partner order alone;
# after `fit`, the point of no return, the order cannot be cancelled.
CATALOG = """
systems:
  inventory:
    url: {systems}/inventory/tmf-api/resourceOrderingManagement/v4
    progress: hub
    pollInterval: PT1H
workGroups:
  techs:
    members: [amelie, bruno, chloe]
    capacity: 2
    timeZone: Europe/Paris
    workingHours: {{mon-fri: "08:00-12:00, 13:00-17:00"}}
    holidays: ["12-25"]
  noc:
    members: [nora]
partners:
  logistics:
    url: {partners}/logistics/tmf-api/serviceOrdering/v4
    progress: hub
    pollInterval: PT1H
    credentials: {{type: bearer, token: {{env: {token}}}}}
  wholesale-access:
    url: {partners}/wholesale-access/tmf-api/serviceOrdering/v4
    progress: hub
    pollInterval: PT10M
  donor:
    url: {partners}/donor/tmf-api/serviceOrdering/v4
    progress: poll
    pollInterval: PT10M
services:
  fibre:
    add:
      - {{id: reserve-port, system: inventory, resourceSpecification: olt-port, expectedDuration: PT2M}}
      - id: ship-ont
        kind: partnerOrder
        partner: logistics
        serviceSpecification: ont-shipment
        characteristics: {{deliveryAddress: "{{installationAddress:unknown}}"}}
        expectedDuration: P2D
      - id: install-ont
        kind: manualTask
        workGroup: techs
        after: [reserve-port, ship-ont]
        expectedDuration: PT3H
        instructions: Install the ONT and measure the optical power.
        checklist:
          - {{name: ontSerial, type: text}}
          - {{name: opticalPowerDbm, type: number}}
          - {{name: remarks, type: text, required: false}}
      - id: activate-line
        system: inventory
        resourceSpecification: broadband-profile
        characteristics: {{ontSerial: "{{ontSerial}}"}}
        after: [install-ont]
        expectedDuration: PT5M
  visit:
    add:
      - id: install
        kind: manualTask
        workGroup: techs
        expectedDuration: PT3H
        checklist: [{{name: ontSerial, type: text}}]
  survey:
    add:
      - {{id: survey, kind: manualTask, workGroup: techs, expectedDuration: PT40H}}
  fitting:
    add:
      - {{id: fit, kind: manualTask, workGroup: techs, expectedDuration: PT1H, pointOfNoReturn: true}}
      - {{id: test-circuit, kind: manualTask, workGroup: noc, after: [fit], expectedDuration: PT1H}}
  access:
    add:
      - {{id: access, kind: partnerOrder, partner: wholesale-access, serviceSpecification: ethernet-access,
         expectedDuration: P10D}}
  port-in:
    add:
      - {{id: port-in, kind: partnerOrder, partner: donor, serviceSpecification: number-port-in,
         characteristics: {{msisdn: "{{msisdn}}"}}, expectedDuration: P2D}}
"""

# One rule, for the escalation test: a late order's tasks go to bruno.
POLICY = """
rules:
  - name: late-visit
    when: order.level == "late"
    ladder:
      - after: PT0S
        actions:
          - assign: {person: bruno}
"""


def item(spec: str, item_id: str = "1", **service: Any) -> dict[str, Any]:
    characteristics = service.pop("characteristics", {})
    body: dict[str, Any] = {"serviceSpecification": {"id": spec}, **service}
    if characteristics:
        body["serviceCharacteristic"] = [{"name": k, "value": v} for k, v in characteristics.items()]
    return {"id": item_id, "action": "add", "service": body}


def order(*items: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"externalId": "BSS-7", "category": "residential", "serviceOrderItem": list(items), **fields}


@dataclass
class Coordination:
    api: httpx.Client
    worker: Worker
    systems: ResourceOrderingSimulator
    partners: PartnerOrderingSimulator
    assembly: Assembly
    clock: FakeClock
    partner_time: list[float] = field(default_factory=lambda: [0.0])

    @property
    def store(self) -> SqlStore:
        return self.assembly.store

    def create(self, body: dict[str, Any]) -> str:
        response = self.api.post(ORDERS, json=body)
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    def order(self, order_id: str) -> dict[str, Any]:
        response = self.api.get(f"{ORDERS}/{order_id}")
        assert response.status_code == 200, response.text
        return dict(response.json())

    def plan(self, order_id: str) -> dict[str, Any]:
        response = self.api.get(f"/provtrack/v1/serviceOrder/{order_id}/plan")
        assert response.status_code == 200, response.text
        return dict(response.json())

    def activity(self, order_id: str, name: str) -> dict[str, Any]:
        return next(dict(a) for a in self.plan(order_id)["activity"] if a["name"] == name)

    def cancel(self, order_id: str) -> dict[str, Any]:
        """POST cancelServiceOrder for the order: the task as the assessment left it."""
        response = self.api.post(CANCELS, json={"serviceOrder": {"id": order_id}})
        assert response.status_code == 201, response.text
        return dict(response.json())

    def cancel_task(self, task_id: str) -> dict[str, Any]:
        response = self.api.get(f"{CANCELS}/{task_id}")
        assert response.status_code == 200, response.text
        return dict(response.json())

    def impact(self, order_id: str) -> dict[str, Any]:
        response = self.api.get(f"/provtrack/v1/serviceOrder/{order_id}/cancellationImpact")
        assert response.status_code == 200, response.text
        return dict(response.json())

    def tasks(self, **params: str) -> list[dict[str, Any]]:
        response = self.api.get(TASKS, params=params)
        assert response.status_code == 200, response.text
        return list(response.json())

    def task_of(self, order_id: str) -> dict[str, Any]:
        [task] = self.tasks(serviceOrderId=order_id)
        return task

    def act(self, task_id: str, action: str, actor: str = "amelie", **body: Any) -> httpx.Response:
        return self.api.post(f"{TASKS}/{task_id}/{action}", json=body or None, headers={"X-Actor": actor})

    def work(self, task_id: str, actor: str = "amelie", **checklist: Any) -> dict[str, Any]:
        """Claim, start and complete a task as `actor`."""
        for action, body in (("claim", {}), ("start", {}), ("complete", {"checklist": checklist})):
            response = self.act(task_id, action, actor, **body)
            assert response.status_code == 200, response.text
        return dict(response.json())

    def run_until(
        self, condition: Callable[[], bool], *, step_seconds: float = 0, timeout: float = 10
    ) -> None:
        """Run due jobs (moving the clock by `step_seconds` a round) until `condition` holds; waits on
        the condition with a bound (notifications come over real HTTP), never for time to pass."""
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


def instant_partners(**changes: Any) -> PartnerBehaviour:
    """Partners whose orders are done at once (day_seconds 0), that never hold, fail or raise a
    jeopardy unless told; logistics wants its bearer token."""
    behaviour = PartnerBehaviour(
        day_seconds=0, hold_rate=0, jeopardy_rate=0, failure_rate=0, seed=3, tokens={"logistics": "s3cret"}
    )
    for name, value in changes.items():
        setattr(behaviour, name, value)
    return behaviour


@pytest.fixture
def partner_behaviour(request: pytest.FixtureRequest) -> PartnerBehaviour:
    """`instant_partners()`, or what a test gives with `parametrize(..., indirect=True)`."""
    given: PartnerBehaviour | None = getattr(request, "param", None)
    return given or instant_partners()


@pytest.fixture
def coordination(  # noqa: PLR0917 - pytest passes fixtures by name
    store: SqlStore,
    clock: FakeClock,
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    partner_behaviour: PartnerBehaviour,
) -> Iterator[Coordination]:
    monkeypatch.setenv(TOKEN_VARIABLE, "s3cret")
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    partner_time = [0.0]
    systems = ResourceOrderingSimulator(Behaviour(delay=0.0, instant=True, seed=7))
    partners = PartnerOrderingSimulator(partner_behaviour, clock=lambda: partner_time[0], wall=clock)
    with (
        serving_in_thread(systems.app()) as systems_url,
        serving_in_thread(partners.app()) as partners_url,
    ):
        text = CATALOG.format(systems=systems_url, partners=partners_url, token=TOKEN_VARIABLE)
        catalog = parse_catalog_text(text, source="coordination-catalog.yaml")
        settings = Settings(database_url=database_url, policy=str(policy), events_callback_allow="127.0.0.1")
        assembly = Assembly.build(settings, catalog=catalog, clock=clock)
        app = create_app(
            settings,
            assembly.store,
            clock=clock,
            catalog=catalog,
            jeopardy=assembly.jeopardy,
            authenticator=AS_ADMIN,
        )
        with serving_in_thread(app) as api_url, httpx.Client(base_url=api_url, timeout=10) as api:
            assembly.settings = settings.model_copy(update={"listener_url": api_url})
            features = assembly.features()
            worker = Worker(
                assembly.store, merge_handlers(f.handlers() for f in features), clock=clock, threads=2
            )
            assembly.start()
            worker.run_until_idle()
            yield Coordination(api, worker, systems, partners, assembly, clock, partner_time)
            worker.stop()
            close_features(features)
        assembly.store.dispose()


def stamp(clock: FakeClock) -> str:
    return format_datetime(clock.now)
