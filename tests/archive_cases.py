"""The archive's cases, run on the in-memory store (tests/unit) and on SQLite and PostgreSQL
(tests/integration): given orders finished at various times, when archived, then..."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import orjson

from provtrack.domain.clock import format_datetime
from provtrack.domain.model import ServiceOrder
from provtrack.domain.query import Query
from provtrack.domain.states import OrderState as S
from provtrack.domain.validation import validate_new_order
from provtrack.services import orders
from provtrack.services.archive import archivable_orders, archive_finished_orders
from provtrack.services.ports import Store
from tests.factories import order_body

NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
LONG_AGO = NOW - timedelta(days=200)
LATELY = NOW - timedelta(days=10)
FINISHED = {  # how each order ends: its items' final states, or the order's own move
    "completed": (S.COMPLETED, S.COMPLETED),
    "failed": (S.FAILED, S.FAILED),
    "partial": (S.COMPLETED, S.FAILED),
}


def add_order(store: Store, ends: str | None, *, at: datetime) -> str:
    """An order accepted at `at` that ends (`completed`, `failed`, `partial`, `cancelled`) an hour
    later, or stays inProgress (`None`)."""
    start, end = format_datetime(at), format_datetime(at + timedelta(hours=1))
    order = ServiceOrder.accept(
        validate_new_order(order_body()), order_id=str(uuid.uuid4()), now=start, actor="t"
    )
    if ends != "cancelled":
        for item_id in ("1", "2"):
            order.move_item(item_id, S.IN_PROGRESS, now=start, actor="t")
    with store.transaction(write=True) as tx:
        tx.add_order(order)
    if ends is None:
        return order.id
    if ends == "cancelled":
        order.move_to(S.CANCELLED, now=end, actor="t")
    for item_id, state in zip(("1", "2"), FINISHED.get(ends, ()), strict=False):
        order.move_item(item_id, state, now=end, actor="t")
    with store.transaction(write=True) as tx:  # a second version: `asOf` reads the first
        tx.save_order(order)
    return order.id


def listed(store: Store) -> set[str]:
    with store.transaction(write=False) as tx:
        return {str(orjson.loads(doc)["id"]) for doc in tx.list_orders(Query(limit=100)).documents}


def finished_orders_older_than_the_cutoff_leave_the_list_and_stay_readable(store: Store) -> None:
    old = {ends: add_order(store, ends, at=LONG_AGO) for ends in ("completed", "failed", "cancelled")}
    staying = {
        add_order(store, "completed", at=LATELY),  # finished, but lately
        add_order(store, None, at=LONG_AGO),  # still in progress
        add_order(store, "partial", at=LONG_AGO),  # an operator may still act on its failed item
    }
    assert archivable_orders(store, older_than=timedelta(days=90), now=NOW) == 3

    batches: list[int] = []
    moved = archive_finished_orders(
        store, older_than=timedelta(days=90), now=NOW, batch=2, moved=batches.append
    )

    assert moved == 3
    assert batches == [2, 1]
    assert listed(store) == staying
    for ends, order_id in old.items():
        assert orjson.loads(orders.get_order_json(store, order_id))["state"] == ends


def archiving_again_moves_nothing_twice(store: Store) -> None:
    first = add_order(store, "completed", at=LONG_AGO)
    assert archive_finished_orders(store, older_than=timedelta(days=90), now=NOW, batch=10) == 1
    later = add_order(store, "completed", at=LONG_AGO)

    assert archive_finished_orders(store, older_than=timedelta(days=90), now=NOW, batch=10) == 1
    assert archive_finished_orders(store, older_than=timedelta(days=90), now=NOW, batch=10) == 0
    assert orders.get_order_json(store, first)
    assert orders.get_order_json(store, later)
    assert listed(store) == set()
