"""Optimistic transactions (`SqlStore.transaction(write=True, optimistic_on=...)`): on SQLite they read
without the writer lock and write at their end, all or nothing, under version checks; on PostgreSQL
they are ordinary transactions. Interference is committed by another transaction at a chosen point of
the optimistic one, in the same thread: no timing is involved."""

from __future__ import annotations

import itertools
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy.exc
from sqlalchemy import Connection, bindparam, insert

from provtrack.adapters.catalog_file import parse_catalog_text
from provtrack.adapters.store.prepared import Prepared
from provtrack.adapters.store.repository import SqlStore
from provtrack.adapters.store.tables import audit_record
from provtrack.adapters.store.transaction import SqlTransaction
from provtrack.domain.clock import format_datetime
from provtrack.domain.jobs import JobRequest
from provtrack.domain.model import Change
from provtrack.services import orders, provisioning
from provtrack.services.ports import ConcurrentUpdate
from tests.conftest import FakeClock
from tests.factories import order_body
from tests.integration.engine_harness import CATALOG, TMF652, body, fibre

FOLLOW_UP = "test.follow-up"
WAIT = 5.0  # seconds: the bound on waiting for something that is to happen
QUIET = 0.2  # seconds: how long something that is not to happen is given to happen anyway
AUDIT_NOTE = Prepared(
    insert(audit_record).values(
        service_order_id=bindparam("order_id"),
        subject="serviceOrder",
        attribute="note",
        new_value='"slipped in"',
        at="2026-11-27T09:00:00.000Z",
        actor="test",
    )
)


@pytest.fixture
def sqlite_store(store: SqlStore) -> SqlStore:
    if not store.sqlite:
        pytest.skip("SQLite only: PostgreSQL transactions are neither optimistic nor query_only")
    return store


def ctx(clock: FakeClock, prefix: str = "id") -> orders.Context:
    """Acting now; the new ids are `<prefix>-1`, `<prefix>-2`..."""
    numbers = itertools.count(1)
    return orders.Context(
        now=format_datetime(clock.now), actor="test", new_id=lambda: f"{prefix}-{next(numbers)}"
    )


def accepted_order(store: SqlStore, clock: FakeClock) -> str:
    return orders.create_order(store, order_body(), ctx=ctx(clock, "order")).id


def patch_description(store: SqlStore, clock: FakeClock, order_id: str, description: str) -> None:
    """Another transaction changes the order (and so its version)."""
    orders.patch_order(store, order_id, {"description": description}, json_patch=False, ctx=ctx(clock))


def queue_note_and_follow_up(tx: SqlTransaction, clock: FakeClock, order_id: str) -> None:
    note = Change("serviceOrder", "note", None, "checked by the engine", format_datetime(clock.now), "test")
    tx.record_changes(order_id, [note])
    tx.schedule_job(JobRequest(FOLLOW_UP, order_id, clock.now), now=clock.now)


def notes(store: SqlStore, order_id: str) -> list[object]:
    with store.transaction(write=False) as tx:
        return [c.new for c in tx.audit_trail(order_id) if c.attribute == "note"]


def version(store: SqlStore, order_id: str) -> int:
    with store.transaction(write=False) as tx:
        order = tx.get_order(order_id)
    assert order is not None
    return order.version


def test_a_change_committed_after_the_optimistic_read_fails_the_transaction_and_writes_nothing(
    sqlite_store: SqlStore, clock: FakeClock
) -> None:
    order_id = accepted_order(sqlite_store, clock)

    def save_what_was_read() -> None:
        with sqlite_store.transaction(write=True, optimistic_on=order_id) as tx:
            order = tx.get_order(order_id)
            assert order is not None
            patch_description(sqlite_store, clock, order_id, "changed meanwhile")
            queue_note_and_follow_up(tx, clock, order_id)  # none of these may outlive the failed save
            tx.save_order(order)

    with pytest.raises(ConcurrentUpdate):
        save_what_was_read()

    assert version(sqlite_store, order_id) == 2  # the other transaction's save only
    assert notes(sqlite_store, order_id) == []
    assert sqlite_store.pending_jobs(kind=FOLLOW_UP) == []
    assert orders.get_order_json(sqlite_store, order_id).count("changed meanwhile") == 1


def test_an_optimistic_transaction_left_alone_commits_everything_it_queued(
    store: SqlStore, clock: FakeClock
) -> None:
    order_id = accepted_order(store, clock)
    store.jobs_committed.clear()

    with store.transaction(write=True, optimistic_on=order_id) as tx:
        order = tx.get_order(order_id)
        assert order is not None
        tx.save_order(order)
        queue_note_and_follow_up(tx, clock, order_id)

    assert version(store, order_id) == 2
    assert notes(store, order_id) == ["checked by the engine"]
    [job] = store.pending_jobs(kind=FOLLOW_UP)
    assert job["key"] == order_id
    assert store.jobs_committed.is_set()


def test_an_exception_inside_an_optimistic_transaction_discards_its_queued_writes(
    store: SqlStore, clock: FakeClock
) -> None:
    order_id = accepted_order(store, clock)

    def change_then_fail() -> None:
        with store.transaction(write=True, optimistic_on=order_id) as tx:
            order = tx.get_order(order_id)
            assert order is not None
            tx.save_order(order)
            queue_note_and_follow_up(tx, clock, order_id)
            raise RuntimeError("decided against it")

    with pytest.raises(RuntimeError, match="decided against it"):
        change_then_fail()

    assert version(store, order_id) == 1
    assert notes(store, order_id) == []
    assert store.pending_jobs(kind=FOLLOW_UP) == []


def test_a_write_slipped_into_a_reading_transaction_fails_and_the_connection_serves_on(
    sqlite_store: SqlStore, clock: FakeClock
) -> None:
    order_id = accepted_order(sqlite_store, clock)
    used: list[Connection] = []

    def write_while_reading(write: Callable[[Connection], object]) -> None:
        with sqlite_store.transaction(write=False) as tx:
            used.append(tx.conn)
            write(tx.conn)

    with pytest.raises(sqlalchemy.exc.OperationalError, match="readonly"):
        write_while_reading(
            lambda conn: conn.exec_driver_sql(
                "INSERT INTO audit_record (service_order_id, subject, attribute, at, actor) "
                f"VALUES ('{order_id}', 'serviceOrder', 'note', '2026-11-27T09:00:00.000Z', 'test')"
            )
        )
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        write_while_reading(lambda conn: AUDIT_NOTE.execute(conn, {"order_id": order_id}))

    with sqlite_store.transaction(write=False) as tx:
        assert tx.conn is used[0] is used[1]  # back for the next reader each time
        assert tx.get_order(order_id) is not None
    with sqlite_store.transaction(write=True) as tx:
        AUDIT_NOTE.execute(tx.conn, {"order_id": order_id}).close()
    assert notes(sqlite_store, order_id) == ["slipped in"]  # the writer's, not the readers'


def take_while_another_is_parked(
    store: SqlStore, parked: tuple[str, str | None], now: str, expected: list[tuple[str, str | None]]
) -> None:
    """An optimistic transaction takes the parked notifications of ACT-1; another parks one more."""
    with store.transaction(write=True, optimistic_on="order-1") as tx:
        assert tx.plans.take_parked_notifications("activation", "ACT-1") == expected
        with store.transaction(write=True) as other:
            other.plans.park_notification("activation", "ACT-1", *parked, now)


def test_a_notification_parked_after_the_optimistic_take_fails_it_and_is_kept(
    sqlite_store: SqlStore, clock: FakeClock
) -> None:
    now = format_datetime(clock.now)
    with sqlite_store.transaction(write=True) as tx:
        tx.plans.park_notification("activation", "ACT-1", "inProgress", None, now)

    with pytest.raises(ConcurrentUpdate):
        take_while_another_is_parked(sqlite_store, ("completed", "done by hand"), now, [("inProgress", None)])

    with sqlite_store.transaction(write=True) as tx:
        taken = tx.plans.take_parked_notifications("activation", "ACT-1")
    assert taken == [("inProgress", None), ("completed", "done by hand")]


def test_a_notification_parked_after_an_optimistic_take_of_none_fails_it_too(
    sqlite_store: SqlStore, clock: FakeClock
) -> None:
    with pytest.raises(ConcurrentUpdate):
        take_while_another_is_parked(sqlite_store, ("completed", None), format_datetime(clock.now), [])

    with sqlite_store.transaction(write=True, optimistic_on="order-1") as tx:
        assert tx.plans.take_parked_notifications("activation", "ACT-1") == [("completed", None)]
    with sqlite_store.transaction(write=True) as tx:
        assert tx.plans.take_parked_notifications("activation", "ACT-1") == []


def test_optimistic_transactions_on_one_order_take_turns_and_so_do_not_conflict(
    sqlite_store: SqlStore, clock: FakeClock
) -> None:
    order_id = accepted_order(sqlite_store, clock)
    first_read, first_may_end, second_read = threading.Event(), threading.Event(), threading.Event()
    failures: list[BaseException] = []

    def save_the_order(read: threading.Event, may_end: threading.Event | None) -> None:
        try:
            with sqlite_store.transaction(write=True, optimistic_on=order_id) as tx:
                order = tx.get_order(order_id)
                assert order is not None
                read.set()
                if may_end is not None:
                    assert may_end.wait(WAIT)
                tx.save_order(order)
        except BaseException as exc:
            failures.append(exc)

    first = threading.Thread(target=save_the_order, args=(first_read, first_may_end))
    first.start()
    try:
        assert first_read.wait(WAIT)
        second = threading.Thread(target=save_the_order, args=(second_read, None))
        second.start()
        assert not second_read.wait(QUIET)  # its turn comes when the first has written
    finally:
        first_may_end.set()
    first.join(WAIT)
    second.join(WAIT)
    assert failures == []
    assert version(sqlite_store, order_id) == 3


class PlanChangedOnce:
    """The store, except that the first optimistic transaction, once it has decided, sees another
    transaction change the plan of its order before its writes run."""

    def __init__(self, store: SqlStore) -> None:
        self.store = store
        self.after_change = store.after_change
        self.optimistic_attempts = 0

    @contextmanager
    def transaction(self, *, write: bool, optimistic_on: str | None = None) -> Iterator[SqlTransaction]:
        with self.store.transaction(write=write, optimistic_on=optimistic_on) as tx:
            yield tx
            if optimistic_on is not None:
                self.optimistic_attempts += 1
                if self.optimistic_attempts == 1:
                    with self.store.transaction(write=True) as other:
                        plan = other.plans.get(optimistic_on)
                        assert plan is not None
                        other.plans.save(plan)


def test_a_plan_change_that_lost_a_race_is_decided_again_and_saved(
    sqlite_store: SqlStore, clock: FakeClock
) -> None:
    catalog = parse_catalog_text(
        CATALOG.format(sim="http://127.0.0.1:9", tmf652=TMF652), source="test-catalog.yaml"
    )
    order_id = orders.create_order(sqlite_store, body(fibre()), ctx=ctx(clock, "order")).id
    provisioning.plan_order(sqlite_store, order_id, catalog, ctx=ctx(clock, "activity"))
    with sqlite_store.transaction(write=False) as tx:
        plan = tx.plans.get(order_id)
    assert plan is not None
    reserve = plan.activities[0]
    racing = PlanChangedOnce(sqlite_store)

    provisioning.record_resource_order(
        racing,
        reserve.id,
        reserve.attempt,
        {"id": "INV-000001", "state": "inProgress"},
        catalog,
        ctx=ctx(clock),
    )

    assert racing.optimistic_attempts == 2
    with sqlite_store.transaction(write=False) as tx:
        saved = tx.plans.get(order_id)
    assert saved is not None
    assert saved.version == plan.version + 2  # the other transaction's save, then this one's
    assert saved.activities[0].external_id == "INV-000001"
    assert sqlite_store.pending_jobs(kind=provisioning.DISPATCH_JOB) == []
    [poll] = sqlite_store.pending_jobs(kind=provisioning.POLL_JOB)
    assert poll["key"] == reserve.id
