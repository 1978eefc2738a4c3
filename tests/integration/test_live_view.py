"""The live view reads the database: each order state change once, with the order's id whole, the
orders per state, and how many are in jeopardy; its lines are never wrapped, whatever the width."""

from __future__ import annotations

import re
import threading

import pytest

from provtrack.adapters.clock import new_id
from provtrack.adapters.store.live import OrderChange
from provtrack.adapters.store.repository import SqlStore
from provtrack.cli.live_view import LiveView, OrderWatch, change_line, summary_line
from provtrack.domain.model import ServiceOrder
from provtrack.domain.plan import Plan
from provtrack.services import orders
from provtrack.services.ports import Context, Transaction
from provtrack.services.unit_of_work import change_order
from tests.e2e.waiting import wait_for
from tests.factories import order_body

CONTEXT = Context("2026-11-27T09:00:00.000Z", "api", new_id)


def _move(store: SqlStore, order_id: str, state: str) -> None:
    orders.patch_order(store, order_id, {"state": state}, json_patch=False, ctx=CONTEXT)


def _jeopardy(store: SqlStore, order_id: str, level: str) -> None:
    def change(_tx: Transaction, order: ServiceOrder, _plan: Plan | None) -> None:
        order.record_jeopardy(level, name="test", message=level, now=CONTEXT.now, actor="test")

    change_order(store, order_id, change, ctx=CONTEXT)


def test_the_watch_reports_each_state_change_once_with_the_order_and_its_external_id(store: SqlStore) -> None:
    watch = OrderWatch(store.engine)
    order = orders.create_order(store, order_body(externalId="BSS-77"), ctx=CONTEXT)
    _move(store, order.id, "inProgress")

    first = watch.look()
    _move(store, order.id, "held")
    second = watch.look()
    third = watch.look()

    assert [(c.order_id, c.external_id, c.old, c.new) for c in first] == [
        (order.id, "BSS-77", None, "acknowledged"),
        (order.id, "BSS-77", "acknowledged", "inProgress"),
    ]
    assert [(c.old, c.new) for c in second] == [("inProgress", "held")]
    assert third == []
    assert watch.counts == {"held": 1}


def test_the_watch_counts_open_orders_in_jeopardy_until_they_finish(store: SqlStore) -> None:
    late = orders.create_order(store, order_body(), ctx=CONTEXT)
    _move(store, late.id, "inProgress")
    _jeopardy(store, late.id, "late")
    watch = OrderWatch(store.engine)  # started after: reads it from the order
    other = orders.create_order(store, order_body(), ctx=CONTEXT)
    _move(store, other.id, "inProgress")
    _jeopardy(store, other.id, "inJeopardy")
    watch.look()
    at_peak = watch.in_jeopardy
    _move(store, late.id, "completed")
    _jeopardy(store, other.id, "onTrack")
    watch.look()

    assert at_peak == 2
    assert watch.in_jeopardy == 0


def test_the_summary_names_the_states_a_user_watches() -> None:
    counts = {"acknowledged": 1, "inProgress": 11, "completed": 23, "held": 3, "failed": 2}

    assert summary_line(counts, 1) == (
        "orders: 40 created, 11 in progress, 23 completed, 3 held, 2 failed, 1 in jeopardy"
    )
    assert summary_line({}, 0) == "orders: 0 created, 0 in progress, 0 completed, 0 held, 0 in jeopardy"


def test_off_a_terminal_the_view_prints_whole_lines_at_any_width(
    store: SqlStore, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "30")
    view = LiveView(store.engine, summary_every=0.05, poll_every=0.01, lines=True)
    printed: list[str] = []
    lock = threading.Lock()

    def seen() -> list[str]:
        with lock:
            printed.extend(capsys.readouterr().err.splitlines())
            return list(printed)

    with view.running():
        order = orders.create_order(store, order_body(externalId="BSS-4242"), ctx=CONTEXT)
        _move(store, order.id, "inProgress")
        wait_for(lambda: any("-> inProgress" in line for line in seen()), timeout=10, what="the change line")
        wait_for(lambda: any("1 in progress" in line for line in seen()), timeout=10, what="a summary")
    lines = seen()

    assert f"order {order.id} (BSS-4242) new -> acknowledged" in "\n".join(lines)
    assert any(
        re.fullmatch(rf"\S+Z order {order.id} \(BSS-4242\) acknowledged -> inProgress", x) for x in lines
    )
    assert all(len(line) > 30 for line in lines if line.startswith(("orders:", "20")))


def test_a_change_line_says_when_which_order_and_what_moved() -> None:
    change = OrderChange(7, "o-1", None, "jeopardyAlert", None, "atRisk", "2026-11-27T09:00:00.000Z")

    assert change_line(change) == "2026-11-27T09:00:00.000Z order o-1 jeopardy onTrack -> atRisk"
