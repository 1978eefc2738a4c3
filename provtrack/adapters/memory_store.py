"""An in-memory store implementing the ports (services/ports.py): for use-case tests without a
database, and a reference for what the SQL store must do.

A write transaction works on a copy of the data and replaces it at commit, holding one lock, so a
failed use case leaves nothing behind and writers take turns, as on SQLite. Documents are kept as
JSON text, as the SQL store keeps them: every read builds fresh aggregates.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson

from provtrack.adapters.memory_records import (
    MemoryAccessRecords,
    MemoryArchive,
    MemoryCancellations,
    MemoryDownstreamSubscriptions,
    MemoryIdempotencyRecords,
    MemoryJeopardyRecords,
    MemoryPlans,
    MemoryTasks,
    dumps,
    page_of,
)
from provtrack.domain.access import ApiKey
from provtrack.domain.cancellation import CancelServiceOrder
from provtrack.domain.escalation import Escalation
from provtrack.domain.idempotency import KeyRecord
from provtrack.domain.jobs import JobRequest
from provtrack.domain.model import Change, OrderEvent, ServiceOrder
from provtrack.domain.query import Query
from provtrack.services.ports import (
    AfterChange,
    ConcurrentUpdate,
    DownstreamSubscription,
    FinishedActivity,
    OrderEntry,
    Page,
    Store,
)


@dataclass(slots=True)
class StoredJob:
    kind: str
    key: str
    due_at: datetime
    payload: dict[str, Any]
    lease_owner: str | None = None


@dataclass
class MemoryData:
    """Everything the store holds; a transaction changes a copy of it."""

    orders: dict[str, tuple[str, int, str | None]] = field(default_factory=dict)  # document, version, before
    tasks: dict[str, tuple[str, str]] = field(default_factory=dict)  # document, created_at
    audit: list[tuple[str, Change]] = field(default_factory=list)
    outbox: list[tuple[str, OrderEvent]] = field(default_factory=list)
    jobs: dict[tuple[str, str], StoredJob] = field(default_factory=dict)
    plans: dict[str, tuple[str, int]] = field(default_factory=dict)  # document, version
    activities: dict[str, tuple[str, str]] = field(default_factory=dict)  # order id, document
    parked: list[tuple[str, str, str, str | None]] = field(default_factory=list)
    escalations: dict[tuple[str, str], Escalation] = field(default_factory=dict)
    durations: dict[str, FinishedActivity] = field(default_factory=dict)
    subscriptions: dict[str, DownstreamSubscription] = field(default_factory=dict)
    manual_tasks: dict[str, tuple[str, int]] = field(default_factory=dict)  # document, version
    work_groups: dict[str, dict[str, Any]] = field(default_factory=dict)  # definitions given to the API
    product_order_links: dict[tuple[str, str], str] = field(default_factory=dict)  # -> task id
    clients: dict[str, str | None] = field(default_factory=dict)  # order id -> the client that placed it
    keys: dict[str, ApiKey] = field(default_factory=dict)
    listener_tokens: dict[str, str] = field(default_factory=dict)
    idempotency: dict[tuple[str, str], KeyRecord] = field(default_factory=dict)
    archived: dict[str, tuple[str, int, str | None]] = field(
        default_factory=dict
    )  # document, version, client


class MemoryStore:
    def __init__(self, *, after_change: Sequence[AfterChange] = ()) -> None:
        self.after_change = tuple(after_change)
        self.data = MemoryData()
        self._writer = threading.Lock()

    @contextmanager
    def transaction(self, *, write: bool, optimistic_on: str | None = None) -> Iterator[MemoryTransaction]:
        if not write:
            yield MemoryTransaction(self.data, write=False)
            return
        with self._writer:
            working = copy.deepcopy(self.data)
            yield MemoryTransaction(working, write=True)
            self.data = working  # committed: nothing raised

    def answers_at_once(self, *, write: bool) -> bool:
        return not (write and self._writer.locked())

    def commit_together(self) -> AbstractContextManager[Committed]:
        return nullcontext(Committed())

    def pending_jobs(self, *, kind: str | None = None) -> list[StoredJob]:
        return sorted(
            (j for j in self.data.jobs.values() if kind is None or j.kind == kind), key=lambda j: j.due_at
        )

    def outbox(self, order_id: str) -> list[str]:
        return [e.event_type for o, e in self.data.outbox if o == order_id]


class Committed:
    """Nothing to wait for: a memory transaction is committed when its block ends."""

    async def durable(self) -> None:
        return None


class MemoryTransaction:
    def __init__(self, data: MemoryData, *, write: bool) -> None:
        self.data = data
        self.writing = write
        self.plans = MemoryPlans(self)
        self.jeopardy = MemoryJeopardyRecords(self)
        self.subscriptions = MemoryDownstreamSubscriptions(self)
        self.tasks = MemoryTasks(self)
        self.cancellations = MemoryCancellations(self)
        self.access = MemoryAccessRecords(self)
        self.idempotency = MemoryIdempotencyRecords(self)
        self.archive = MemoryArchive(self)

    def _write(self) -> None:
        if not self.writing:
            raise TypeError("a write in a reading transaction")

    # --- orders -------------------------------------------------------------------------------

    def get_order(self, order_id: str) -> ServiceOrder | None:
        row = self.data.orders.get(order_id)
        if row is None:
            return None
        document, version, before = row
        return ServiceOrder.from_document(
            orjson.loads(document),
            version=version,
            state_before_cancellation=before,
            client=self.data.clients.get(order_id),
        )

    def get_order_json(self, order_id: str) -> str | None:
        row = self.data.orders.get(order_id)
        return None if row is None else row[0]

    def get_order_entry(self, order_id: str) -> OrderEntry | None:
        row = self.data.orders.get(order_id)
        return None if row is None else OrderEntry(row[0], row[1], self.data.clients.get(order_id))

    def add_order(self, order: ServiceOrder) -> None:
        self._write()
        order.version = 1
        self._put(order)
        self.record_changes(order.id, order.changes)
        self.record_events(order)

    def save_order(self, order: ServiceOrder) -> None:
        self._write()
        stored = self.data.orders.get(order.id)
        if stored is None or stored[1] != order.version:
            raise ConcurrentUpdate(f"service order {order.id} changed while it was being updated")
        order.version += 1
        self._put(order)
        self.record_changes(order.id, order.changes)
        self.record_events(order)

    def _put(self, order: ServiceOrder) -> None:
        before = order.state_before_cancellation.value if order.state_before_cancellation else None
        self.data.orders[order.id] = (dumps(order.to_document()), order.version, before)
        self.data.clients[order.id] = order.client

    def expect_unchanged(self, order: ServiceOrder) -> None:
        stored = self.data.orders.get(order.id)
        if stored is None or stored[1] != order.version:
            raise ConcurrentUpdate(f"service order {order.id} changed while its plan was updated")

    def delete_order(self, order_id: str, *, at: str | None = None) -> bool:
        self._write()
        self.data.clients.pop(order_id, None)
        return self.data.orders.pop(order_id, None) is not None

    def record_events(self, order: ServiceOrder) -> None:
        self.data.outbox.extend((order.id, e) for e in order.events)
        order.events.clear()

    def list_orders(self, query: Query, *, client: str | None = None) -> Page:
        documents = [
            row[0]
            for order_id, row in self.data.orders.items()
            if client is None or self.data.clients.get(order_id) == client
        ]
        return page_of(documents, query, newest_first="orderDate")

    def audit_trail(self, order_id: str) -> list[Change]:
        return [c for o, c in self.data.audit if o == order_id]

    def record_changes(self, order_id: str, changes: list[Change]) -> None:
        self.data.audit.extend((order_id, c) for c in changes)
        changes.clear()

    # --- cancel tasks -------------------------------------------------------------------------

    def add_task(self, task: CancelServiceOrder, *, created_at: str) -> None:
        self._write()
        self.data.tasks[task.id] = (dumps(task.to_document()), created_at)
        self.record_changes(task.service_order_id, task.changes)
        self.data.outbox.extend((task.service_order_id, e) for e in task.events)
        task.events.clear()

    def get_task_json(self, task_id: str) -> str | None:
        row = self.data.tasks.get(task_id)
        return None if row is None else row[0]

    def list_tasks(self, query: Query, *, client: str | None = None) -> Page:
        documents = [
            row[0]
            for row in self.data.tasks.values()
            if client is None
            or self.data.clients.get(orjson.loads(row[0])["serviceOrder"]["id"], "") == client
        ]
        return page_of(documents, query, newest_first="id")

    # --- jobs ---------------------------------------------------------------------------------

    def schedule_job(self, request: JobRequest, *, now: datetime, replace: bool = True) -> None:
        self._write()
        key = (request.kind, request.key)
        if key in self.data.jobs and not replace:
            return
        owner = request.lease.owner if request.lease else None
        self.data.jobs[key] = StoredJob(
            request.kind, request.key, request.due_at, dict(request.payload or {}), owner
        )

    def cancel_job(self, kind: str, key: str) -> None:
        self._write()
        self.data.jobs.pop((kind, key), None)

    def run_job_if_subscribed_since(
        self, subscription: str, since: str, kind: str, key: str, *, now: datetime
    ) -> None:
        known = self.data.subscriptions.get(subscription)  # writers take turns: nothing to order
        if known is not None and known.made_at is not None and known.made_at > since:
            self.run_job_now(kind, key, now=now)

    def run_job_now(self, kind: str, key: str, *, now: datetime) -> None:
        self._write()
        stored = self.data.jobs.get((kind, key))
        if stored is not None and stored.due_at > now:
            stored.due_at = now

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
        self._write()
        job = self.data.jobs.get((kind, key))
        if job is not None and job.lease_owner == owner:
            job.lease_owner = None
            if due_at is not None:
                job.due_at = due_at


if TYPE_CHECKING:
    _implements_the_ports: Store = MemoryStore()
