"""Jeopardy over a real store with an injected clock: orders are planned by the engine's use cases,
activities finish when the test says so, and the worker runs only what the clock has made due.

Resource orders are never sent (dispatch and poll are no-ops here): the test reports their outcome
through the same use case a downstream notification goes through.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from provtrack.adapters.catalog_file import parse_catalog_text
from provtrack.adapters.policy_file import parse_policy_text
from provtrack.adapters.store.repository import SqlStore
from provtrack.api.app import create_app
from provtrack.domain.catalog import Catalog
from provtrack.domain.clock import format_datetime
from provtrack.domain.jobs import Job
from provtrack.domain.model import Change, ServiceOrder
from provtrack.domain.policy import Policy
from provtrack.engine.jeopardy import JeopardyEngine
from provtrack.engine.provisioning import ProvisioningEngine
from provtrack.engine.worker import Worker
from provtrack.services import orders, provisioning
from provtrack.services.jeopardy import JeopardyMonitor
from provtrack.services.ports import Context
from provtrack.settings import Settings
from tests.conftest import AS_ADMIN, FakeClock

CATALOG = """
systems:
  inventory:
    url: http://127.0.0.1:9/inventory/tmf-api/resourceOrderingManagement/v4
    progress: poll
    pollInterval: PT1H
services:
  fibre:
    add:
      - id: reserve-port
        system: inventory
        resourceSpecification: olt-port
        expectedDuration: PT1H
      - id: activate-line
        system: inventory
        resourceSpecification: broadband-profile
        after: [reserve-port]
        expectedDuration: PT2H
"""

POLICY = """
defaults:
  commitment:
    - when: order.category == "business"
      within: PT4H
    - within: P10D
  overrunThreshold: 0.25
  margin: PT0S
  learnedDurations: {percentile: 80, minSamples: 3}
  pendingAutoCancel: P14D
contacts:
  desk: {webhook: "http://127.0.0.1:9/hooks/desk", email: desk@example.net}
rules:
  - name: jeopardy-ladder
    when: order.level in ["inJeopardy", "late"] && order.category == "business"
    ladder:
      - after: PT0S
        actions: [{note: "Escalation level 1: projected to miss the committed date"}]
      - after: PT1H
        actions: [{raisePriority: 1}, {assign: {workGroup: provisioning-leads}}]
      - after: PT2H
        actions: [{notify: desk}]
  - name: pending-too-long
    when: order.state == "pending" && order.timeInState > duration("P3D")
    ladder:
      - after: PT0S
        actions: [{note: "Still waiting for customer information after 3 days"}]
"""


class FakeSender:
    def __init__(self) -> None:
        self.posts: list[tuple[str, bytes, dict[str, str]]] = []

    def post(
        self, url: str, body: bytes, headers: dict[str, str], *, subscriber: str, probing: bool = False
    ) -> Any:
        from provtrack.domain.webhooks import Attempt

        self.posts.append((url, body, headers))
        return Attempt(204)


class FakeMailer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str, str]] = []

    def send(self, to: str, subject: str, text: str) -> None:
        self.sent.append((to, subject, text))


def _nothing(_job: Job, _now: datetime) -> None:
    return None


def fibre_order(**fields: Any) -> dict[str, Any]:
    return {
        "externalId": "BSS-7",
        "category": "residential",
        "serviceOrderItem": [
            {"id": "1", "action": "add", "service": {"serviceSpecification": {"id": "fibre"}}}
        ],
        **fields,
    }


@dataclass
class Harness:
    store: SqlStore
    clock: FakeClock
    worker: Worker
    catalog: Catalog
    api: TestClient
    sender: FakeSender
    mailer: FakeMailer
    policy: Policy
    t0: datetime

    def ctx(self, actor: str = "test") -> Context:
        return Context(now=format_datetime(self.clock.now), actor=actor, new_id=_ids())

    def create(self, **fields: Any) -> str:
        order = orders.create_order(self.store, fibre_order(**fields), ctx=self.ctx())
        self.run()
        return order.id

    def run(self) -> int:
        return self.worker.run_until_idle()

    def at(self, instant: datetime) -> int:
        """Move the clock to `instant` and run what is due then."""
        self.clock.now = instant
        return self.run()

    def order(self, order_id: str) -> ServiceOrder:
        with self.store.transaction(write=False) as tx:
            order = tx.get_order(order_id)
        assert order is not None
        return order

    def level(self, order_id: str) -> str:
        return self.order(order_id).jeopardy_level

    def complete(self, order_id: str, name: str) -> None:
        with self.store.transaction(write=False) as tx:
            plan = tx.plans.get(order_id)
        assert plan is not None
        activity = next(a for a in plan.activities if a.name == name)
        provisioning.record_resource_order(
            self.store,
            activity.id,
            activity.attempt,
            {"id": f"ro-{activity.id}", "state": "completed"},
            self.catalog,
            ctx=self.ctx("inventory"),
        )

    def timeline(self, order_id: str, subject_prefix: str = "escalation[") -> list[Change]:
        with self.store.transaction(write=False) as tx:
            return [c for c in tx.audit_trail(order_id) if c.subject.startswith(subject_prefix)]

    def events(self, order_id: str) -> list[str]:
        with self.store.engine.connect() as conn:
            rows = conn.execute(
                text("SELECT event_type FROM outbox_event WHERE service_order_id = :o ORDER BY id"),
                {"o": order_id},
            )
            return [str(r[0]) for r in rows]

    def jobs(self, kind: str) -> list[dict[str, Any]]:
        return self.store.pending_jobs(kind=kind)


_counter = iter(range(10**9))


def _ids() -> Any:
    return lambda: f"id-{next(_counter):08d}"


@pytest.fixture
def harness(store: SqlStore, clock: FakeClock, database_url: str) -> Iterator[Harness]:
    catalog = parse_catalog_text(CATALOG, source="test-catalog.yaml")
    policy = parse_policy_text(POLICY, source="test-policy.yaml")
    in_force: list[Harness] = []
    monitor = JeopardyMonitor(lambda: in_force[0].policy, email=True)
    store = SqlStore(store.engine, after_change=(monitor.after_change,))
    engine = ProvisioningEngine(store, catalog, client=None)  # type: ignore[arg-type]
    handlers = engine.handlers()
    handlers[provisioning.DISPATCH_JOB] = _nothing
    handlers[provisioning.POLL_JOB] = _nothing
    sender = FakeSender()
    mailer = FakeMailer()
    handlers.update(JeopardyEngine(store, sender, mailer=mailer).handlers())
    worker = Worker(store, handlers, clock=clock, threads=1)
    app = create_app(
        Settings(database_url=database_url), store, clock=clock, jeopardy=monitor, authenticator=AS_ADMIN
    )
    with TestClient(app, base_url="http://testserver") as api:
        in_force.append(Harness(store, clock, worker, catalog, api, sender, mailer, policy, clock.now))
        yield in_force[0]
    worker.stop()
    engine.inventory.close()


def hours(n: float) -> timedelta:
    return timedelta(hours=n)
