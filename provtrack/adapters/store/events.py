"""Events in SQL: the outbox, hub subscriptions, delivery streams, dead letters and order history.

The outbox row of an order event names the order version it reports (the document is the service
order row, or its archived copy in `order_history`), so writing an event is one small INSERT. Each
transaction that writes events also asks, for every active subscription whose filter selects one of
them, for the delivery job of the (subscription, order) stream: one job per stream keeps each
order's events in order per subscriber, and a stalled subscriber only stalls its own streams.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Index,
    Integer,
    PrimaryKeyConstraint,
    Table,
    Text,
    bindparam,
    case,
    delete,
    func,
    insert,
    or_,
    select,
    text,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from provtrack.adapters.store.prepared import Prepared
from provtrack.adapters.store.tables import AutoId, job, metadata, service_order
from provtrack.domain.cancellation import CancelServiceOrder
from provtrack.domain.clock import format_datetime, parse_datetime
from provtrack.domain.events import (
    DELIVER_JOB,
    PARK_LIMIT,
    DeadLetter,
    DeliverTo,
    StoredEvent,
    Stream,
    Subscription,
    parse_event_filter,
)
from provtrack.domain.model import OrderEvent, ServiceOrder

outbox_event = Table(
    "outbox_event",
    metadata,
    Column("id", AutoId, primary_key=True, autoincrement=True),
    Column("event_id", Text, nullable=False),
    Column("service_order_id", Text, nullable=False),
    Column("event_type", Text, nullable=False),
    Column("event_time", Text, nullable=False),
    Column("order_version", Integer),  # order events: the payload is this version of the order
    Column("document", Text),  # cancel task events: the task as it was
    Index("ix_outbox_event_service_order_id", "service_order_id", "id"),
)

event_subscription = Table(
    "event_subscription",
    metadata,
    Column("id", Text, primary_key=True),
    Column("callback", Text, nullable=False),
    Column("query", Text),
    Column("deliver_to", Text, nullable=False),
    Column("secret", Text, nullable=False),
    Column("previous_secret", Text),
    Column("previous_secret_until", Text),
    Column("state", Text, nullable=False),  # active | disabled
    Column("disabled_reason", Text),
    Column("created_at", Text, nullable=False),
    Column("after_event", BigInteger, nullable=False),  # outbox id before the subscription existed
    Column("paused_until", Text),  # after a failed attempt: no stream of it posts before then
    Column("failures", Integer, nullable=False),
)

event_stream = Table(
    "event_stream",
    metadata,
    Column("subscription_id", Text, nullable=False),
    Column("service_order_id", Text, nullable=False),
    Column("delivered_through", BigInteger, nullable=False),  # outbox id of the last event handled
    Column("attempts", Integer, nullable=False),
    Column("failing_since", Text),
    Column("last_error", Text),
    PrimaryKeyConstraint("subscription_id", "service_order_id", name="pk_event_stream"),
)

event_dead_letter = Table(
    "event_dead_letter",
    metadata,
    Column("id", AutoId, primary_key=True, autoincrement=True),
    Column("subscription_id", Text, nullable=False),
    Column("outbox_id", BigInteger, nullable=False),
    Column("service_order_id", Text, nullable=False),
    Column("event_type", Text, nullable=False),
    Column("dead_at", Text, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("last_error", Text, nullable=False),
    Column("replayed_at", Text),
    Column("delivered_at", Text),
    Index("ix_event_dead_letter_subscription_id", "subscription_id", "id"),
)

order_history = Table(
    "order_history",
    metadata,
    Column("service_order_id", Text, nullable=False),
    Column("version", Integer, nullable=False),
    Column("valid_until", Text, nullable=False),  # the moment the next version replaced it
    Column("document", Text, nullable=False),
    PrimaryKeyConstraint("service_order_id", "version", name="pk_order_history"),
)


# --- writes from the order transactions (called by SqlTransaction) -------------------------------


@dataclass(frozen=True, slots=True)
class OrderEvents:
    """Events taken from orders, to write: outbox rows, and per order what routing needs."""

    rows: list[tuple[Any, ...]]
    orders: list[tuple[str, list[OrderEvent], Callable[[], dict[str, Any]]]]  # id, events, document


def take_order_events(orders: Sequence[ServiceOrder]) -> OrderEvents | None:
    """The events the orders recorded (cleared from them), or None when there are none."""
    rows = [(str(uuid.uuid4()), o.id, e.event_type, e.at, o.version, None) for o in orders for e in o.events]
    if not rows:
        return None
    taken = [(o.id, list(o.events), o.to_document) for o in orders if o.events]
    for order in orders:
        order.events.clear()
    return OrderEvents(rows, taken)


def write_order_events(conn: Connection, events: OrderEvents) -> bool:
    """Write the events to the outbox; schedule the streams they concern. True if any job."""
    _insert_events(conn, events.rows)
    scheduled = False
    subscriptions = _active_filters(conn)
    if subscriptions:
        for order_id, order_events, document in events.orders:
            scheduled |= _route(
                conn,
                subscriptions=subscriptions,
                order_id=order_id,
                events=order_events,
                resource="serviceOrder",
                document=document(),
            )
    return scheduled


def record_task_events(conn: Connection, task: CancelServiceOrder) -> bool:
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
    subscriptions = _active_filters(conn)
    scheduled = _route(
        conn,
        subscriptions=subscriptions,
        order_id=task.service_order_id,
        events=task.events,
        resource="cancelServiceOrder",
        document=document,
    )
    task.events.clear()
    return scheduled


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


# On every save of an order: compiled once and run on the driver (prepared.py).
_EVENT_COLUMNS = ("event_id", "service_order_id", "event_type", "event_time", "order_version", "document")
_INSERT_EVENTS = Prepared(insert(outbox_event).values({name: bindparam(name) for name in _EVENT_COLUMNS}))
_ACTIVE_FILTERS = Prepared(
    select(event_subscription.c.id, event_subscription.c.query, event_subscription.c.paused_until).where(
        event_subscription.c.state == "active"
    )
)


def _insert_events(conn: Connection, rows: list[tuple[Any, ...]]) -> None:
    _INSERT_EVENTS.executemany(conn, [dict(zip(_EVENT_COLUMNS, row, strict=True)) for row in rows])


def _active_filters(conn: Connection) -> list[tuple[str, str | None, str | None]]:
    return _ACTIVE_FILTERS.all(conn)


def _route(
    conn: Connection,
    *,
    subscriptions: list[tuple[str, str | None, str | None]],
    order_id: str,
    events: list[OrderEvent],
    resource: str,
    document: dict[str, Any],
) -> bool:
    scheduled = False
    for subscription_id, query, paused_until in subscriptions:
        event_filter = parse_event_filter(query)
        selected = any(
            event_filter.matches(
                {
                    "eventType": e.event_type,
                    "eventTime": e.at,
                    "correlationId": order_id,
                    "event": {resource: document},
                }
            )
            for e in events
        )
        if selected:
            due = events[-1].at
            if paused_until and paused_until > due:
                # A failing subscriber's new streams park at once; a delivery to it that succeeds
                # wakes them. (PostgreSQL: a wake racing this transaction is missed, for PARK_LIMIT.)
                due = format_datetime(parse_datetime(due) + PARK_LIMIT)
            schedule_stream(conn, subscription_id, order_id, now=due)
            scheduled = True
    return scheduled


def schedule_stream(conn: Connection, subscription_id: str, order_id: str, *, now: str) -> None:
    """Ask for the stream's delivery job. A pending one (maybe backing off) is left alone; a running
    one is moved so the worker runs it again when it ends instead of deleting it."""
    later = format_datetime(_parse(now) + timedelta(milliseconds=1))
    conn.execute(
        text(
            "INSERT INTO job (kind, key, due_at, payload, attempts, created_at) "
            "VALUES (:kind, :key, :due, :payload, 0, :due) "
            "ON CONFLICT (kind, key) DO UPDATE SET due_at = "
            "CASE WHEN job.due_at = :due THEN :later ELSE :due END "
            "WHERE job.lease_owner IS NOT NULL"
        ),
        {
            "kind": DELIVER_JOB,
            "key": stream_key(subscription_id, order_id),
            "due": now,
            "later": later,
            "payload": orjson.dumps({"subscription": subscription_id, "order": order_id}).decode(),
        },
    )


def stream_key(subscription_id: str, order_id: str) -> str:
    return f"{subscription_id}/{order_id}"


def _parse(stamp: str) -> datetime:
    return parse_datetime(stamp)


# --- the events side of a transaction ------------------------------------------------------------


class SqlEventsTransaction:
    """Subscriptions, streams, dead letters and history, on the connection of one transaction."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    # subscriptions

    def add_subscription(self, subscription: Subscription) -> None:
        self.conn.execute(insert(event_subscription).values(**_subscription_row(subscription)))

    def get_subscription(self, subscription_id: str) -> Subscription | None:
        row = self.conn.execute(
            select(event_subscription).where(event_subscription.c.id == subscription_id)
        ).first()
        if row is None:
            return None
        values = dict(row._mapping)
        values["deliver_to"] = DeliverTo(values["deliver_to"])
        return Subscription(**values)

    def pause_subscription(self, subscription_id: str, *, until: str, failed: bool = True) -> None:
        """Hold the subscriber's streams until `until` (a pause is extended, never shortened)."""
        paused = event_subscription.c.paused_until
        self.conn.execute(
            update(event_subscription)
            .where(event_subscription.c.id == subscription_id)
            .values(
                paused_until=case((or_(paused.is_(None), paused < until), until), else_=paused),
                failures=event_subscription.c.failures + (1 if failed else 0),
            )
        )

    def resume_subscription(self, subscription_id: str, *, now: str) -> None:
        """A delivery succeeded: if the subscriber was paused, clear that and wake its parked streams."""
        resumed = self.conn.execute(
            update(event_subscription)
            .where(
                event_subscription.c.id == subscription_id,
                or_(event_subscription.c.paused_until.is_not(None), event_subscription.c.failures > 0),
            )
            .values(paused_until=None, failures=0)
        ).rowcount
        if not resumed:
            return
        # Parked streams, and those parking right now (still leased: the worker then sees the new due
        # time, keeps the job and runs it again).
        later = format_datetime(parse_datetime(now) + timedelta(milliseconds=1))
        self.conn.execute(
            update(job)
            .where(
                job.c.kind == DELIVER_JOB,
                job.c.key.startswith(f"{subscription_id}/", autoescape=True),
                or_(job.c.due_at > now, job.c.lease_owner.is_not(None)),
            )
            .values(due_at=case((job.c.due_at == now, later), else_=now))
        )

    def park_stream(self, subscription_id: str, order_id: str, *, until: str, now: str) -> bool:
        """Move the stream's job to `until` if its subscriber is still paused; False if it is not."""
        paused = (
            select(event_subscription.c.id)
            .where(event_subscription.c.id == subscription_id, event_subscription.c.paused_until > now)
            .exists()
        )
        result = self.conn.execute(
            update(job)
            .where(job.c.kind == DELIVER_JOB, job.c.key == stream_key(subscription_id, order_id), paused)
            .values(due_at=until)
        )
        return result.rowcount == 1

    def disable_subscription(self, subscription_id: str, *, reason: str) -> None:
        self.conn.execute(
            update(event_subscription)
            .where(event_subscription.c.id == subscription_id)
            .values(state="disabled", disabled_reason=reason)
        )

    def save_subscription(self, subscription: Subscription) -> None:
        self.conn.execute(
            update(event_subscription)
            .where(event_subscription.c.id == subscription.id)
            .values(**_subscription_row(subscription))
        )

    def list_subscriptions(self) -> list[Subscription]:
        ids = self.conn.execute(select(event_subscription.c.id).order_by(event_subscription.c.created_at))
        return [s for i in ids.scalars() if (s := self.get_subscription(i)) is not None]

    def delete_subscription(self, subscription_id: str) -> bool:
        deleted = self.conn.execute(
            delete(event_subscription).where(event_subscription.c.id == subscription_id)
        ).rowcount
        self.conn.execute(delete(event_stream).where(event_stream.c.subscription_id == subscription_id))
        self.conn.execute(
            delete(job).where(job.c.kind == DELIVER_JOB, job.c.key.startswith(f"{subscription_id}/"))
        )
        return bool(deleted)

    def last_event_id(self) -> int:
        return int(self.conn.execute(select(func.coalesce(func.max(outbox_event.c.id), 0))).scalar_one())

    # streams

    def get_stream(self, subscription: Subscription, order_id: str) -> Stream:
        row = self.conn.execute(
            select(event_stream).where(
                event_stream.c.subscription_id == subscription.id,
                event_stream.c.service_order_id == order_id,
            )
        ).first()
        if row is None:
            return Stream(subscription.id, order_id, subscription.after_event)
        return Stream(**dict(row._mapping), exists=True)

    def save_stream(self, stream: Stream) -> None:
        values = {
            "delivered_through": stream.delivered_through,
            "attempts": stream.attempts,
            "failing_since": stream.failing_since,
            "last_error": stream.last_error,
        }
        if stream.exists:
            self.conn.execute(
                update(event_stream)
                .where(
                    event_stream.c.subscription_id == stream.subscription_id,
                    event_stream.c.service_order_id == stream.service_order_id,
                )
                .values(**values)
            )
        else:
            self.conn.execute(
                insert(event_stream).values(
                    subscription_id=stream.subscription_id,
                    service_order_id=stream.service_order_id,
                    **values,
                )
            )
            stream.exists = True

    def events_after(self, order_id: str, after: int, *, limit: int) -> list[StoredEvent]:
        rows = self.conn.execute(
            select(outbox_event)
            .where(outbox_event.c.service_order_id == order_id, outbox_event.c.id > after)
            .order_by(outbox_event.c.id)
            .limit(limit)
        ).all()
        return [self._stored(r) for r in rows]

    def get_event(self, outbox_id: int) -> StoredEvent | None:
        row = self.conn.execute(select(outbox_event).where(outbox_event.c.id == outbox_id)).first()
        return None if row is None else self._stored(row)

    def _stored(self, row: Any) -> StoredEvent:
        if row.document is not None:
            document = orjson.loads(row.document)
        else:
            text_document = self.order_version_json(row.service_order_id, row.order_version)
            document = None if text_document is None else orjson.loads(text_document)
        return StoredEvent(
            row.id, row.event_id, row.service_order_id, row.event_type, row.event_time, document
        )

    def order_version_json(self, order_id: str, version: int) -> str | None:
        current = select(service_order.c.document).where(
            service_order.c.id == order_id, service_order.c.version == version
        )
        archived = select(order_history.c.document).where(
            order_history.c.service_order_id == order_id, order_history.c.version == version
        )
        return self.conn.execute(union_all(current, archived).limit(1)).scalar()

    # dead letters

    def add_dead_letter(
        self, stream: Stream, event: StoredEvent, *, now: str, attempts: int, error: str
    ) -> None:
        self.conn.execute(
            insert(event_dead_letter).values(
                subscription_id=stream.subscription_id,
                outbox_id=event.id,
                service_order_id=event.service_order_id,
                event_type=event.event_type,
                dead_at=now,
                attempts=attempts,
                last_error=error[:2000],
            )
        )

    def dead_letters(
        self, *, subscription_id: str | None = None, pending_only: bool = False
    ) -> list[DeadLetter]:
        stmt = select(event_dead_letter).order_by(event_dead_letter.c.id)
        if subscription_id is not None:
            stmt = stmt.where(event_dead_letter.c.subscription_id == subscription_id)
        if pending_only:
            stmt = stmt.where(event_dead_letter.c.delivered_at.is_(None))
        return [DeadLetter(**dict(r._mapping)) for r in self.conn.execute(stmt)]

    def get_dead_letter(self, dead_letter_id: int) -> DeadLetter | None:
        row = self.conn.execute(
            select(event_dead_letter).where(event_dead_letter.c.id == dead_letter_id)
        ).first()
        return None if row is None else DeadLetter(**dict(row._mapping))

    def update_dead_letter(self, dead_letter_id: int, **values: Any) -> None:
        self.conn.execute(
            update(event_dead_letter).where(event_dead_letter.c.id == dead_letter_id).values(**values)
        )

    # history

    def order_as_of(self, order_id: str, at: str) -> tuple[str | None, str | None]:
        """(document valid at `at`, or None; and when the order began, or None if never seen)."""
        archived = self.conn.execute(
            select(order_history.c.document, order_history.c.valid_until)
            .where(order_history.c.service_order_id == order_id)
            .order_by(order_history.c.version)
        ).all()
        current = self.conn.execute(
            select(service_order.c.document).where(service_order.c.id == order_id)
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


def _subscription_row(subscription: Subscription) -> dict[str, Any]:
    return {
        "id": subscription.id,
        "callback": subscription.callback,
        "query": subscription.query,
        "deliver_to": subscription.deliver_to.value,
        "secret": subscription.secret,
        "previous_secret": subscription.previous_secret,
        "previous_secret_until": subscription.previous_secret_until,
        "state": subscription.state,
        "disabled_reason": subscription.disabled_reason,
        "created_at": subscription.created_at,
        "after_event": subscription.after_event,
        "paused_until": subscription.paused_until,
        "failures": subscription.failures,
    }
