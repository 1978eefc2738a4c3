"""The SQL store: transactions over SQLite or PostgreSQL holding orders, cancel tasks and audit rows.

A write transaction on SQLite also holds the writer lock (`database.WriterLock`, across threads and
processes): SQLite has one writer at a time, and queueing writers is far cheaper than letting them
spin on SQLITE_BUSY.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, and_, delete, func, insert, select

from provtrack.adapters.store import events as event_store
from provtrack.adapters.store import jobs
from provtrack.adapters.store.access import SqlAccessRecords
from provtrack.adapters.store.archive import SqlArchive
from provtrack.adapters.store.cancellation import SqlCancellations
from provtrack.adapters.store.dashboard import SqlDashboard
from provtrack.adapters.store.database import WriterLock, is_sqlite, sqlite_file
from provtrack.adapters.store.escalation import DurationCache, SqlJeopardyRecords
from provtrack.adapters.store.filters import FilterCompiler
from provtrack.adapters.store.group_commit import GroupCommit, Pending
from provtrack.adapters.store.idempotency import SqlIdempotencyRecords
from provtrack.adapters.store.metrics import SqlMetrics
from provtrack.adapters.store.order_rows import (
    AUDIT_INSERT,
    INSERT_ORDER,
    ORDER_COLUMNS,
    ORDER_DOCUMENT,
    ORDER_ENTRY,
    ORDER_ROW,
    ORDER_VERSION,
    SAVE_ORDER,
    TASK_COLUMNS,
    audit_rows,
    change_time,
    dumps,
    order_row,
)
from provtrack.adapters.store.provisioning import SqlPlans
from provtrack.adapters.store.subscriptions import SqlDownstreamSubscriptions
from provtrack.adapters.store.tables import audit_record, cancel_service_order, service_order
from provtrack.adapters.store.tasks import SqlTasks
from provtrack.domain.cancellation import CancelServiceOrder
from provtrack.domain.jobs import Job, JobRequest
from provtrack.domain.model import Change, ServiceOrder
from provtrack.domain.query import Query
from provtrack.services.ports import AfterChange, ConcurrentUpdate, OrderEntry, Page

JOBS_CHANNEL = "provtrack_jobs"

# SQLite: connections kept open between transactions, for writing and for reading, per engine (all
# the stores over one engine share them; the engine has no pool). list.pop and list.append are
# atomic: no lock. A burst may open more; beyond MAX_IDLE they are closed when they come back.
MAX_IDLE = 16
_IDLE: weakref.WeakKeyDictionary[Engine, dict[bool, list[Connection]]] = weakref.WeakKeyDictionary()


def _idle_connections(engine: Engine) -> dict[bool, list[Connection]]:
    return _IDLE.setdefault(engine, {True: [], False: []})


def _discard(conn: Connection) -> None:
    """Close for good: a reading connection is query_only, not fit to go back to the pool."""
    conn.invalidate()
    conn.close()


# A write of an optimistic transaction, run at its end on the writing connection.
Write = Callable[[Connection], object]


class SqlStore:
    def __init__(self, engine: Engine, *, after_change: Sequence[AfterChange] = ()) -> None:
        self.engine = engine
        # The features' hooks, given by the assembly (bootstrap.py); run by the unit of work.
        self.after_change = tuple(after_change)
        self.durations = DurationCache()  # learned durations, shared by this store's transactions
        self.sqlite = is_sqlite(engine)
        self._write_lock = WriterLock(sqlite_file(engine))
        self._idle = _idle_connections(engine) if self.sqlite else {}
        self._turns = [threading.Lock() for _ in range(64)]  # optimistic transactions, by order
        # Set after a commit that scheduled jobs: wakes this process's worker at once.
        self.jobs_committed = threading.Event()
        # SQLite: write transactions that arrive together share one COMMIT (group_commit.py).
        self.group_commit = GroupCommit(
            self._write_lock,
            lambda: self._checkout(write=True),
            lambda conn: self._checkin(conn, write=True),
            self.jobs_committed,
            checkpoint=self._checkpoint,
        )

    @contextmanager
    def transaction(self, *, write: bool, optimistic_on: str | None = None) -> Iterator[SqlTransaction]:
        """One transaction. On SQLite a writing one holds the writer lock from start to end, unless
        `optimistic_on` names the order it changes: then it reads and decides without the lock, its
        writes are queued, and they run at the end in one short write transaction under the lock,
        where the version checks of order and plan raise `ConcurrentUpdate` if another transaction
        changed them meanwhile. For use cases that retry on ConcurrentUpdate: the engine's, most of
        the writes. Optimistic transactions on the same order take turns within a process (they
        would conflict); across processes the version checks decide.
        On PostgreSQL `optimistic_on` changes nothing: writers do not exclude each other there."""
        if not self.sqlite and not write:
            # Each statement of a READ COMMITTED transaction takes its own snapshot anyway: a reading
            # one runs in autocommit, without the round trips of BEGIN and COMMIT (a GET by id: 1, not 3).
            with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                yield SqlTransaction(conn, self.engine.dialect.name, self.durations)
            return
        if not self.sqlite:
            with self.engine.connect() as conn, conn.begin():
                tx = SqlTransaction(conn, self.engine.dialect.name, self.durations)
                yield tx
                if tx.scheduled_jobs:
                    # Delivered on commit to workers in other processes (LISTEN provtrack_jobs).
                    conn.exec_driver_sql(f"NOTIFY {JOBS_CHANNEL}")
        elif write and optimistic_on is not None:
            writes: list[Write] = []
            with self._turns[hash(optimistic_on) % len(self._turns)]:
                with self._sqlite_transaction(write=False) as tx:
                    tx.queued_writes = writes
                    yield tx
                if writes:
                    with self.group_commit.transaction(lambda: tx.scheduled_jobs) as conn:
                        for write_now in writes:
                            write_now(conn)
            return  # the committer wakes the worker, once the writes are durable
        elif write:
            with self.group_commit.transaction(lambda: tx.scheduled_jobs) as conn:
                tx = SqlTransaction(conn, "sqlite", self.durations)
                yield tx
            return
        else:
            with self._sqlite_transaction(write=False) as tx:
                yield tx
        if tx.scheduled_jobs:
            self.jobs_committed.set()

    def commit_together(self) -> AbstractContextManager[Pending]:
        """Write transactions run in this block return before their COMMIT: the caller awaits
        `Pending.durable()` before it answers (the API's event loop: group_commit.py). Elsewhere
        (PostgreSQL) they commit as usual and there is nothing to await."""
        if self.sqlite:
            return self.group_commit.commit_together()
        return nullcontext(Pending(lambda: None))

    @contextmanager
    def _sqlite_transaction(self, *, write: bool) -> Iterator[SqlTransaction]:
        """On SQLite a connection stays open between transactions: checking one out of the pool
        and back cost more than most transactions (a file connection never goes stale). Reading
        connections are `query_only`: a write slipped into a reading transaction fails at once."""
        conn = self._checkout(write=write)
        try:
            with conn.begin():
                yield SqlTransaction(conn, "sqlite", self.durations)
        finally:
            self._checkin(conn, write=write)

    def _checkout(self, *, write: bool) -> Connection:
        try:
            return self._idle[write].pop()
        except IndexError:
            conn = self.engine.connect()
            if write:
                # Checkpoints run beside the writer, not in its COMMIT (group_commit.py).
                conn.exec_driver_sql("PRAGMA wal_autocheckpoint=0")
                conn.commit()
                return conn.execution_options(provtrack_write=True)  # BEGIN IMMEDIATE (database.py)
            conn.exec_driver_sql("PRAGMA query_only = ON")
            conn.commit()
            return conn

    def _checkin(self, conn: Connection, *, write: bool) -> None:
        # Kept unless it failed beyond a rollback, or a burst is over (MAX_IDLE are enough).
        idle = self._idle[write]
        if conn.invalidated or conn.in_transaction() or len(idle) >= MAX_IDLE:
            _discard(conn)
        else:
            idle.append(conn)

    def _checkpoint(self) -> int:
        """Copy the WAL's committed pages into the database without blocking anyone (PASSIVE);
        the pages in the WAL."""
        with self.engine.connect() as conn:
            # On the driver: inside a transaction (which SQLAlchemy would begin) it cannot run.
            driver = conn.connection.driver_connection
            assert driver is not None
            _busy, frames, _copied = driver.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            return int(frames)

    def answers_at_once(self, *, write: bool) -> bool:
        """SQLite, when no other transaction holds the writer (PostgreSQL waits on the network)."""
        return self.sqlite and not (write and self._write_lock.busy_elsewhere())

    def writer_busy(self) -> bool:
        """SQLite: another transaction (of this process or another) writes now. Never waits."""
        return self.sqlite and self._write_lock.busy()

    def dispose(self) -> None:
        self.group_commit.close()
        for idle in self._idle.values():
            while idle:
                _discard(idle.pop())
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


class SqlTransaction:
    def __init__(self, conn: Connection, dialect: str, durations: DurationCache | None = None) -> None:
        self.conn = conn
        self.dialect = dialect
        self._durations = durations
        self._plans: SqlPlans | None = None
        self._jeopardy: SqlJeopardyRecords | None = None
        self._subscriptions: SqlDownstreamSubscriptions | None = None
        self._tasks: SqlTasks | None = None
        self._cancellations: SqlCancellations | None = None
        self._access: SqlAccessRecords | None = None
        self._idempotency: SqlIdempotencyRecords | None = None
        self.scheduled_jobs = False
        # Optimistic (SqlStore.transaction): writes wait here for the end of the transaction.
        self.queued_writes: list[Write] | None = None
        self._checks = 0

    def write(self, operation: Write, *, check: bool = False) -> None:
        """Run a write now, or queue it for the end of an optimistic transaction. Whatever the
        write needs from the aggregates is computed before: they may change after. A `check` (a
        version-checked update) runs before the other queued writes: a conflict shows as
        ConcurrentUpdate, not as whatever constraint another write would break first."""
        if self.queued_writes is None:
            operation(self.conn)
        elif check:
            self.queued_writes.insert(self._checks, operation)
            self._checks += 1
        else:
            self.queued_writes.append(operation)

    def expect_unchanged(self, order: ServiceOrder) -> None:
        """An optimistic transaction that decided on `order` without saving it: it fails with
        ConcurrentUpdate if the order changed meanwhile (held, cancelled...)."""
        if self.queued_writes is None:
            return  # the writer lock (SQLite) or the save that follows guards it
        order_id, version = order.id, order.version

        def check(conn: Connection) -> None:
            if ORDER_VERSION.scalar(conn, {"order_id": order_id}) != version:
                raise ConcurrentUpdate(f"service order {order_id} changed while its plan was updated")

        self.write(check, check=True)

    # --- the records of each feature, in this transaction ---------------------------------------

    @property
    def plans(self) -> SqlPlans:
        if self._plans is None:
            self._plans = SqlPlans(self)
        return self._plans

    @property
    def jeopardy(self) -> SqlJeopardyRecords:
        if self._jeopardy is None:
            self._jeopardy = SqlJeopardyRecords(self.conn, cache=self._durations, write=self.write)
        return self._jeopardy

    @property
    def subscriptions(self) -> SqlDownstreamSubscriptions:
        if self._subscriptions is None:
            self._subscriptions = SqlDownstreamSubscriptions(self)
        return self._subscriptions

    @property
    def tasks(self) -> SqlTasks:
        if self._tasks is None:
            self._tasks = SqlTasks(self)
        return self._tasks

    @property
    def cancellations(self) -> SqlCancellations:
        if self._cancellations is None:
            self._cancellations = SqlCancellations(self)
        return self._cancellations

    @property
    def access(self) -> SqlAccessRecords:
        if self._access is None:
            self._access = SqlAccessRecords(self)
        return self._access

    @property
    def idempotency(self) -> SqlIdempotencyRecords:
        if self._idempotency is None:
            self._idempotency = SqlIdempotencyRecords(self)
        return self._idempotency

    @property
    def events(self) -> event_store.SqlEventsTransaction:
        return event_store.SqlEventsTransaction(self.conn)

    @property
    def archive(self) -> SqlArchive:
        return SqlArchive(self.conn)

    @property
    def dashboard(self) -> SqlDashboard:
        return SqlDashboard(self)

    @property
    def metrics(self) -> SqlMetrics:
        return SqlMetrics(self.conn)

    def _not_optimistic(self, what: str) -> None:
        if self.queued_writes is not None:
            raise TypeError(f"{what} needs its result at once: not in an optimistic transaction")

    # --- jobs ---------------------------------------------------------------------------------

    def schedule_job(self, request: JobRequest, *, now: datetime, replace: bool = True) -> None:
        self.write(lambda conn: jobs.schedule(conn, request, now=now, replace=replace))
        if request.lease is None:  # a leased job is its scheduler's to run: no worker to wake
            self.scheduled_jobs = True

    def cancel_job(self, kind: str, key: str) -> None:
        self.write(lambda conn: jobs.cancel(conn, kind, key))

    def run_job_now(self, kind: str, key: str, *, now: datetime) -> None:
        self.write(lambda conn: jobs.run_now(conn, kind, now=now, key=key))
        self.scheduled_jobs = True

    def release_job(
        self,
        kind: str,
        key: str,
        *,
        owner: str,
        due_at: datetime | None = None,
        error: str = "",
        failed: datetime | None = None,
    ) -> None:
        """Give up a held job: untouched, or (`due_at`) as after a failed run."""
        if due_at is None:
            self.write(lambda conn: jobs.release(conn, kind, key, owner=owner))
        else:
            self.write(
                lambda conn: jobs.release_failed(
                    conn, kind, key, owner=owner, due_at=due_at, error=error, failed=failed
                )
            )
        self.scheduled_jobs = True

    # --- service orders -----------------------------------------------------------------------

    def get_order(self, order_id: str) -> ServiceOrder | None:
        row = ORDER_ROW.first(self.conn, {"order_id": order_id})
        if row is None:
            return None
        document, version, state_before_cancellation, client = row
        return ServiceOrder.from_document(
            orjson.loads(document),
            version=version,
            state_before_cancellation=state_before_cancellation,
            client=client,
        )

    def get_order_json(self, order_id: str) -> str | None:
        document: str | None = ORDER_DOCUMENT.scalar(self.conn, {"order_id": order_id})
        return document

    def get_order_entry(self, order_id: str) -> OrderEntry | None:
        row = ORDER_ENTRY.first(self.conn, {"order_id": order_id})
        return None if row is None else OrderEntry(*row)

    def add_order(self, order: ServiceOrder) -> None:
        self.add_orders([order])

    def add_orders(self, orders: Sequence[ServiceOrder]) -> None:
        """Insert new orders and their audit rows with one statement per table (also bulk loads)."""
        for order in orders:
            order.version = 1
        rows = [{"id": o.id, "client_id": o.client, **order_row(o)} for o in orders]
        audit = [row for o in orders for row in audit_rows(o.id, o.changes)]
        for order in orders:
            order.changes.clear()

        def insert(conn: Connection) -> None:
            INSERT_ORDER.executemany(conn, rows)
            AUDIT_INSERT.executemany(conn, audit)

        self.write(insert)
        self._record_events(orders)

    def save_order(self, order: ServiceOrder) -> None:
        expected = order.version
        until = change_time(order)
        order.version += 1
        row = {"b_order_id": order.id, "b_expected": expected, **order_row(order)}

        def save(conn: Connection) -> None:
            event_store.archive_order_version(conn, order.id, expected, until=until)
            if SAVE_ORDER.rowcount(conn, row) != 1:
                raise ConcurrentUpdate(f"service order {order.id} changed while it was being updated")

        self.write(save, check=True)
        self.record_changes(order.id, order.changes)
        self.record_events(order)

    def record_events(self, order: ServiceOrder) -> None:
        """Write the order's recorded events to the outbox (save_order and add_order do it too)."""
        self._record_events([order])

    def _record_events(self, orders: Sequence[ServiceOrder]) -> None:
        events = event_store.take_order_events(orders)
        if events is None:
            return

        def record(conn: Connection) -> None:
            if event_store.write_order_events(conn, events):
                self.scheduled_jobs = True

        self.write(record)

    def delete_order(self, order_id: str, *, at: str | None = None) -> bool:
        self._not_optimistic("delete_order")
        if at is not None:  # keep the last version for `asOf` reads and the delete event's payload
            event_store.archive_order_version(self.conn, order_id, None, until=at)
        result = self.conn.execute(delete(service_order).where(service_order.c.id == order_id))
        return result.rowcount == 1

    def list_orders(self, query: Query, *, client: str | None = None) -> Page:
        """A page of orders; with `client`, of that client's orders only."""
        compiler = FilterCompiler(service_order, ORDER_COLUMNS, dialect=self.dialect)
        only = None if client is None else service_order.c.client_id == client
        return self._page(compiler, query, newest_first=service_order.c.order_date, only=only)

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
        rows = audit_rows(order_id, changes)
        changes.clear()
        self.write(lambda conn: AUDIT_INSERT.executemany(conn, rows))

    # --- cancel tasks -------------------------------------------------------------------------

    def add_task(self, task: CancelServiceOrder, *, created_at: str) -> None:
        self._not_optimistic("add_task")
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

    def list_tasks(self, query: Query, *, client: str | None = None) -> Page:
        """A page of cancel tasks; with `client`, of that client's orders only."""
        compiler = FilterCompiler(cancel_service_order, TASK_COLUMNS, dialect=self.dialect)
        only = None
        if client is not None:
            owned = select(service_order.c.id).where(service_order.c.client_id == client)
            only = cancel_service_order.c.service_order_id.in_(owned)
        return self._page(compiler, query, newest_first=cancel_service_order.c.created_at, only=only)

    # --- paging -------------------------------------------------------------------------------

    def _page(self, compiler: FilterCompiler, query: Query, *, newest_first: Any, only: Any = None) -> Page:
        """A page in the requested order, newest first (by `newest_first`) when none is given;
        `only` restricts it further (a client's own records)."""
        table = compiler.table
        where = compiler.where(query.conditions) if query.conditions else None
        if only is not None:
            where = only if where is None else and_(where, only)
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
