"""The SQL store: transactions over SQLite or PostgreSQL holding orders, cancel tasks and audit rows.

A write transaction on SQLite also holds the writer lock (`database.WriterLock`, across threads and
processes): SQLite has one writer at a time, and queueing writers is far cheaper than letting them
spin on SQLITE_BUSY.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, bindparam, delete, func, insert, select, update

from provtrack.adapters.store import events as event_store
from provtrack.adapters.store import jobs
from provtrack.adapters.store.database import WriterLock, is_sqlite, sqlite_file
from provtrack.adapters.store.filters import FilterCompiler
from provtrack.adapters.store.prepared import Prepared
from provtrack.adapters.store.provisioning import PlanQueries
from provtrack.adapters.store.tables import audit_record, cancel_service_order, service_order
from provtrack.domain.cancellation import CancelServiceOrder
from provtrack.domain.clock import format_datetime
from provtrack.domain.jobs import Job, JobRequest
from provtrack.domain.model import Change, ServiceOrder
from provtrack.domain.query import Query
from provtrack.services.ports import ConcurrentUpdate, Page

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
ORDER_ROW = Prepared(
    select(
        service_order.c.document, service_order.c.version, service_order.c.state_before_cancellation
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
)
SAVE_ORDER = Prepared(
    update(service_order)
    .where(service_order.c.id == bindparam("b_order_id"), service_order.c.version == bindparam("b_expected"))
    .values({name: bindparam(name) for name in _ORDER_COLUMNS})
)
INSERT_ORDER = Prepared(
    insert(service_order).values({name: bindparam(name) for name in ("id", *_ORDER_COLUMNS)})
)
_AUDIT_COLUMNS = ("service_order_id", "subject", "attribute", "old_value", "new_value", "at", "actor")
AUDIT_INSERT = Prepared(insert(audit_record).values({name: bindparam(name) for name in _AUDIT_COLUMNS}))


def dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


JOBS_CHANNEL = "provtrack_jobs"

# SQLite: connections kept open between transactions, for writing and for reading, per engine (all
# the stores over one engine share them). list.pop and list.append are atomic: no lock.
_IDLE: weakref.WeakKeyDictionary[Engine, dict[bool, list[Connection]]] = weakref.WeakKeyDictionary()


def _idle_connections(engine: Engine) -> dict[bool, list[Connection]]:
    return _IDLE.setdefault(engine, {True: [], False: []})


class SqlStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sqlite = is_sqlite(engine)
        self._write_lock = WriterLock(sqlite_file(engine))
        self._idle = _idle_connections(engine) if self.sqlite else {}
        # Set after a commit that scheduled jobs: wakes this process's worker at once.
        self.jobs_committed = threading.Event()

    @contextmanager
    def transaction(self, *, write: bool) -> Iterator[SqlTransaction]:
        if write and self.sqlite:
            with self._write_lock:
                yield from self._transaction(write=True)
        else:
            yield from self._transaction(write=write)

    def _transaction(self, *, write: bool) -> Iterator[SqlTransaction]:
        if self.sqlite:
            yield from self._sqlite_transaction(write=write)
            return
        with self.engine.connect() as conn, conn.begin():
            tx = SqlTransaction(conn, self.engine.dialect.name)
            yield tx
            if tx.scheduled_jobs:
                # Delivered on commit to workers in other processes (LISTEN provtrack_jobs).
                conn.exec_driver_sql(f"NOTIFY {JOBS_CHANNEL}")
        if tx.scheduled_jobs:
            self.jobs_committed.set()

    def _sqlite_transaction(self, *, write: bool) -> Iterator[SqlTransaction]:
        """On SQLite a connection stays open between transactions: checking one out of the pool
        and back cost more than most transactions (a file connection never goes stale)."""
        idle = self._idle[write]
        try:
            conn = idle.pop()
        except IndexError:
            conn = self.engine.connect()
            if write:
                conn = conn.execution_options(provtrack_write=True)  # BEGIN IMMEDIATE (database.py)
        try:
            with conn.begin():
                tx = SqlTransaction(conn, "sqlite")
                yield tx
        except BaseException:
            if conn.invalidated or conn.in_transaction():
                conn.close()
            else:
                idle.append(conn)
            raise
        idle.append(conn)
        if tx.scheduled_jobs:
            self.jobs_committed.set()

    def dispose(self) -> None:
        for idle in self._idle.values():
            while idle:
                idle.pop().close()
        self.engine.dispose()
        self._write_lock.close()

    # --- the job queue (the engine's side) ----------------------------------------------------

    def claim_due_jobs(
        self, *, now: datetime, owner: str, lease: timedelta, limit: int, finished: Sequence[Job] = ()
    ) -> list[Job]:
        """Claim due jobs; `finished` jobs of the same owner are removed in the same transaction."""
        with self.transaction(write=True) as tx:
            jobs.finish_many(tx.conn, finished, owner=owner)
            if limit <= 0:
                return []
            return jobs.claim_due(tx.conn, now=now, owner=owner, lease_until=now + lease, limit=limit)

    def finish_job(self, job: Job, *, owner: str) -> None:
        self.finish_jobs([job], owner=owner)

    def finish_jobs(self, finished: Sequence[Job], *, owner: str) -> None:
        with self.transaction(write=True) as tx:
            jobs.finish_many(tx.conn, finished, owner=owner)

    def retry_job(self, job: Job, *, owner: str, due_at: datetime, error: str) -> None:
        with self.transaction(write=True) as tx:
            jobs.retry(tx.conn, job, owner=owner, due_at=due_at, error=error)

    def give_up_job(self, job: Job, *, owner: str, now: datetime, error: str) -> None:
        with self.transaction(write=True) as tx:
            jobs.give_up(tx.conn, job, owner=owner, now=now, error=error)

    def next_job_due(self) -> datetime | None:
        with self.transaction(write=False) as tx:
            return jobs.next_due(tx.conn)

    def pending_jobs(self, *, kind: str | None = None) -> list[dict[str, Any]]:
        with self.transaction(write=False) as tx:
            return jobs.pending(tx.conn, kind=kind)


class SqlTransaction(PlanQueries):
    def __init__(self, conn: Connection, dialect: str) -> None:
        self.conn = conn
        self.dialect = dialect
        self.scheduled_jobs = False

    # --- jobs ---------------------------------------------------------------------------------

    def schedule_job(self, request: JobRequest, *, now: datetime, replace: bool = True) -> None:
        jobs.schedule(self.conn, request, now=now, replace=replace)
        self.scheduled_jobs = True

    def cancel_job(self, kind: str, key: str) -> None:
        jobs.cancel(self.conn, kind, key)

    # --- service orders -----------------------------------------------------------------------

    def get_order(self, order_id: str) -> ServiceOrder | None:
        row = ORDER_ROW.first(self.conn, {"order_id": order_id})
        if row is None:
            return None
        document, version, state_before_cancellation = row
        return ServiceOrder.from_document(
            orjson.loads(document), version=version, state_before_cancellation=state_before_cancellation
        )

    def get_order_json(self, order_id: str) -> str | None:
        document: str | None = ORDER_DOCUMENT.scalar(self.conn, {"order_id": order_id})
        return document

    def add_order(self, order: ServiceOrder) -> None:
        self.add_orders([order])

    def add_orders(self, orders: Sequence[ServiceOrder]) -> None:
        """Insert new orders and their audit rows with one statement per table (also bulk loads)."""
        for order in orders:
            order.version = 1
        INSERT_ORDER.executemany(self.conn, [{"id": o.id, **_order_row(o)} for o in orders])
        AUDIT_INSERT.executemany(self.conn, [row for o in orders for row in _audit_rows(o.id, o.changes)])
        for order in orders:
            order.changes.clear()
        if event_store.record_order_events(self.conn, orders):
            self.scheduled_jobs = True

    def save_order(self, order: ServiceOrder) -> None:
        expected = order.version
        event_store.archive_order_version(self.conn, order.id, expected, until=_change_time(order))
        order.version += 1
        saved = SAVE_ORDER.rowcount(
            self.conn, {"b_order_id": order.id, "b_expected": expected, **_order_row(order)}
        )
        if saved != 1:
            raise ConcurrentUpdate(f"service order {order.id} changed while it was being updated")
        self.record_changes(order.id, order.changes)
        self.record_events(order)

    def record_events(self, order: ServiceOrder) -> None:
        """Write the order's recorded events to the outbox (save_order and add_order do it too)."""
        if event_store.record_order_events(self.conn, [order]):
            self.scheduled_jobs = True

    @property
    def events(self) -> event_store.SqlEventsTransaction:
        return event_store.SqlEventsTransaction(self.conn)

    def delete_order(self, order_id: str, *, at: str | None = None) -> bool:
        if at is not None:  # keep the last version for `asOf` reads and the delete event's payload
            event_store.archive_order_version(self.conn, order_id, None, until=at)
        result = self.conn.execute(delete(service_order).where(service_order.c.id == order_id))
        return result.rowcount == 1

    def list_orders(self, query: Query) -> Page:
        compiler = FilterCompiler(service_order, ORDER_COLUMNS, dialect=self.dialect)
        return self._page(compiler, query, newest_first=service_order.c.order_date)

    def audit_trail(self, order_id: str) -> list[Change]:
        rows = self.conn.execute(
            select(audit_record)
            .where(audit_record.c.service_order_id == order_id)
            .order_by(audit_record.c.id)
        )
        return [
            Change(
                r.subject,
                r.attribute,
                orjson.loads(r.old_value) if r.old_value is not None else None,
                orjson.loads(r.new_value) if r.new_value is not None else None,
                r.at,
                r.actor,
            )
            for r in rows
        ]

    def record_changes(self, order_id: str, changes: list[Change]) -> None:
        if not changes:
            return
        AUDIT_INSERT.executemany(self.conn, _audit_rows(order_id, changes))
        changes.clear()

    # --- cancel tasks -------------------------------------------------------------------------

    def add_task(self, task: CancelServiceOrder, *, created_at: str) -> None:
        self.conn.execute(
            insert(cancel_service_order).values(
                id=task.id,
                service_order_id=task.service_order_id,
                state=task.state.value,
                created_at=created_at,
                document=dumps(task.to_document()),
            )
        )
        self.record_changes(task.service_order_id, task.changes)
        if event_store.record_task_events(self.conn, task):
            self.scheduled_jobs = True

    def get_task_json(self, task_id: str) -> str | None:
        return self.conn.execute(
            select(cancel_service_order.c.document).where(cancel_service_order.c.id == task_id)
        ).scalar()

    def list_tasks(self, query: Query) -> Page:
        compiler = FilterCompiler(cancel_service_order, TASK_COLUMNS, dialect=self.dialect)
        return self._page(compiler, query, newest_first=cancel_service_order.c.created_at)

    # --- paging -------------------------------------------------------------------------------

    def _page(self, compiler: FilterCompiler, query: Query, *, newest_first: Any) -> Page:
        """A page in the requested order, newest first (by `newest_first`) when none is given."""
        table = compiler.table
        where = compiler.where(query.conditions) if query.conditions else None
        count = select(func.count()).select_from(table)
        if where is not None:
            count = count.where(where)
        total = int(self.conn.execute(count).scalar_one())
        if total == 0 or query.offset >= total:
            return Page(total, [])
        # Ties go by id in the direction of the last key, so an index on (..., key, id) yields the
        # page in order instead of a sort of every matching row.
        if query.sort:
            tie = table.c.id.desc() if query.sort[-1].descending else table.c.id
            order_by = [*compiler.order_by(query.sort), tie]
        else:
            order_by = [newest_first.desc(), table.c.id.desc()]
        stmt = select(table.c.document).order_by(*order_by).offset(query.offset).limit(query.limit)
        if where is not None:
            stmt = stmt.where(where)
        return Page(total, list(self.conn.execute(stmt).scalars()))


def _order_row(order: ServiceOrder) -> dict[str, Any]:
    attrs = order.attributes
    priority = attrs.get("priority")
    return {
        "state": order.state.value,
        "order_date": order.order_date,
        "external_id": _text(attrs.get("externalId")),
        "category": _text(attrs.get("category")),
        "priority": None if priority is None else str(priority),
        "requested_completion_date": attrs.get("requestedCompletionDate"),
        "state_before_cancellation": (
            order.state_before_cancellation.value if order.state_before_cancellation else None
        ),
        "version": order.version,
        "document": dumps(order.to_document()),
    }


def _audit_rows(order_id: str, changes: list[Change]) -> list[dict[str, Any]]:
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


def _change_time(order: ServiceOrder) -> str:
    """When a save happens: the time of the changes it records (the domain carries `now`)."""
    if order.changes:
        return order.changes[-1].at
    if order.events:
        return order.events[-1].at
    # A save that records nothing (engine bookkeeping): the wall clock is the best we have.
    return format_datetime(datetime.now(UTC))


def _text(value: Any) -> str | None:
    return None if value is None else str(value)
