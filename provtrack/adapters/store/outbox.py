"""The outbox in SQL: events written in the transaction of the change they report, the delivery jobs
that routing asks for, the order history `asOf` reads, and the pruning of delivered events.

The outbox row of an order event names the order version it reports (the document is the service
order row, or its archived copy in `order_history`), so writing an event is one small INSERT. Which
subscription's stream gets which events is decided by `route_events` (domain); this module reads the
active filters and persists what it returns, as delivery jobs (`jobs.schedule`, run-again rule).
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Connection, Text, and_, bindparam, delete, exists, func, insert, select, union_all
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from provtrack.adapters.store import jobs
from provtrack.adapters.store.event_tables import (
    event_dead_letter,
    event_stream,
    event_subscription,
    order_history,
    outbox_event,
)
from provtrack.adapters.store.prepared import Prepared
from provtrack.adapters.store.tables import archived_service_order, service_order
from provtrack.domain.cancellation import CancelServiceOrder
from provtrack.domain.clock import parse_datetime
from provtrack.domain.events import (
    DELIVER_JOB,
    ORDER_RESOURCE,
    TASK_RESOURCE,
    ActiveSubscription,
    RaisedEvents,
    route_events,
)
from provtrack.domain.jobs import JobRequest
from provtrack.domain.model import ServiceOrder

# --- writes from the order transactions (called by SqlTransaction) -------------------------------


@dataclass(frozen=True, slots=True)
class OrderEvents:
    """Events taken from orders, to write: outbox rows, and per order what routing needs."""

    rows: list[tuple[Any, ...]]
    raised: list[RaisedEvents]


def take_order_events(orders: Sequence[ServiceOrder]) -> OrderEvents | None:
    """The events the orders recorded (cleared from them), or None when there are none."""
    rows = [(str(uuid.uuid4()), o.id, e.event_type, e.at, o.version, None) for o in orders for e in o.events]
    if not rows:
        return None
    raised = [
        RaisedEvents(o.id, ORDER_RESOURCE, list(o.events), o.to_document, o.client)
        for o in orders
        if o.events
    ]
    for order in orders:
        order.events.clear()
    return OrderEvents(rows, raised)


def write_order_events(conn: Connection, events: OrderEvents) -> bool:
    """Write the events to the outbox; schedule the streams they concern. True if any job."""
    _insert_events(conn, events.rows)
    return _schedule_streams(conn, events.raised)


def record_task_events(conn: Connection, task: CancelServiceOrder) -> bool:
    """Write a cancel task's events to the outbox; schedule the streams they concern. True if any job."""
    if not task.events:
        return False
    document = task.to_document()
    text_document = orjson.dumps(document).decode()
    _insert_events(
        conn,
        [
            (str(uuid.uuid4()), task.service_order_id, e.event_type, e.at, None, text_document)
            for e in task.events
        ],
    )
    client = conn.execute(
        select(service_order.c.client_id).where(service_order.c.id == task.service_order_id)
    ).scalar()
    raised = RaisedEvents(task.service_order_id, TASK_RESOURCE, list(task.events), lambda: document, client)
    task.events.clear()
    return _schedule_streams(conn, [raised])


# On every save of an order: compiled once and run on the driver (prepared.py).
_EVENT_COLUMNS = ("event_id", "service_order_id", "event_type", "event_time", "order_version", "document")
_INSERT_EVENTS = Prepared(insert(outbox_event).values({name: bindparam(name) for name in _EVENT_COLUMNS}))
_ACTIVE_FILTERS = Prepared(
    select(
        event_subscription.c.id,
        event_subscription.c.query,
        event_subscription.c.paused_until,
        event_subscription.c.client_id,
        event_subscription.c.failures,
    ).where(event_subscription.c.state == "active")
)


def _insert_events(conn: Connection, rows: list[tuple[Any, ...]]) -> None:
    _INSERT_EVENTS.executemany(conn, [dict(zip(_EVENT_COLUMNS, row, strict=True)) for row in rows])


def _schedule_streams(conn: Connection, raised: list[RaisedEvents]) -> bool:
    subscriptions = [ActiveSubscription(*row) for row in _ACTIVE_FILTERS.all(conn)]
    due = route_events(subscriptions, raised)
    for stream in due:
        at = parse_datetime(stream.due_at)
        # Run again: a pending job may be backing off or parked, and keeps its time; a running one
        # must not be deleted when it ends, or these events would wait for the next change.
        request = JobRequest(DELIVER_JOB, stream.key, at, stream.payload, run_again=True)
        jobs.schedule(conn, request, now=at)
    return bool(due)


def archive_order_version(conn: Connection, order_id: str, version: int | None, *, until: str) -> None:
    """Keep the document of `version` (None: the current one) before it is replaced or deleted."""
    params: dict[str, Any] = {"order_id": order_id, "until": until}
    if version is not None:
        params["version"] = version
    _archive_statement(conn.dialect.name, with_version=version is not None).execute(conn, params).close()


@functools.cache
def _archive_statement(dialect: str, *, with_version: bool) -> Prepared:
    # Built once: every save of an order runs it, and building it costs more than SQLite runs it.
    source = select(
        service_order.c.id,
        service_order.c.version,
        bindparam("until", type_=Text),
        service_order.c.document,
    ).where(service_order.c.id == bindparam("order_id"))
    if with_version:
        source = source.where(service_order.c.version == bindparam("version"))
    insert_ = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = insert_(order_history).from_select(
        ["service_order_id", "version", "valid_until", "document"], source
    )
    # Two writers racing on one version: the loser's UPDATE fails on the version check afterwards.
    return Prepared(stmt.on_conflict_do_nothing())


# --- reads: an order version, the order at a moment ----------------------------------------------


def order_version_json(conn: Connection, order_id: str, version: int) -> str | None:
    current = select(service_order.c.document).where(
        service_order.c.id == order_id, service_order.c.version == version
    )
    archived = select(order_history.c.document).where(
        order_history.c.service_order_id == order_id, order_history.c.version == version
    )
    document: str | None = conn.execute(union_all(current, archived).limit(1)).scalar()
    return document


def order_as_of(conn: Connection, order_id: str, at: str) -> tuple[str | None, str | None]:
    """(document valid at `at`, or None; and when the order began, or None if never seen)."""
    archived = conn.execute(
        select(order_history.c.document, order_history.c.valid_until)
        .where(order_history.c.service_order_id == order_id)
        .order_by(order_history.c.version)
    ).all()
    current = conn.execute(select(service_order.c.document).where(service_order.c.id == order_id)).scalar()
    if current is None:  # an archived order's last version
        current = conn.execute(
            select(archived_service_order.c.document).where(archived_service_order.c.id == order_id)
        ).scalar()
    documents = [r.document for r in archived] + ([current] if current is not None else [])
    if not documents:
        return None, None
    began = orjson.loads(documents[0])["orderDate"]
    if at < began:
        return None, began
    for row in archived:
        if at < row.valid_until:
            return row.document, began
    return current, began


# --- pruning --------------------------------------------------------------------------------------


def prune_delivered(conn: Connection, *, before: str, limit: int) -> int:
    """Delete up to `limit` outbox rows older than `before` that nothing needs any more; how many.

    Kept: an event a stream still owes (its delivery job exists and the stream's cursor is before
    it), the event of a dead letter not yet delivered (a replay sends it), and the newest row of all
    (SQLite hands out the ids after the largest one left, and stream cursors are ids). `asOf` and the
    timeline read `order_history` and `audit_record`, which pruning leaves alone.
    """
    return int(conn.execute(_PRUNE, {"before": before, "limit": limit}).rowcount)


def _prune_statement() -> Any:
    event = outbox_event.alias("e")
    stream_key = event_subscription.c.id.concat("/").concat(event.c.service_order_id)
    owed = exists(
        select(1)
        .select_from(
            event_subscription.outerjoin(
                event_stream,
                and_(
                    event_stream.c.subscription_id == event_subscription.c.id,
                    event_stream.c.service_order_id == event.c.service_order_id,
                ),
            )
        )
        .where(
            jobs.exists_for(DELIVER_JOB, stream_key),
            event.c.id > func.coalesce(event_stream.c.delivered_through, event_subscription.c.after_event),
        )
    )
    awaiting_replay = exists(
        select(1).where(
            event_dead_letter.c.outbox_id == event.c.id, event_dead_letter.c.delivered_at.is_(None)
        )
    )
    latest = outbox_event.alias("latest")
    newest = select(func.max(latest.c.id)).scalar_subquery()
    prunable = (
        select(event.c.id)
        .where(
            event.c.event_time < bindparam("before", type_=Text), event.c.id < newest, ~owed, ~awaiting_replay
        )
        .order_by(event.c.id)
        .limit(bindparam("limit"))
    )
    return delete(outbox_event).where(outbox_event.c.id.in_(prunable.scalar_subquery()))


_PRUNE = _prune_statement()
