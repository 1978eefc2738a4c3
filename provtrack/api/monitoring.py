"""Readiness (`/ready`: database reachable, migrations current, workers keeping up) and the figures
`/metrics` adds to the counters: requests, orders by state, jobs due and late, undelivered events,
open escalations, and authentication failures (api/security.py)."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from prometheus_client import Counter, Gauge, Histogram
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from provtrack.adapters.store.monitoring import figures, migration_current, migration_head
from provtrack.api.errors import error_response
from provtrack.api.http import json_response
from provtrack.api.openapi import answers

router = APIRouter(tags=["operations"])

REQUESTS = Counter(
    "provtrack_http_requests_total",
    "HTTP requests answered, by route and status",
    ["method", "route", "status"],
)
LATENCY = Histogram(
    "provtrack_http_request_seconds",
    "Time to answer an HTTP request, by route",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
ORDERS = Gauge("provtrack_service_orders", "Service orders stored, by state", ["state"])
JOBS = Gauge(
    "provtrack_job_queue", "Jobs: due now and waiting, late (due for over a minute), failed", ["status"]
)
DEAD_LETTERS = Gauge(
    "provtrack_event_dead_letters", "Event deliveries that failed for good, not delivered since"
)
ESCALATIONS = Gauge("provtrack_escalations", "Jeopardy escalations, open or acknowledged", ["status"])
LATE_AFTER = timedelta(minutes=1)  # a due job nobody took for this long: no worker keeps up


class RequestMetrics:
    """Counts every answer by its route template (not the path: ids would make a series each)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route: Any = scope.get("route")
            template = str(getattr(route, "path", "unmatched"))
            REQUESTS.labels(scope["method"], template, str(status)).inc()
            LATENCY.labels(scope["method"], template).observe(time.perf_counter() - started)


def refresh(request: Request) -> None:
    """Read the figures from the database into the gauges (on each scrape)."""
    found = figures(request.app.state.store.engine, now=request.app.state.clock(), late_after=LATE_AFTER)
    ORDERS.clear()
    for state, count in found.orders_by_state.items():
        ORDERS.labels(state).set(count)
    for status, count in found.jobs.items():
        JOBS.labels(status).set(count)
    DEAD_LETTERS.set(found.dead_letters)
    for status, count in found.escalations.items():
        ESCALATIONS.labels(status).set(count)


@router.get(
    "/ready",
    summary="Readiness: the database answers, its schema is current, and workers take due jobs",
    responses=answers(200, 503, description="Ready: every check passed"),
)
async def ready(request: Request) -> Response:
    checks = await run_in_threadpool(_checks, request)
    failing = [f"{name}: {problem}" for name, problem in checks.items() if problem]
    if failing:
        return error_response(503, "NOT_READY", "Not ready", "; ".join(failing))
    return json_response('{"status":"ready","checks":{"database":"ok","migrations":"ok","worker":"ok"}}')


def _checks(request: Request) -> dict[str, str]:
    engine = request.app.state.store.engine
    try:
        current = migration_current(engine)
    except Exception as exc:
        return {
            "database": f"unreachable ({type(exc).__name__})",
            "migrations": "unknown",
            "worker": "unknown",
        }
    head = migration_head()
    problems = {"database": "", "migrations": "", "worker": ""}
    if current != head:
        problems["migrations"] = (
            f"the schema is at {current}, the code needs {head}: run `provtrack db upgrade`"
        )
    late = figures(engine, now=request.app.state.clock(), late_after=LATE_AFTER).jobs["late"]
    if late:
        problems["worker"] = f"{late} jobs due for over a minute are not taken: is a worker running?"
    return problems
