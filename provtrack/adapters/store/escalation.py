"""Jeopardy and escalation in SQL: the state of each (order, rule) ladder, and how long finished
activities really took (the history learned durations come from).

`SqlJeopardyRecords` works on the connection of the transaction that changes the order, so ladder
state, timers and the order itself commit together.
"""

from __future__ import annotations

import bisect
import dataclasses
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, NamedTuple, TypeVar

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

from provtrack.adapters.store.prepared import Prepared
from provtrack.adapters.store.tables import audit_record, metadata, service_order
from provtrack.domain.clock import format_datetime, parse_datetime
from provtrack.domain.escalation import Escalation
from provtrack.domain.jeopardy import learned_from_sorted
from provtrack.domain.model import ServiceOrder
from provtrack.services.escalation import OrderSnapshot
from provtrack.services.ports import FinishedActivity

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
_DURATIONS = Prepared(
    select(activity_duration.c.finished_at, activity_duration.c.activity_id, activity_duration.c.seconds)
    .where(
        activity_duration.c.service_specification == bindparam("spec"),
        activity_duration.c.activity_name == bindparam("name"),
    )
    .order_by(activity_duration.c.finished_at.desc())
    .limit(HISTORY_WINDOW)
)
# A re-run of an activity keeps its first duration; RETURNING names the rows really inserted.
_DURATION_COLUMNS = ("activity_id", "service_specification", "activity_name", "seconds", "finished_at")
_RECORD_DURATIONS = {
    dialect: Prepared(
        insert(activity_duration)
        .values({name: bindparam(name) for name in _DURATION_COLUMNS})
        .on_conflict_do_nothing(index_elements=["activity_id"])
        .returning(activity_duration.c.activity_id)
    )
    for dialect, insert in (("postgresql", pg_insert), ("sqlite", sqlite_insert))
}
_ESCALATIONS = Prepared(
    select(
        escalation.c.service_order_id,
        escalation.c.rule,
        escalation.c.matched_at,
        escalation.c.steps_fired,
        escalation.c.acknowledged_at,
        escalation.c.acknowledged_by,
    )
    .where(escalation.c.service_order_id == bindparam("order_id"))
    .order_by(escalation.c.rule)
)
OPEN_STATES = (
    "acknowledged",
    "inProgress",
    "pending",
    "held",
    "assessingCancellation",
    "pendingCancellation",
)


class DurationSample(NamedTuple):
    """One finished activity in the history, ordered as `_DURATIONS` orders them (by finished_at)."""

    finished_at: str
    activity_id: str
    seconds: float


class _History:
    """The newest samples of one (specification, activity), as `_DURATIONS` would read them now, and
    their seconds kept sorted: a learned duration is one index, whatever the percentile."""

    __slots__ = ("_ids", "_oldest_first", "_sorted_seconds", "read_at", "window")

    def __init__(self, samples: Iterable[DurationSample], *, read_at: float, window: int) -> None:
        self.read_at = read_at
        self.window = window
        self._oldest_first = sorted(samples)
        self._ids = {s.activity_id for s in self._oldest_first}
        self._sorted_seconds = sorted(s.seconds for s in self._oldest_first)

    def newest_first(self) -> list[float]:
        return [s.seconds for s in reversed(self._oldest_first)]

    def learned_seconds(self, *, percentile: float, min_samples: int) -> float | None:
        return learned_from_sorted(self._sorted_seconds, percentile=percentile, min_samples=min_samples)

    def add(self, sample: DurationSample) -> None:
        """Take a sample in as a read would: once per activity, and only the newest `window` kept."""
        if sample.activity_id in self._ids:
            return  # already in: an earlier attempt of a retried transaction added it
        if len(self._oldest_first) >= self.window and sample < self._oldest_first[0]:
            return  # older than the whole window
        bisect.insort(self._oldest_first, sample)
        bisect.insort(self._sorted_seconds, sample.seconds)
        self._ids.add(sample.activity_id)
        while len(self._oldest_first) > self.window:
            dropped = self._oldest_first.pop(0)
            self._ids.discard(dropped.activity_id)
            del self._sorted_seconds[bisect.bisect_left(self._sorted_seconds, dropped.seconds)]


_T = TypeVar("_T")


class DurationCache:
    """The history of each (specification, activity), kept between transactions of one process.

    Jeopardy asks for a learned duration on every change of every order, so an entry keeps the
    samples with their seconds sorted: a learned duration is one index, not a read and a sort. A
    sample recorded in this process joins its entry at once (once per activity, the window kept, as a
    read would return it), so finishing activities never forces a read; samples recorded by other
    processes show within `max_age`, when the entry is read again. Learned durations are statistics,
    so an estimate that old is as good as a fresh one. Worker threads share the cache: one lock
    guards the entries and their contents, and no query runs under it.
    """

    def __init__(
        self,
        *,
        max_age: float = 30.0,
        window: int = HISTORY_WINDOW,
        clock: Callable[[], float] = time.monotonic,  # seconds, for max_age
    ) -> None:
        self.max_age = max_age
        self.window = window
        self.clock = clock
        self._entries: dict[tuple[str, str], _History] = {}
        self._lock = threading.Lock()

    def samples(self, key: tuple[str, str], read: Callable[[], Iterable[DurationSample]]) -> list[float]:
        """Seconds of the newest samples, newest first."""
        return self._consult(key, read, _History.newest_first)

    def learned_seconds(
        self,
        key: tuple[str, str],
        read: Callable[[], Iterable[DurationSample]],
        *,
        percentile: float,
        min_samples: int,
    ) -> float | None:
        """See `learned_from_sorted`."""
        return self._consult(
            key, read, lambda h: h.learned_seconds(percentile=percentile, min_samples=min_samples)
        )

    def record(self, key: tuple[str, str], samples: Iterable[DurationSample]) -> None:
        """Add samples just recorded to the entry; without one, the next read finds them in the table."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                for sample in samples:
                    entry.add(sample)

    def _consult(
        self,
        key: tuple[str, str],
        read: Callable[[], Iterable[DurationSample]],
        answer: Callable[[_History], _T],
    ) -> _T:
        now = self.clock()
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and now - entry.read_at < self.max_age:
                return answer(entry)
        fresh = _History(read(), read_at=now, window=self.window)  # outside the lock: a query
        with self._lock:
            self._entries[key] = fresh
            return answer(fresh)


Write = Callable[[Connection], object]


class SqlJeopardyRecords:
    """Escalations, learned durations and state history in SQL. Writes go through `write` (the
    transaction's `SqlTransaction.write`: at once, or at the end of an optimistic transaction)."""

    def __init__(
        self,
        conn: Connection,
        *,
        cache: DurationCache | None = None,
        write: Callable[[Write], None] | None = None,
    ) -> None:
        self.conn = conn
        self.cache = cache
        self._write = write or (lambda operation: operation(conn) and None)
        # An order's escalations as this transaction left them: its writes may be queued (optimistic
        # transaction), and a refresh reads them again after changing them.
        self._escalations: dict[str, dict[str, Escalation]] = {}

    def escalations(self, order_id: str) -> list[Escalation]:
        known = self._known(order_id)
        return [dataclasses.replace(known[rule]) for rule in sorted(known)]

    def _known(self, order_id: str) -> dict[str, Escalation]:
        known = self._escalations.get(order_id)
        if known is None:
            known = self._escalations[order_id] = {
                rule: Escalation(
                    order, rule, parse_datetime(matched_at), steps, acknowledged_at, acknowledged_by
                )
                for order, rule, matched_at, steps, acknowledged_at, acknowledged_by in _ESCALATIONS.all(
                    self.conn, {"order_id": order_id}
                )
            }
        return known

    def add_escalation(self, item: Escalation) -> None:
        self._known(item.order_id)[item.rule] = dataclasses.replace(item)
        values = _row(item)
        self._write(lambda conn: conn.execute(escalation.insert().values(**values)))

    def save_escalation(self, item: Escalation) -> None:
        self._known(item.order_id)[item.rule] = dataclasses.replace(item)
        values = _row(item)
        self._write(
            lambda conn: conn.execute(
                update(escalation)
                .where(escalation.c.service_order_id == item.order_id, escalation.c.rule == item.rule)
                .values(**values)
            )
        )

    def delete_escalation(self, order_id: str, rule: str) -> None:
        self._known(order_id).pop(rule, None)
        self._write(
            lambda conn: conn.execute(
                delete(escalation).where(escalation.c.service_order_id == order_id, escalation.c.rule == rule)
            )
        )

    def record_durations(self, finished: Sequence[FinishedActivity]) -> None:
        """Keep how long each activity took; an activity already recorded keeps its first duration."""
        if not finished:
            return
        statement = _RECORD_DURATIONS.get(self.conn.dialect.name, _RECORD_DURATIONS["sqlite"])
        rows = [
            {
                "activity_id": f.activity_id,
                "service_specification": f.specification,
                "activity_name": f.name,
                "seconds": f.seconds,
                "finished_at": f.finished_at,
            }
            for f in finished
        ]
        cache = self.cache

        def record(conn: Connection) -> None:
            inserted = {statement.scalar(conn, row) for row in rows} - {None}
            if cache is None:
                return
            by_kind: dict[tuple[str, str], list[DurationSample]] = {}
            for f in finished:
                if f.activity_id in inserted:
                    sample = DurationSample(f.finished_at, f.activity_id, f.seconds)
                    by_kind.setdefault((f.specification, f.name), []).append(sample)
            for key, samples in by_kind.items():
                cache.record(key, samples)

        self._write(record)

    def durations(self, specification: str, name: str) -> list[float]:
        """Seconds the newest finished activities of this kind took (at most HISTORY_WINDOW), newest
        first."""
        key = (specification, name)
        if self.cache is None:
            return [s.seconds for s in self._history(key)]
        return self.cache.samples(key, lambda: self._history(key))

    def learned_seconds(
        self, specification: str, name: str, *, percentile: float, min_samples: int
    ) -> float | None:
        """That percentile of the seconds the newest finished activities of this kind took, or None
        while fewer than `min_samples` are known (see `learned_from_sorted`)."""
        key = (specification, name)
        if self.cache is None:
            ordered = sorted(s.seconds for s in self._history(key))
            return learned_from_sorted(ordered, percentile=percentile, min_samples=min_samples)
        return self.cache.learned_seconds(
            key, lambda: self._history(key), percentile=percentile, min_samples=min_samples
        )

    def _history(self, key: tuple[str, str]) -> list[DurationSample]:
        rows = _DURATIONS.all(self.conn, {"spec": key[0], "name": key[1]})
        return [
            DurationSample(finished_at, activity_id, seconds) for finished_at, activity_id, seconds in rows
        ]

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
