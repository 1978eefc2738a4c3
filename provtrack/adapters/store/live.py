"""What the terminal's live view reads: orders per state, and the order state and jeopardy changes
recorded since a given audit record (read-only, from any process on the same database)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Connection, func, select

from provtrack.adapters.store.escalation import OPEN_STATES
from provtrack.adapters.store.tables import audit_record, service_order

WATCHED = ("state", "jeopardyAlert")  # the order-level changes the view shows


@dataclass(frozen=True, slots=True)
class OrderChange:
    """One recorded change of an order's state (or jeopardy level: `attribute` says which)."""

    id: int
    order_id: str
    external_id: str | None
    attribute: str
    old: str | None
    new: str | None
    at: str


def orders_per_state(conn: Connection) -> dict[str, int]:
    rows = conn.execute(select(service_order.c.state, func.count()).group_by(service_order.c.state))
    return {state: int(count) for state, count in rows}


def last_change_id(conn: Connection) -> int:
    return int(conn.execute(select(func.coalesce(func.max(audit_record.c.id), 0))).scalar_one())


def order_changes_since(conn: Connection, after: int, *, limit: int = 500) -> list[OrderChange]:
    """The order state and jeopardy changes recorded after audit record `after`, oldest first."""
    stmt = (
        select(
            audit_record.c.id,
            audit_record.c.service_order_id,
            service_order.c.external_id,
            audit_record.c.attribute,
            audit_record.c.old_value,
            audit_record.c.new_value,
            audit_record.c.at,
        )
        .select_from(
            audit_record.outerjoin(service_order, service_order.c.id == audit_record.c.service_order_id)
        )
        .where(
            audit_record.c.id > after,
            audit_record.c.subject == "serviceOrder",
            audit_record.c.attribute.in_(WATCHED),
        )
        .order_by(audit_record.c.id)
        .limit(limit)
    )
    return [
        OrderChange(
            id=int(row.id),
            order_id=row.service_order_id,
            external_id=row.external_id,
            attribute=row.attribute,
            old=_state_or_level(row.old_value),
            new=_state_or_level(row.new_value),
            at=row.at,
        )
        for row in conn.execute(stmt)
    ]


def jeopardy_of_open_orders(conn: Connection) -> dict[str, str]:
    """The jeopardy level of every open order whose last alert is not `onTrack` (read once, at start)."""
    rows = conn.execute(
        select(service_order.c.id, service_order.c.document).where(service_order.c.state.in_(OPEN_STATES))
    )
    levels: dict[str, str] = {}
    for order_id, document in rows:
        alerts = orjson.loads(document).get("jeopardyAlert") or []
        level = alerts[-1].get("jeopardyType") if alerts else None
        if level and level != "onTrack":
            levels[order_id] = level
    return levels


def _state_or_level(stored: str | None) -> str | None:
    """A recorded value: a state (a JSON string) or a jeopardy alert (its `jeopardyType`)."""
    if stored is None:
        return None
    value: Any = orjson.loads(stored)
    if isinstance(value, dict):
        return str(value.get("jeopardyType"))
    return str(value)
