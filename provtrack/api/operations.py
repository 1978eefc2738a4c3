"""Operations endpoints: health for load balancers, Prometheus metrics for dashboards."""

from __future__ import annotations

from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST, Counter, generate_latest
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from provtrack.api.errors import error_response
from provtrack.api.http import json_response
from provtrack.api.metrics import gauges
from provtrack.api.monitoring import refresh
from provtrack.api.openapi import answers

router = APIRouter(tags=["operations"])

ORDERS_CREATED = Counter("provtrack_service_orders_created_total", "Service orders accepted by the API")


@router.get(
    "/provtrack/v1/health",
    summary="Liveness and database reachability",
    responses=answers(200, 503),
)
async def health(request: Request) -> Response:
    store = request.app.state.store

    def check() -> None:
        with store.transaction(write=False) as tx:
            tx.get_order_json("health-check")

    try:
        await run_in_threadpool(check)
    except Exception as exc:
        return error_response(503, "UNAVAILABLE", "Database unreachable", str(exc))
    return json_response('{"status":"ok"}')


@router.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    refresh(request)  # the figures read from the database (api/monitoring.py)
    return Response(generate_latest() + gauges(request.app.state.store), media_type=CONTENT_TYPE_LATEST)
