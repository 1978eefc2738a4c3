"""The dashboard's pages: orders, an order, the jeopardy board, fallout, events and metrics; and the
change mark that tells an open page to refresh its live regions. The work queues are in queues.py,
the cancellation preview in cancelling.py."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import orjson
from fastapi import Request
from starlette.responses import Response

from provtrack.domain.clock import InvalidDateTime, format_datetime, normalise_datetime, parse_datetime
from provtrack.domain.states import TERMINAL_STATES, OrderState
from provtrack.services import activities, cancellation, dashboard, events, jeopardy, metrics, tasks
from provtrack.services.metrics import Period
from provtrack.services.ports import PlanNotFound, TaskSelection
from provtrack.web import charts
from provtrack.web.app import refusal, render, router, store_of
from provtrack.web.cancelling import cancellation_of
from provtrack.web.filters import LEVELS, PAGE_SIZES, SORTS, STATES, InvalidFilter, OrderFilter
from provtrack.web.gantt import gantt

OPEN_STATES = [s.value for s in OrderState if s not in TERMINAL_STATES]
TERMINAL_VALUES = frozenset(s.value for s in TERMINAL_STATES)
CHART_POINTS = 240
UP_TO_NOW = timedelta(milliseconds=1)  # periods end after now: what happened at this instant counts
METRIC_PERIODS = {"7d": timedelta(days=7), "30d": timedelta(days=30), "90d": timedelta(days=90)}


@router.get("/")
def orders_page(request: Request) -> Response:
    settings = request.app.state.settings
    try:
        chosen = OrderFilter.from_params(request.query_params)
        found = dashboard.order_list(
            store_of(request),
            chosen.query(max_limit=settings.max_limit),
            counts_query=chosen.counts_query(max_limit=settings.max_limit),
        )
    except (InvalidFilter, ValueError) as exc:
        message = refusal(request, exc) or str(exc)
        return render(
            request,
            "orders.html",
            400,
            problem=message,
            filter=OrderFilter(),
            **_choices(),
            orders=[],
            total=0,
            by_state={},
            pages=1,
        )
    orders = [orjson.loads(d) for d in found.page.documents]
    pages = max(1, -(-found.page.total // chosen.size))
    return render(
        request,
        "orders.html",
        filter=chosen,
        orders=orders,
        total=found.page.total,
        by_state=found.by_state,
        pages=pages,
        **_choices(),
    )


def _choices() -> dict[str, Any]:
    return {"states": STATES, "levels": LEVELS, "sorts": SORTS, "page_sizes": PAGE_SIZES}


def _jeopardy_standing(request: Request, order_id: str, *, now: datetime) -> dict[str, Any] | None:
    """The order's jeopardy standing now, each escalation with its next step (no monitor: None)."""
    monitor = request.app.state.jeopardy
    if monitor is None:
        return None
    standing: dict[str, Any] = jeopardy.jeopardy_view(store_of(request), monitor, order_id, now=now)
    policy = monitor.policy()
    standing["escalation"] = [dashboard.with_next_step(e, policy) for e in standing["escalation"]]
    return standing


@router.get("/orders/{order_id}")
def order_page(order_id: str, request: Request) -> Response:
    store = store_of(request)
    now = request.app.state.clock()
    as_of_text = request.query_params.get("asOf") or ""
    as_of = None
    try:
        if as_of_text:
            as_of = normalise_datetime(as_of_text if len(as_of_text) > 16 else f"{as_of_text}:00Z")
            document = events.order_as_of(store, order_id, as_of)
        else:
            from provtrack.services import orders

            document = orders.get_order_json(store, order_id)
    except (LookupError, InvalidDateTime) as exc:
        status = 400 if isinstance(exc, InvalidDateTime) else 404
        return render(
            request, "missing.html", status, problem=refusal(request, exc) or str(exc), order_id=order_id
        )
    order = orjson.loads(document)
    try:
        plan: dict[str, Any] | None = activities.get_plan(store, order_id) if as_of is None else None
    except PlanNotFound:
        plan = None
    standing = _jeopardy_standing(request, order_id, now=now) if as_of is None else None
    timeline = events.order_timeline(store, order_id)
    if as_of is not None:
        timeline = [c for c in timeline if c.at <= as_of]
    plan_activities = (plan or {}).get("activity", [])
    work = [a for a in plan_activities if a.get("kind") in ("resourceOrder", "partnerOrder")]
    order_tasks: list[dict[str, Any]] = []
    if any(a.get("kind") == "manualTask" for a in plan_activities):
        order_tasks = tasks.list_tasks(store, TaskSelection(order_id=order_id, limit=50), now=now)[1]
    impact = None
    if as_of is None and order["state"] not in TERMINAL_VALUES:
        impact = cancellation.cancellation_impact(store, order_id, request.app.state.catalog)
    return render(
        request,
        "order.html",
        order=order,
        plan=plan,
        chart=gantt(plan, now) if plan else None,
        standing=standing,
        timeline=list(reversed(timeline)),
        downstream=work,
        as_of=as_of,
        as_of_text=as_of_text,
        held=order["state"] == OrderState.HELD.value,
        can_hold=order["state"] == OrderState.IN_PROGRESS.value,  # the one state `held` is reached from
        order_tasks=order_tasks,
        cancel_impact=impact,
        cancel_task=cancellation_of(store, order_id),
        cancel_steps=[a for a in plan_activities if a.get("withdraws") or a.get("undoes")],
        mark=dashboard.work_mark(store, order_id),
        trail=True,
        change_text=change_text,
        subject_text=_subjects(plan),
    )


def _subjects(plan: dict[str, Any] | None) -> dict[str, str]:
    """Timeline subjects as a coordinator reads them: `activity[<id>]` -> `activity reserve-port`."""
    names = {a["id"]: f"{a['name']} ({a['serviceOrderItemId']})" for a in (plan or {}).get("activity", [])}
    return {f"activity[{k}]": f"activity {v}" for k, v in names.items()}


def change_text(value: Any) -> str:
    """A timeline value as one short line."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        for key in ("message", "text", "description", "name"):
            if key in value:
                return str(value[key])
    text = orjson.dumps(value).decode()
    return text if len(text) <= 160 else text[:157] + "…"


@router.get("/jeopardy")
def jeopardy_page(request: Request) -> Response:
    monitor = request.app.state.jeopardy
    levels = dashboard.jeopardy_board(
        store_of(request), monitor.policy() if monitor else None, now=request.app.state.clock()
    )
    return render(request, "jeopardy.html", levels=levels, mark=dashboard.change_mark(store_of(request)))


@router.get("/fallout")
def fallout_page(request: Request) -> Response:
    queue = dashboard.fallout_queue(store_of(request))
    return render(request, "fallout.html", queue=queue, mark=dashboard.change_mark(store_of(request)))


@router.get("/events")
def events_page(request: Request) -> Response:
    store = store_of(request)
    subscriptions = events.list_subscriptions(store)
    health = {h.subscription_id: h for h in dashboard.subscription_health(store)}
    letters = [d for d in events.list_dead_letters(store) if d.delivered_at is None][:200]
    return render(
        request,
        "events.html",
        subscriptions=subscriptions,
        health=health,
        letters=letters,
        mark=dashboard.change_mark(store),
    )


@router.get("/performance")
def metrics_page(request: Request) -> Response:
    now = request.app.state.clock()
    chosen = request.query_params.get("period", "30d")
    problem = None
    try:
        if chosen == "custom":
            start = parse_datetime(request.query_params.get("from", "") + "T00:00:00Z")
            end = parse_datetime(request.query_params.get("to", "") + "T00:00:00Z") + timedelta(days=1)
            if start >= end:
                raise InvalidDateTime("from must be before to")
        else:
            chosen = chosen if chosen in METRIC_PERIODS else "30d"
            start, end = now - METRIC_PERIODS[chosen], now + UP_TO_NOW
    except InvalidDateTime as exc:
        problem = f"period: {exc}"
        chosen, start, end = "30d", now - METRIC_PERIODS["30d"], now + UP_TO_NOW
    found = metrics.all_metrics(store_of(request), Period(start, end), now=now)
    return render(
        request,
        "metrics.html",
        status=400 if problem else 200,
        problem=problem,
        m=found,
        chosen=chosen,
        periods=list(METRIC_PERIODS),
        start_day=format_datetime(start)[:10],
        end_day=format_datetime(end - timedelta(seconds=1))[:10],
        cycle_chart=_cycle_chart(found.cycle_time) if found.cycle_time else None,
        fallout_chart=charts.hbars(
            [(f"{f.system} / {f.activity}", [f.rate * 100]) for f in found.fallout],
            ["fallout rate"],
            unit=" %",
            fmt="{:.1f}",
            scale_max=10,
        )
        if found.fallout
        else None,
        throughput_chart=charts.columns(_days(found.throughput, start, end), what="completed")
        if found.throughput
        else None,
        open_chart=_open_chart(found.open_orders),
    )


def _cycle_chart(cycle_times: list[metrics.CycleTime]) -> charts.HBarChart:
    size, unit = _time_unit([c.p90_seconds for c in cycle_times])
    rows = [(c.specification, [c.p50_seconds / size, c.p90_seconds / size]) for c in cycle_times]
    return charts.hbars(rows, ["p50", "p90"], unit=unit, fmt="{:.1f}")


def _days(counts: list[tuple[str, int]], start: Any, end: Any) -> list[tuple[str, float]]:
    """Every day of the period, with 0 where nothing completed."""
    known = dict(counts)
    days = []
    day = start.date()
    while day <= (end - timedelta(seconds=1)).date():
        days.append((day.isoformat(), float(known.get(day.isoformat(), 0))))
        day += timedelta(days=1)
    return days


def _open_chart(counts: list[metrics.StateCount]) -> charts.LineChart | None:
    times = sorted({c.taken_at for c in counts})
    if len(times) < 2:
        return None
    if len(times) > CHART_POINTS:  # a point every few hours is enough for a chart; the JSON has all
        step = -(-len(times) // CHART_POINTS)
        times = [*times[:-1:step], times[-1]]
    states = sorted({c.state for c in counts if c.orders}, key=OPEN_STATES.index)
    table = {(c.taken_at, c.state): c.orders for c in counts}
    return charts.lines(times, {s: [float(table.get((t, s), 0)) for t in times] for s in states})


def _time_unit(seconds: list[float]) -> tuple[float, str]:
    """The unit cycle times read best in: hours, minutes or seconds."""
    top = max(seconds, default=0.0)
    if top >= 2 * 3600:
        return 3600.0, " h"
    if top >= 120:
        return 60.0, " min"
    return 1.0, " s"


@router.get("/live")
def live(request: Request) -> Response:
    """Has anything changed since `mark` (of `order`, or anywhere)? 204 when not; else the new
    sentinel, and the event that makes the page's live regions fetch themselves again."""
    order_id = request.query_params.get("order") or None
    trail = request.query_params.get("trail") == "1"  # a page that shows manual tasks
    store = store_of(request)
    mark = dashboard.work_mark(store, order_id) if trail else dashboard.change_mark(store, order_id)
    if str(mark) == request.query_params.get("mark"):
        return Response(status_code=204)
    response = render(request, "_live.html", mark=mark, order_id=order_id, trail=trail)
    response.headers["HX-Trigger"] = "provtrack-changed"
    return response
