"""The shared use-case tests (tests/use_cases.py) on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Sequence
from datetime import timedelta

import pytest

from provtrack.adapters.store.repository import SqlStore
from provtrack.domain.catalog import ActivityKind
from provtrack.domain.clock import format_datetime
from provtrack.domain.model import ServiceOrder
from provtrack.domain.plan import Plan
from provtrack.services import hub_subscriptions, orders, provisioning
from provtrack.services.ports import AfterChange, Context, DownstreamSubscription, Store, Transaction
from tests.e2e.waiting import wait_for
from tests.use_cases import *  # noqa: F403 - the shared tests run here
from tests.use_cases import HUB_CATALOG, T0, StoreFactory, _named, _poll_due, ctx, fibre


@pytest.fixture
def stores(store: SqlStore) -> StoreFactory:
    def make(hooks: Sequence[AfterChange]) -> Store:
        return SqlStore(store.engine, after_change=hooks)

    return make


def test_a_subscription_recorded_while_an_answer_is_being_recorded_is_seen_by_one_of_the_two(
    store: SqlStore,
) -> None:
    """The answer's transaction decides without the writer lock and writes at its end; the
    subscription commits in between. Neither reading what the other had committed at its start, both
    would miss the activity: the answer's check runs with its writes, under the lock, and sees it.
    (SQLite only: on PostgreSQL the answer holds the subscription's lock, which the subscription,
    made in the same thread here, would wait for forever; the lock is what orders them there.)"""
    if not store.sqlite:
        pytest.skip("SQLite only: PostgreSQL orders the two with an advisory lock, not a queue")
    minute = timedelta(minutes=1)
    hub = DownstreamSubscription("activation", "hub-1", "http://provtrack.invalid/cb", "http://sim.invalid")
    subscribed: list[int] = []

    def subscribe_meanwhile(tx: Transaction, order: ServiceOrder, plan: Plan | None, ctx: Context) -> None:
        if plan is not None and not subscribed and any(a.external_id for a in plan.activities):
            subscribed.append(  # in its own transaction, committed before the answer's writes run
                hub_subscriptions.record_subscription(
                    store,
                    hub,
                    owner="activation",
                    kind=ActivityKind.RESOURCE_ORDER,
                    poll_job=provisioning.POLL_JOB,
                    now=T0 + minute,
                )
            )

    hooked = SqlStore(store.engine, after_change=(subscribe_meanwhile,))
    order = orders.create_order(hooked, fibre(), ctx=ctx())
    provisioning.plan_order(hooked, order.id, HUB_CATALOG, ctx=ctx(T0))
    activity = _named(hooked, order.id, "activate-line")
    answered = T0 + 2 * minute
    answer = {"id": "RO-1", "state": "inProgress"}
    provisioning.record_resource_order(
        hooked, activity["id"], activity["attempt"], answer, HUB_CATALOG, ctx=ctx(answered)
    )

    assert subscribed == [0]  # the subscription's own read found nothing with an id yet
    assert _poll_due(hooked, activity["id"]) == answered  # the answer's check found the subscription


def test_on_postgresql_an_answer_waits_for_a_subscription_being_recorded(store: SqlStore) -> None:
    """The subscription's transaction holds its advisory lock; the answer's check waits for it, and
    then reads the subscription it committed."""
    if store.sqlite:
        pytest.skip("PostgreSQL only: SQLite's writer lock orders the two (the test above)")
    minute = timedelta(minutes=1)
    order = orders.create_order(store, fibre(), ctx=ctx())
    provisioning.plan_order(store, order.id, HUB_CATALOG, ctx=ctx(T0))
    activity = _named(store, order.id, "activate-line")
    answered = T0 + 2 * minute
    hub = DownstreamSubscription("activation", "hub-1", "http://provtrack.invalid/cb", "http://sim.invalid")

    failed: list[BaseException] = []

    def record_answer() -> None:
        answer = {"id": "RO-1", "state": "inProgress"}
        try:
            provisioning.record_resource_order(
                store, activity["id"], activity["attempt"], answer, HUB_CATALOG, ctx=ctx(answered)
            )
        except BaseException as exc:  # shown by the test, not lost with the thread
            failed.append(exc)

    answering = threading.Thread(target=record_answer)
    with store.transaction(write=True) as tx:
        tx.subscriptions.put(dataclasses.replace(hub, made_at=format_datetime(T0 + minute)))
        backend = int(tx.conn.exec_driver_sql("SELECT pg_backend_pid()").scalar() or 0)
        answering.start()
        wait_for(lambda: _waiting_on(store, backend) >= 1, timeout=10, what="the answer to wait")
        assert tx.plans.waiting_at("activation", ActivityKind.RESOURCE_ORDER) == []  # not committed
    answering.join()

    assert failed == []
    assert _poll_due(store, activity["id"]) == answered


def _waiting_on(store: SqlStore, backend: int) -> int:
    """How many lock requests wait on the PostgreSQL backend `backend` (whatever other tests do)."""
    query = "SELECT count(*) FROM pg_locks WHERE NOT granted AND %(pid)s = ANY(pg_blocking_pids(pid))"
    with store.engine.connect() as conn:
        return int(conn.exec_driver_sql(query, {"pid": backend}).scalar() or 0)
