"""One transaction of the SQL store (adapters/store/repository.py): the orders, cancel tasks, audit
rows and jobs it reads and writes, and each feature's records (`tx.plans`, `tx.tasks`, ...) on its
connection. An optimistic transaction queues its writes (`write`) to run at its end."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Connection, and_, delete, func, insert, select

from provtrack.adapters.store import events as event_store
from provtrack.adapters.store import jobs
from provtrack.adapters.store.access import SqlAccessRecords
from provtrack.adapters.store.archive import SqlArchive
from provtrack.adapters.store.cancellation import SqlCancellations
from provtrack.adapters.store.dashboard import SqlDashboard
from provtrack.adapters.store.escalation import DurationCache, SqlJeopardyRecords
from provtrack.adapters.store.filters import FilterCompiler
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
from provtrack.adapters.store.subscriptions import SqlDownstreamSubscriptions, subscription_made_at
from provtrack.adapters.store.tables import audit_record, cancel_service_order, service_order
from provtrack.adapters.store.tasks import SqlTasks
from provtrack.domain.cancellation import CancelServiceOrder
from provtrack.domain.jobs import JobRequest
from provtrack.domain.model import Change, ServiceOrder
from provtrack.domain.query import Query
from provtrack.services.ports import ConcurrentUpdate, OrderEntry, Page

# A write of an optimistic transaction, run at its end on the writing connection.
Write = Callable[[Connection], object]


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

    def run_job_if_subscribed_since(
        self, subscription: str, since: str, kind: str, key: str, *, now: datetime
    ) -> None:
        # A write: on SQLite it runs under the writer lock, after any subscription committed or
        # queued before it; on PostgreSQL the subscription's lock (`subscription_lock`) orders the two.
        def check(conn: Connection) -> None:
            made_at = subscription_made_at(conn, subscription, dialect=self.dialect)
            if made_at is not None and made_at > since:
                jobs.run_now(conn, kind, now=now, key=key)

        self.write(check)
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
