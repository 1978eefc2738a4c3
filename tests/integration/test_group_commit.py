"""Group commit on SQLite (adapters/store/group_commit.py): write transactions that arrive together
share one COMMIT, each caller is answered only once its rows are committed, and a caller whose rows
fail is rolled back alone. Transactions are sequenced in one thread or with events: no timing."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Iterator

import pytest

from provtrack.adapters.store.database import create_database_engine
from provtrack.adapters.store.repository import SqlStore
from provtrack.domain.clock import format_datetime
from provtrack.services import orders
from provtrack.services.ports import Context
from tests.conftest import FakeClock
from tests.factories import order_body

WAIT = 5.0  # seconds: the bound on waiting for something that is to happen


@pytest.fixture
def sqlite_store(store: SqlStore) -> SqlStore:
    if not store.sqlite:
        pytest.skip("SQLite only: PostgreSQL commits each transaction itself")
    return store


@pytest.fixture
def reader(sqlite_store: SqlStore) -> Iterator[SqlStore]:
    """Another store on the same file: it sees committed rows only."""
    other = SqlStore(create_database_engine(sqlite_store.engine.url.render_as_string(hide_password=False)))
    yield other
    other.dispose()


def acting(clock: FakeClock, *ids: str) -> Context:
    given = iter(ids)
    return Context(now=format_datetime(clock.now), actor="test", new_id=lambda: next(given))


def visible(store: SqlStore, order_id: str) -> bool:
    with store.transaction(write=False) as tx:
        return tx.get_order_json(order_id) is not None


def test_creates_that_arrive_together_share_one_commit_and_a_failing_one_fails_alone(
    sqlite_store: SqlStore, reader: SqlStore, clock: FakeClock
) -> None:
    group = sqlite_store.group_commit
    ctx = acting(clock, "order-a", "order-a", "order-c")  # the second create reuses the first's id
    commits = group.commits

    with sqlite_store.commit_together() as pending:
        first = orders.create_order(sqlite_store, order_body(externalId="A"), ctx=ctx)
        with pytest.raises(sqlite3.IntegrityError):
            orders.create_order(sqlite_store, order_body(externalId="B"), ctx=ctx)
        third = orders.create_order(sqlite_store, order_body(externalId="C"), ctx=ctx)
    assert not visible(reader, "order-a")  # not committed before the callers await it
    asyncio.run(pending.durable())

    assert group.commits == commits + 1
    assert visible(reader, first.id)
    assert visible(reader, third.id)
    with reader.transaction(write=False) as tx:
        kept = tx.get_order(first.id)
    assert kept is not None
    assert kept.attributes["externalId"] == "A"  # the failed caller's rows were rolled back, not A's
    assert {job["key"] for job in reader.pending_jobs(kind=orders.PLAN_ORDER_JOB)} == {"order-a", "order-c"}


def test_a_write_returns_only_once_committed(
    sqlite_store: SqlStore, reader: SqlStore, clock: FakeClock
) -> None:
    order = orders.create_order(sqlite_store, order_body(), ctx=acting(clock, "order-1"))

    assert visible(reader, order.id)
    assert not sqlite_store.writer_busy()  # the group committed: the lock file is free for others


def test_writers_in_threads_that_queue_together_commit_together(
    sqlite_store: SqlStore, reader: SqlStore, clock: FakeClock
) -> None:
    group = sqlite_store.group_commit
    commits = group.commits
    inside, may_end = threading.Event(), threading.Event()
    created: list[str] = []

    def hold_the_group_open() -> None:
        with sqlite_store.transaction(write=True):
            inside.set()
            assert may_end.wait(WAIT)

    def create(n: int) -> None:
        order = orders.create_order(sqlite_store, order_body(), ctx=acting(clock, f"order-{n}"))
        created.append(order.id)

    holder = threading.Thread(target=hold_the_group_open)
    holder.start()
    assert inside.wait(WAIT)
    writers = [threading.Thread(target=create, args=(n,)) for n in range(4)]
    for writer in writers:
        writer.start()
    may_end.set()
    for thread in (holder, *writers):
        thread.join(WAIT)

    assert sorted(created) == [f"order-{n}" for n in range(4)]
    assert all(visible(reader, order_id) for order_id in created)
    assert group.transactions >= 5
    assert group.commits - commits <= 5  # never more than one COMMIT per transaction
