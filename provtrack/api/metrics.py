"""The business metrics as JSON for other tools (`/provtrack/v1/metrics/...`, docs/dashboard.md), and
the open orders by state and jeopardy level as Prometheus gauges at `/metrics`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import orjson
from fastapi import APIRouter, FastAPI, Request
from prometheus_client import CollectorRegistry, Gauge, generate_latest
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from provtrack.api.errors import ApiError
from provtrack.api.http import json_response
from provtrack.api.openapi import answers
from provtrack.domain.clock import InvalidDateTime, parse_datetime
from provtrack.services import metrics
from provtrack.services.metrics import Period

PREFIX = "/provtrack/v1/metrics"
DEFAULT_PERIOD = timedelta(days=30)
# Every metric reads a period from its query: 200, or 400 for a period that does not parse.
router = APIRouter(prefix=PREFIX, tags=["provtrack metrics (extension)"], responses=answers(200, 400))
PERIOD_HELP = (
    "`from` and `to` (ISO 8601 date-times; default: the 30 days up to now). Orders count in the "
    "period they completed in (cycle time, on-time rate, throughput) or were ordered in (jeopardy "
    "rate); activities in the period their plan was made in (fallout rate)."
)


def period_of(request: Request, *, default: timedelta = DEFAULT_PERIOD) -> Period:
    """The period a request asks for: `from`/`to`, else the `default` up to now."""
    now: datetime = request.app.state.clock()
    values = {}
    for name in ("from", "to"):
        raw = request.query_params.get(name)
        if raw:
            try:
                values[name] = parse_datetime(raw)
            except InvalidDateTime as exc:
                raise ApiError(400, "INVALID_QUERY", "Invalid query parameter", f"{name}: {exc}") from None
    end = values.get("to", now + timedelta(milliseconds=1))  # what happened at this instant counts
    start = values.get("from", end - default)
    if start >= end:
        raise ApiError(400, "INVALID_QUERY", "Invalid query parameter", "from: must be before to")
    return Period(start, end)


async def _answer(request: Request, read: Callable[[Any, Period], Any]) -> Response:
    period = period_of(request)
    value = await run_in_threadpool(read, request.app.state.store, period)
    return json_response(orjson.dumps({"period": period.to_document(), **value}).decode())


@router.get("", summary="Every business metric of a period", description=PERIOD_HELP)
async def all_metrics(request: Request) -> Response:
    period = period_of(request)
    found = await run_in_threadpool(
        metrics.all_metrics, request.app.state.store, period, now=request.app.state.clock()
    )
    return json_response(orjson.dumps(found.to_document()).decode())


@router.get(
    "/cycleTime", summary="Order cycle time p50/p90 by service specification", description=PERIOD_HELP
)
async def cycle_time(request: Request) -> Response:
    return await _answer(
        request,
        lambda store, p: {
            "cycleTime": [metrics.cycle_time_document(c) for c in metrics.cycle_times(store, p)]
        },
    )


@router.get(
    "/onTime", summary="On-time completion rate against requestedCompletionDate", description=PERIOD_HELP
)
async def on_time(request: Request) -> Response:
    return await _answer(
        request, lambda store, p: {"onTime": metrics.on_time_document(metrics.on_time(store, p))}
    )


@router.get("/jeopardy", summary="Share of orders that went inJeopardy or late", description=PERIOD_HELP)
async def jeopardy(request: Request) -> Response:
    return await _answer(
        request, lambda store, p: {"jeopardy": metrics.jeopardy_document(metrics.jeopardy_rate(store, p))}
    )


@router.get("/fallout", summary="Fallout rate by system and activity", description=PERIOD_HELP)
async def fallout(request: Request) -> Response:
    return await _answer(
        request,
        lambda store, p: {"fallout": [metrics.fallout_document(f) for f in metrics.fallout_rates(store, p)]},
    )


@router.get("/throughput", summary="Orders completed per day", description=PERIOD_HELP)
async def throughput(request: Request) -> Response:
    return await _answer(
        request, lambda store, p: {"throughput": metrics.throughput_document(metrics.throughput(store, p))}
    )


@router.get(
    "/openOrders", summary="Open orders by state over time (hourly counts, and now)", description=PERIOD_HELP
)
async def open_orders(request: Request) -> Response:
    now = request.app.state.clock()
    return await _answer(
        request,
        lambda store, p: {"openOrders": metrics.open_orders_document(metrics.open_orders(store, p, now=now))},
    )


def gauges(store: Any) -> bytes:
    """Open orders by state, read at scrape time (an index range count), in Prometheus text."""
    registry = CollectorRegistry()
    gauge = Gauge(
        "provtrack_open_service_orders", "Open service orders by state", ["state"], registry=registry
    )
    for state, count in metrics.open_orders_now(store).items():
        gauge.labels(state=state).set(count)
    return generate_latest(registry)


def install_metrics(app: FastAPI) -> None:
    app.include_router(router)
