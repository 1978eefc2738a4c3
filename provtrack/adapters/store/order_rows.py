"""The service order and audit rows of the SQL store: the statements the store runs on every
change (compiled once, run on the driver: prepared.py), and how an order becomes a row."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import bindparam, insert, select, update

from provtrack.adapters.store.prepared import Prepared
from provtrack.adapters.store.tables import audit_record, service_order
from provtrack.domain.clock import format_datetime, parse_datetime
from provtrack.domain.model import Change, ServiceOrder
from provtrack.domain.states import OrderState

ORDER_COLUMNS: dict[tuple[str, ...], str] = {
    ("id",): "id",
    ("state",): "state",
    ("orderDate",): "order_date",
    ("externalId",): "external_id",
    ("category",): "category",
    ("priority",): "priority",
    ("requestedCompletionDate",): "requested_completion_date",
}
TASK_COLUMNS: dict[tuple[str, ...], str] = {
    ("id",): "id",
    ("state",): "state",
    ("serviceOrder", "id"): "service_order_id",
}
# The most frequent statements, compiled once and run on the driver (prepared.py).
ORDER_DOCUMENT = Prepared(select(service_order.c.document).where(service_order.c.id == bindparam("order_id")))
ORDER_ENTRY = Prepared(
    select(service_order.c.document, service_order.c.version, service_order.c.client_id).where(
        service_order.c.id == bindparam("order_id")
    )
)
ORDER_VERSION = Prepared(select(service_order.c.version).where(service_order.c.id == bindparam("order_id")))
ORDER_ROW = Prepared(
    select(
        service_order.c.document,
        service_order.c.version,
        service_order.c.state_before_cancellation,
        service_order.c.client_id,
    ).where(service_order.c.id == bindparam("order_id"))
)
_ORDER_COLUMNS = (
    "state",
    "order_date",
    "external_id",
    "category",
    "priority",
    "requested_completion_date",
    "state_before_cancellation",
    "version",
    "document",
    "jeopardy_level",
    "jeopardized",
    "completion_date",
    "cycle_seconds",
    "service_specification",
)
SAVE_ORDER = Prepared(
    update(service_order)
    .where(service_order.c.id == bindparam("b_order_id"), service_order.c.version == bindparam("b_expected"))
    .values({name: bindparam(name) for name in _ORDER_COLUMNS})
)
INSERT_ORDER = Prepared(
    insert(service_order).values({name: bindparam(name) for name in ("id", "client_id", *_ORDER_COLUMNS)})
)
_AUDIT_COLUMNS = ("service_order_id", "subject", "attribute", "old_value", "new_value", "at", "actor")
AUDIT_INSERT = Prepared(insert(audit_record).values({name: bindparam(name) for name in _AUDIT_COLUMNS}))


def dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def order_row(order: ServiceOrder) -> dict[str, Any]:
    attrs = order.attributes
    priority = attrs.get("priority")
    return {
        "state": order.state.value,
        "order_date": order.order_date,
        "external_id": text_or_none(attrs.get("externalId")),
        "category": text_or_none(attrs.get("category")),
        "priority": None if priority is None else str(priority),
        "requested_completion_date": attrs.get("requestedCompletionDate"),
        "state_before_cancellation": (
            order.state_before_cancellation.value if order.state_before_cancellation else None
        ),
        "version": order.version,
        "document": dumps(order.to_document()),
        **metric_columns(order),
    }


JEOPARDIZED = frozenset({"inJeopardy", "late"})


def metric_columns(order: ServiceOrder) -> dict[str, Any]:
    """The columns the dashboard's aggregates read (adapters/store/metrics.py), from the order."""
    completed = order.completion_date if order.state == OrderState.COMPLETED else None
    cycle = None
    if completed is not None:
        cycle = (parse_datetime(completed) - parse_datetime(order.order_date)).total_seconds()
    specifications = sorted(
        {
            str(spec["id"])
            for item in order.all_items()
            if isinstance(spec := (item.attributes.get("service") or {}).get("serviceSpecification"), dict)
            and spec.get("id")
        }
    )
    return {
        "jeopardy_level": order.jeopardy_level,
        "jeopardized": int(any(a.get("jeopardyType") in JEOPARDIZED for a in order.jeopardy_alerts)),
        "completion_date": completed,
        "cycle_seconds": cycle,
        "service_specification": " + ".join(specifications) or None,
    }


def audit_rows(order_id: str, changes: list[Change]) -> list[dict[str, Any]]:
    return [
        {
            "service_order_id": order_id,
            "subject": c.subject,
            "attribute": c.attribute,
            "old_value": None if c.old is None else dumps(c.old),
            "new_value": None if c.new is None else dumps(c.new),
            "at": c.at,
            "actor": c.actor,
        }
        for c in changes
    ]


def change_time(order: ServiceOrder) -> str:
    """When a save happens: the time of the changes it records (the domain carries `now`)."""
    if order.changes:
        return order.changes[-1].at
    if order.events:
        return order.events[-1].at
    # A save that records nothing (engine bookkeeping): the wall clock is the best we have.
    return format_datetime(datetime.now(UTC))


def text_or_none(value: Any) -> str | None:
    return None if value is None else str(value)
