"""The business metrics and the dashboard's reads as SQL aggregates, on SQLite and PostgreSQL, against
figures worked out by hand from the orders each test stores."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from provtrack.adapters.store.repository import SqlStore
from provtrack.domain.activities import Activity, ActivityState
from provtrack.domain.catalog import ActivityKind
from provtrack.domain.clock import format_datetime
from provtrack.domain.model import ServiceOrder
from provtrack.domain.plan import Plan
from provtrack.domain.query import parse_query
from provtrack.domain.states import OrderState
from provtrack.domain.validation import validate_new_order
from provtrack.services import dashboard, metrics
from provtrack.services.metrics import Period
from tests.conftest import FakeClock

T0 = datetime(2026, 11, 1, tzinfo=UTC)
PERIOD = Period(T0, T0 + timedelta(days=10))


def stored_order(
    n: int,
    spec: str,
    *,
    ordered: datetime,
    completed: datetime | None = None,
    requested: datetime | None = None,
    levels: tuple[str, ...] = (),
    state: OrderState | None = None,
) -> ServiceOrder:
    body = {
        "externalId": f"M-{n}",
        "category": "residential",
        "serviceOrderItem": [{"id": "1", "action": "add", "service": {"serviceSpecification": {"id": spec}}}],
    }
    if requested is not None:
        body["requestedCompletionDate"] = format_datetime(requested)
    order = ServiceOrder.accept(
        validate_new_order(body), order_id=f"order-{n:03d}", now=format_datetime(ordered), actor="test"
    )
    started = format_datetime(ordered + timedelta(minutes=1))
    for level in levels:
        order.record_jeopardy(level, name=level, message=f"went {level}", now=started, actor="test")
    if completed is not None or state is not None:
        order.move_item("1", OrderState.IN_PROGRESS, now=started, actor="test")
    if completed is not None:
        order.move_item("1", OrderState.COMPLETED, now=format_datetime(completed), actor="test")
    if state is not None:
        order.move_to(state, now=started, actor="test")
    return order


def store_orders(store: SqlStore, *orders: ServiceOrder) -> None:
    with store.transaction(write=True) as tx:
        tx.add_orders(list(orders))


def test_cycle_time_is_p50_and_p90_by_nearest_rank_per_specification(store: SqlStore) -> None:
    fibre = [
        stored_order(n, "fibre", ordered=T0 + timedelta(days=1), completed=T0 + timedelta(days=1, hours=n))
        for n in range(1, 11)
    ]
    eline = [
        stored_order(
            20 + h, "eline", ordered=T0 + timedelta(days=2), completed=T0 + timedelta(days=2, hours=h)
        )
        for h in (6, 2, 4, 1, 5, 3)
    ]
    outside = stored_order(
        30, "fibre", ordered=T0 - timedelta(days=3), completed=T0 - timedelta(hours=1)
    )  # completed before the period
    store_orders(store, *fibre, *eline, outside)

    found = {c.specification: c for c in metrics.cycle_times(store, PERIOD)}

    # Nearest ranks: ceil(5) = 5 and ceil(9) = 9 of 1..10 h; ceil(3) = 3 and ceil(5.4) = 6 of 1..6 h;
    # read from 5 % buckets, so within 2.5 % of the exact values.
    assert {s: c.completed for s, c in found.items()} == {"eline": 6, "fibre": 10}
    assert found["fibre"].p50_seconds == pytest.approx(5 * 3600, rel=0.025)
    assert found["fibre"].p90_seconds == pytest.approx(9 * 3600, rel=0.025)
    assert found["eline"].p50_seconds == pytest.approx(3 * 3600, rel=0.025)
    assert found["eline"].p90_seconds == pytest.approx(6 * 3600, rel=0.025)
    assert found["eline"].p90_seconds > found["eline"].p50_seconds * 1.9


def test_on_time_rate_jeopardy_rate_and_throughput_count_what_the_period_holds(store: SqlStore) -> None:
    day1, day2 = T0 + timedelta(days=1), T0 + timedelta(days=2)
    store_orders(
        store,
        stored_order(
            1, "fibre", ordered=day1, completed=day1 + timedelta(hours=5), requested=day1 + timedelta(hours=6)
        ),
        stored_order(
            2,
            "fibre",
            ordered=day1,
            completed=day2 + timedelta(hours=1),
            requested=day1 + timedelta(hours=6),
            levels=("atRisk", "inJeopardy", "onTrack"),  # in jeopardy once, on track again
        ),
        stored_order(3, "fibre", ordered=day1, completed=day2 + timedelta(hours=2)),
        stored_order(4, "fibre", ordered=day2, levels=("atRisk",)),
        stored_order(5, "fibre", ordered=day2, levels=("atRisk", "inJeopardy", "onTrack")),
        stored_order(6, "fibre", ordered=day2, levels=("late",), state=OrderState.HELD),
        stored_order(7, "fibre", ordered=T0 - timedelta(days=1), levels=("late",)),  # ordered before
    )

    assert metrics.on_time(store, PERIOD) == metrics.OnTime(completed=3, with_requested_date=2, on_time=1)
    assert metrics.jeopardy_rate(store, PERIOD) == metrics.JeopardyRate(completed=3, jeopardized=1)
    assert metrics.throughput(store, PERIOD) == [("2026-11-02", 1), ("2026-11-03", 2)]


def test_fallout_rate_counts_finished_activities_that_fell_out_by_system_and_activity(
    store: SqlStore,
) -> None:
    def activity(order: str, name: str, owner: str, fallouts: int, finished: datetime | None) -> Activity:
        a = Activity(
            f"{order}-{name}",
            order,
            "1",
            name,
            ActivityKind.RESOURCE_ORDER,
            owner,
            [],
            60.0,
            fallouts=fallouts,
        )
        a.actual_start = format_datetime(T0)
        if finished is None:
            a.state = ActivityState.FALLOUT  # not finished: not counted yet
        else:
            a.state, a.actual_end = ActivityState.DONE, format_datetime(finished)
        return a

    orders = [stored_order(n, "fibre", ordered=T0 + timedelta(days=1)) for n in range(1, 6)]
    store_orders(store, *orders)
    day = T0 + timedelta(days=1)
    with store.transaction(write=True) as tx:
        for n, order in enumerate(orders, start=1):
            finished = {4: T0 - timedelta(hours=1), 5: None}.get(n, day)  # 4: before the period
            tx.plans.add(
                Plan(
                    order.id,
                    format_datetime(T0),
                    [
                        activity(order.id, "reserve-port", "inventory", 2 if n == 1 else 0, day),
                        activity(order.id, "activate-line", "activation", 1 if n != 1 else 0, finished),
                    ],
                    {},
                )
            )

    rates = {
        (f.system, f.activity): (f.activities, f.fell_out, f.fallouts)
        for f in metrics.fallout_rates(store, PERIOD)
    }

    assert rates == {("activation", "activate-line"): (3, 2, 2), ("inventory", "reserve-port"): (5, 1, 2)}


def test_whole_days_read_from_the_roll_up_give_the_figures_read_live(store: SqlStore) -> None:
    for n in range(40):
        ordered = T0 + timedelta(hours=7 * n)
        store_orders(
            store,
            stored_order(
                n,
                ("fibre", "eline")[n % 2],
                ordered=ordered,
                completed=ordered + timedelta(hours=n % 9, minutes=n),
                requested=ordered + timedelta(hours=5) if n % 3 else None,
                levels=("late",) if n % 5 == 0 else (),
            ),
        )
    period = Period(T0 + timedelta(hours=5), T0 + timedelta(days=9, hours=13))
    live = metrics.all_metrics(store, period, now=T0 + timedelta(days=30))

    metrics.take_snapshot(store, now=T0 + timedelta(days=30))
    with store.transaction(write=False) as tx:
        through = tx.metrics.rolled_through()
        days_rolled = len({row[0] for row in tx.metrics.order_days("2026-11-01", "2026-12-31")})
    rolled = metrics.all_metrics(store, period, now=T0 + timedelta(days=30))

    assert through == "2026-11-29"
    assert days_rolled == 12  # every day something completed
    assert rolled.to_document() == live.to_document()
    assert rolled.on_time.completed > 30


def test_open_orders_are_counted_by_state_every_hour(store: SqlStore) -> None:
    store_orders(
        store,
        stored_order(1, "fibre", ordered=T0, state=OrderState.HELD),
        stored_order(2, "fibre", ordered=T0, state=OrderState.HELD),
        stored_order(3, "fibre", ordered=T0, completed=T0 + timedelta(hours=1)),
        stored_order(4, "fibre", ordered=T0),
    )
    at = T0 + timedelta(days=1, minutes=20)

    counts = metrics.take_snapshot(store, now=at)

    assert {s: n for s, n in counts.items() if n} == {"held": 2, "acknowledged": 1}
    [job] = store.pending_jobs(kind=metrics.SNAPSHOT_JOB)
    assert job["due_at"] == "2026-11-02T01:00:00.000Z"
    found = metrics.open_orders(store, Period(T0, at + timedelta(hours=1)), now=at + timedelta(minutes=5))
    held = [(c.taken_at, c.orders) for c in found if c.state == "held"]
    assert held == [("2026-11-02T00:20:00.000Z", 2), ("2026-11-02T00:25:00.000Z", 2)]


def test_the_metrics_api_answers_the_same_figures_as_json(
    store: SqlStore, client: TestClient, clock: FakeClock
) -> None:
    day1 = T0 + timedelta(days=1)
    store_orders(store, stored_order(1, "fibre", ordered=day1, completed=day1 + timedelta(hours=2)))
    period = {"from": "2026-11-01T00:00:00Z", "to": "2026-11-11T00:00:00Z"}

    everything = client.get("/provtrack/v1/metrics", params=period).json()
    cycle = client.get("/provtrack/v1/metrics/cycleTime", params=period).json()
    refused = client.get("/provtrack/v1/metrics/onTime", params={"from": "yesterday"})

    [fibre] = everything["cycleTime"]
    assert cycle["cycleTime"] == everything["cycleTime"]
    assert (fibre["serviceSpecification"], fibre["completed"]) == ("fibre", 1)
    assert fibre["p50Seconds"] == fibre["p90Seconds"] == pytest.approx(7200, rel=0.025)
    assert everything["period"] == {"from": "2026-11-01T00:00:00.000Z", "to": "2026-11-11T00:00:00.000Z"}
    assert refused.status_code == 400
    assert refused.json()["code"] == "INVALID_QUERY"


def test_prometheus_shows_open_orders_by_state(store: SqlStore, client: TestClient) -> None:
    store_orders(
        store,
        stored_order(1, "fibre", ordered=T0, state=OrderState.HELD),
        stored_order(2, "fibre", ordered=T0),
    )

    text = client.get("/metrics").text

    assert 'provtrack_open_service_orders{state="held"} 1.0' in text
    assert 'provtrack_open_service_orders{state="acknowledged"} 1.0' in text


def test_the_order_list_filters_on_the_jeopardy_level_and_counts_by_state(store: SqlStore) -> None:
    store_orders(
        store,
        stored_order(1, "fibre", ordered=T0, levels=("late",), state=OrderState.HELD),
        stored_order(2, "fibre", ordered=T0, levels=("late",)),
        stored_order(3, "fibre", ordered=T0, levels=("late", "onTrack")),
    )
    query = parse_query("jeopardyLevel=late&state=held", default_limit=10, max_limit=100)
    counts = parse_query("jeopardyLevel=late", default_limit=10, max_limit=100)

    found = dashboard.order_list(store, query, counts_query=counts)

    assert found.page.total == 1
    assert found.by_state == {"held": 1, "acknowledged": 1}


def test_the_board_lists_open_orders_by_level_most_urgent_first(store: SqlStore) -> None:
    store_orders(
        store,
        stored_order(1, "fibre", ordered=T0, levels=("inJeopardy",), requested=T0 + timedelta(days=3)),
        stored_order(2, "fibre", ordered=T0, levels=("inJeopardy",), requested=T0 + timedelta(days=2)),
        stored_order(3, "fibre", ordered=T0, levels=("late",)),
        stored_order(4, "fibre", ordered=T0, levels=("late",), state=OrderState.CANCELLED),  # not open
    )

    board = dashboard.jeopardy_board(store, None, now=T0)

    assert [(b.level, b.total, [e.order["id"] for e in b.entries]) for b in board] == [
        ("late", 1, ["order-003"]),
        ("inJeopardy", 2, ["order-002", "order-001"]),
        ("atRisk", 0, []),
    ]


def test_fallout_is_grouped_by_system_and_error(store: SqlStore) -> None:
    orders = [stored_order(n, "fibre", ordered=T0, state=OrderState.HELD) for n in range(1, 4)]
    store_orders(store, *orders)
    reasons = ["no capacity", "no capacity", "port already in use"]
    with store.transaction(write=True) as tx:
        for order, reason in zip(orders, reasons, strict=True):
            a = Activity(
                f"{order.id}-rp",
                order.id,
                "1",
                "reserve-port",
                ActivityKind.RESOURCE_ORDER,
                "inventory",
                [],
                60.0,
            )
            a.state = ActivityState.FALLOUT
            a.reason = f"inventory reports the resource order failed: {reason}"
            tx.plans.add(Plan(order.id, format_datetime(T0), [a], {}))

    queue = dashboard.fallout_queue(store)

    assert [(g.system, g.error, len(g.rows)) for g in queue.groups] == [
        ("inventory", "failed: no capacity", 2),
        ("inventory", "failed: port already in use", 1),
    ]
    assert queue.held_total == 3
