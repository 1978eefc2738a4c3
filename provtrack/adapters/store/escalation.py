"""Jeopardy and escalation in SQL: the state of each (order, rule) ladder, and how long finished
activities really took (the history learned durations come from).

`SqlJeopardyRecords` works on the connection of the transaction that changes the order, so ladder
state, timers and the order itself commit together.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import orjson
from sqlalchemy import (
    Column,
    Connection,
    Float,
    Index,
    Integer,
    PrimaryKeyConstraint,
    Table,
    Text,
    bindparam,
    delete,
    func,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from provtrack.adapters.store.tables import audit_record, metadata, service_order
from provtrack.domain.clock import format_datetime, parse_datetime
from provtrack.domain.escalation import Escalation
from provtrack.domain.model import ServiceOrder
from provtrack.services.escalation import FinishedActivity, OrderSnapshot

escalation = Table(
    "escalation",
    metadata,
    Column("service_order_id", Text, nullable=False),
    Column("rule", Text, nullable=False),
    Column("matched_at", Text, nullable=False),
    Column("steps_fired", Integer, nullable=False),
    Column("acknowledged_at", Text),
    Column("acknowledged_by", Text),
    PrimaryKeyConstraint("service_order_id", "rule", name="pk_escalation"),
)

# One row per finished activity: learned durations read the newest few of a (specification, activity).
activity_duration = Table(
    "activity_duration",
    metadata,
    Column("activity_id", Text, primary_key=True),
    Column("service_specification", Text, nullable=False),
    Column("activity_name", Text, nullable=False),
    Column("seconds", Float, nullable=False),
    Column("finished_at", Text, nullable=False),
    Index("ix_activity_duration_spec_name", "service_specification", "activity_name", "finished_at"),
)

HISTORY_WINDOW = 500  # the newest samples per (specification, activity): recent behaviour, bounded read
# Built once: every change of an order reads it (jeopardy), and building it cost more than running it.
_DURATIONS = (
    select(activity_duration.c.seconds)
    .where(
        activity_duration.c.service_specification == bindparam("spec"),
        activity_duration.c.activity_name == bindparam("name"),
    )
    .order_by(activity_duration.c.finished_at.desc())
    .limit(HISTORY_WINDOW)
)
OPEN_STATES = (
    "acknowledged",
    "inProgress",
    "pending",
    "held",
    "assessingCancellation",
    "pendingCancellation",
)


class DurationCache:
    """The history of each (specification, activity), kept between transactions of one process.

    Reading it on every change of every order cost a quarter of the engine's CPU. A sample recorded
    in this process drops its entry at once; samples recorded by other processes show within
    `max_age`. Learned durations are statistics, so an estimate that old is as good as a fresh one.
    """

    def __init__(self, *, max_age: float = 30.0) -> None:
        self.max_age = max_age
        self._entries: dict[tuple[str, str], tuple[float, list[float]]] = {}
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str], read: Callable[[], list[float]]) -> list[float]:
        now = time.monotonic()
        with self._lock:
            entry = self._entries.get(key)
        if entry is not None and now - entry[0] < self.max_age:
            return entry[1]
        samples = read()
        with self._lock:
            self._entries[key] = (now, samples)
        return samples

    def forget(self, keys: Iterable[tuple[str, str]]) -> None:
        with self._lock:
            for key in keys:
                self._entries.pop(key, None)


class SqlJeopardyRecords:
    def __init__(self, conn: Connection, *, cache: DurationCache | None = None) -> None:
        self.conn = conn
        self.cache = cache

    def escalations(self, order_id: str) -> list[Escalation]:
        rows = self.conn.execute(
            select(escalation).where(escalation.c.service_order_id == order_id).order_by(escalation.c.rule)
        ).all()
        return [
            Escalation(
                r.service_order_id,
                r.rule,
                parse_datetime(r.matched_at),
                r.steps_fired,
                r.acknowledged_at,
                r.acknowledged_by,
            )
            for r in rows
        ]

    def add_escalation(self, item: Escalation) -> None:
        self.conn.execute(escalation.insert().values(**_row(item)))

    def save_escalation(self, item: Escalation) -> None:
        values = _row(item)
        self.conn.execute(
            update(escalation)
            .where(escalation.c.service_order_id == item.order_id, escalation.c.rule == item.rule)
            .values(**values)
        )

    def delete_escalation(self, order_id: str, rule: str) -> None:
        self.conn.execute(
            delete(escalation).where(escalation.c.service_order_id == order_id, escalation.c.rule == rule)
        )

    def record_durations(self, finished: Sequence[FinishedActivity]) -> None:
        if not finished:
            return
        if self.cache is not None:
            self.cache.forget((f.specification, f.name) for f in finished)
        insert = pg_insert if self.conn.dialect.name == "postgresql" else sqlite_insert
        statement = insert(activity_duration).on_conflict_do_nothing(index_elements=["activity_id"])
        self.conn.execute(
            statement,
            [
                {
                    "activity_id": f.activity_id,
                    "service_specification": f.specification,
                    "activity_name": f.name,
                    "seconds": f.seconds,
                    "finished_at": f.finished_at,
                }
                for f in finished
            ],
        )

    def durations(self, specification: str, name: str) -> list[float]:
        """Seconds the newest finished activities of this kind took (at most HISTORY_WINDOW)."""

        def read() -> list[float]:
            return list(self.conn.execute(_DURATIONS, {"spec": specification, "name": name}).scalars())

        if self.cache is None:
            return read()
        return self.cache.get((specification, name), read)

    def state_since(self, order_id: str) -> str | None:
        """When the order entered its current state: its last recorded state change."""
        value = self.conn.execute(
            select(audit_record.c.at)
            .where(
                audit_record.c.service_order_id == order_id,
                audit_record.c.subject == "serviceOrder",
                audit_record.c.attribute == "state",
            )
            .order_by(audit_record.c.id.desc())
            .limit(1)
        ).scalar()
        return None if value is None else str(value)


def _row(item: Escalation) -> dict[str, Any]:
    return {
        "service_order_id": item.order_id,
        "rule": item.rule,
        "matched_at": format_datetime(item.matched_at),
        "steps_fired": item.fired,
        "acknowledged_at": item.acknowledged_at,
        "acknowledged_by": item.acknowledged_by,
    }


def open_order_snapshots(conn: Connection, *, batch: int = 2000) -> Iterator[list[OrderSnapshot]]:
    """Every open order with when it entered its state and its escalations, in batches by id
    (keyset paging, three queries per batch: no offset scans, no query per order)."""
    after = ""
    while True:
        rows = conn.execute(
            select(service_order.c.id, service_order.c.document)
            .where(service_order.c.id > after, service_order.c.state.in_(OPEN_STATES))
            .order_by(service_order.c.id)
            .limit(batch)
        ).all()
        if not rows:
            return
        ids = [str(r.id) for r in rows]
        since = dict(
            conn.execute(
                select(audit_record.c.service_order_id, func.max(audit_record.c.at))
                .where(
                    audit_record.c.service_order_id.in_(ids),
                    audit_record.c.subject == "serviceOrder",
                    audit_record.c.attribute == "state",
                )
                .group_by(audit_record.c.service_order_id)
            ).all()
        )
        ladders: dict[str, list[Escalation]] = {}
        for r in conn.execute(select(escalation).where(escalation.c.service_order_id.in_(ids))):
            ladders.setdefault(r.service_order_id, []).append(
                Escalation(
                    r.service_order_id,
                    r.rule,
                    parse_datetime(r.matched_at),
                    r.steps_fired,
                    r.acknowledged_at,
                    r.acknowledged_by,
                )
            )
        snapshots = []
        for r in rows:
            order = ServiceOrder.from_document(orjson.loads(r.document))
            snapshots.append(
                OrderSnapshot(
                    order, parse_datetime(since.get(r.id) or order.order_date), ladders.get(r.id, ())
                )
            )
        yield snapshots
        after = ids[-1]


def count_open_orders(conn: Connection) -> int:
    return int(
        conn.execute(
            select(func.count()).select_from(service_order).where(service_order.c.state.in_(OPEN_STATES))
        ).scalar_one()
    )
