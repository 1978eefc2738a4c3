"""The jeopardy extension API: where an order stands, and acknowledging an escalation (docs/policy.md)."""

from __future__ import annotations

import orjson
from fastapi import APIRouter, FastAPI, Request
from starlette.responses import Response

from provtrack.api.errors import ApiError
from provtrack.api.http import context, json_response
from provtrack.api.openapi import answers, header
from provtrack.api.security import principal_of
from provtrack.services import access, jeopardy
from provtrack.services.jeopardy import JeopardyMonitor

PREFIX = "/provtrack/v1"
router = APIRouter(prefix=PREFIX, tags=["provtrack jeopardy (extension)"])


def install_jeopardy(app: FastAPI) -> None:
    app.include_router(router)


def _monitor(request: Request) -> JeopardyMonitor:
    monitor: JeopardyMonitor | None = request.app.state.jeopardy
    if monitor is None:
        raise ApiError(
            503, "NOT_MONITORED", "Jeopardy monitoring is not set up", "this server watches no jeopardy"
        )
    return monitor


@router.get(
    "/serviceOrder/{id}/jeopardy",
    summary="Jeopardy level, projection, commitment, escalations",
    responses=answers(200, 404, 503),
)
def get_jeopardy(id: str, request: Request) -> Response:
    access.check_order(request.app.state.store, principal_of(request), id)
    view = jeopardy.jeopardy_view(
        request.app.state.store, _monitor(request), id, now=request.app.state.clock()
    )
    return json_response(orjson.dumps(view).decode())


@router.post(
    "/serviceOrder/{id}/escalation/{rule}/acknowledge",
    summary="Acknowledge an escalation: its ladder stops climbing; no body",
    responses=answers(200, 404, 409, 503),
    openapi_extra={"parameters": [header("X-Provtrack-User", "who acknowledges (default `api`)")]},
)
def acknowledge(id: str, rule: str, request: Request) -> Response:
    access.check_order(request.app.state.store, principal_of(request), id)
    actor = request.headers.get("x-provtrack-user") or "api"
    result = jeopardy.acknowledge(
        request.app.state.store, _monitor(request), id, rule, ctx=context(request, actor)
    )
    return json_response(orjson.dumps(result).decode())
