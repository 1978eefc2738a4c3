"""Escalation inside the engine's optimistic transactions: a refresh that changes an escalation and
evaluates the rules again sees its own change, though the write is only queued."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from provtrack.adapters.catalog_file import parse_catalog_text
from provtrack.adapters.policy_file import parse_policy_text
from provtrack.adapters.store.repository import SqlStore
from provtrack.domain.clock import format_datetime
from provtrack.domain.states import OrderState
from provtrack.services import orders, provisioning
from provtrack.services.jeopardy import JeopardyMonitor
from provtrack.services.ports import Context
from tests.integration.jeopardy_harness import CATALOG, fibre_order

# A rule whose first step holds the order: the hold moves the order, so the refresh evaluates the
# rules a second time, reading the escalations it has just added.
POLICY = """
defaults:
  commitment:
    - within: P10D
rules:
  - name: hold-business
    when: order.category == "business"
    ladder:
      - after: PT0S
        actions: [{hold: "held by rule"}]
"""


@pytest.fixture
def monitored(store: SqlStore) -> SqlStore:
    """A store whose orders are watched under POLICY."""
    policy = parse_policy_text(POLICY, source="policy.yaml")
    return SqlStore(store.engine, after_change=(JeopardyMonitor(lambda: policy).after_change,))


def test_a_ladder_step_that_holds_the_order_is_planned_and_escalated_once(monitored: SqlStore) -> None:
    ids = iter(range(1_000_000))
    ctx = Context(
        now=format_datetime(datetime(2026, 1, 5, 9, tzinfo=UTC)),
        actor="test",
        new_id=lambda: f"id-{next(ids)}",
    )
    order = orders.create_order(monitored, fibre_order(category="business"), ctx=ctx)

    planned = provisioning.plan_order(
        monitored, order.id, parse_catalog_text(CATALOG, source="catalog.yaml"), ctx=ctx
    )

    assert planned.outcome == "planned and started"
    with monitored.transaction(write=False) as tx:
        saved = tx.get_order(order.id)
        assert saved is not None
        assert saved.state == OrderState.HELD
        assert tx.plans.get(order.id) is not None
        assert [e.rule for e in tx.jeopardy.escalations(order.id)] == ["hold-business"]
