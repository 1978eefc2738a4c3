"""Domain-level builders for unit tests: accepted orders, timestamps, walks along the table."""

from __future__ import annotations

from typing import Any

from hypothesis import settings

from provtrack.domain.model import ServiceOrder
from provtrack.domain.states import TRANSITIONS, OrderState
from tests.factories import item, order_body

S = OrderState

# Modest example counts; no deadline, since a loaded machine would make timing failures flaky.
PROPERTY = settings(max_examples=100, deadline=None)
WALK = settings(max_examples=150, deadline=None)
ACTOR = "tester"
T0 = "2026-11-27T09:00:00.000Z"


def at(minute: int) -> str:
    """A canonical timestamp `minute` minutes after T0 (within the same day)."""
    hours, minutes = divmod(minute, 60)
    return f"2026-11-27T{9 + hours:02d}:{minutes:02d}:00.000Z"


def accepted_order(
    *items: dict[str, Any], order_id: str = "so-1", now: str = T0, **fields: Any
) -> ServiceOrder:
    """A freshly accepted order; one `add` item unless items are given."""
    body = order_body(*(items or (item("1"),)), **fields)
    return ServiceOrder.accept(body, order_id=order_id, now=now, actor=ACTOR)


def order_with_items(count: int, **fields: Any) -> ServiceOrder:
    return accepted_order(*(item(str(n)) for n in range(1, count + 1)), **fields)


def order_in(state: OrderState, *, items: int = 1) -> ServiceOrder:
    """An accepted order moved (by the order itself, through the table) into `state`."""
    order = order_with_items(items)
    for step, target in enumerate(path_to(state), start=1):
        order.move_to(target, now=at(step), actor=ACTOR)
    return order


def path_to(state: OrderState) -> list[OrderState]:
    """A sequence of order moves from acknowledged to `state`, through the table."""
    if state == S.ACKNOWLEDGED:
        return []
    if state in TRANSITIONS[S.ACKNOWLEDGED]:
        return [state]
    if state == S.PENDING_CANCELLATION:
        return [S.ASSESSING_CANCELLATION, state]
    assert state in TRANSITIONS[S.IN_PROGRESS], state
    return [S.IN_PROGRESS, state]


def state_changes(order: ServiceOrder, subject: str = "serviceOrder") -> list[tuple[str | None, str]]:
    return [(c.old, c.new) for c in order.changes if c.subject == subject and c.attribute == "state"]
