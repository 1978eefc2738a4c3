"""The jeopardy extension API: where an order stands, and acknowledging an escalation (docs/policy.md)."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, FastAPI, Request
from starlette.responses import Response

from provtrack.api.errors import error_response
from provtrack.api.http import context, json_response
from provtrack.services import jeopardy as use

PREFIX = "/provtrack/v1"
router = APIRouter(prefix=PREFIX, tags=["provtrack jeopardy (extension)"])


def install_jeopardy(app: FastAPI) -> None:
    app.include_router(router)

    def handler(status: int, code: str, reason: str) -> Any:
        async def handle(_request: Request, exc: Exception) -> Response:
            return error_response(status, code, reason, str(exc))

        return handle

    app.add_exception_handler(use.EscalationNotFound, handler(404, "NOT_FOUND", "Escalation not found"))
    app.add_exception_handler(
        use.JeopardyNotMonitored, handler(503, "NOT_MONITORED", "Jeopardy monitoring is not set up")
    )


@router.get("/serviceOrder/{id}/jeopardy", summary="Jeopardy level, projection, commitment, escalations")
def get_jeopardy(id: str, request: Request) -> Response:
    view = use.jeopardy_view(request.app.state.store, id, now=request.app.state.clock())
    return json_response(orjson.dumps(view).decode())


@router.post(
    "/serviceOrder/{id}/escalation/{rule}/acknowledge",
    summary="Acknowledge an escalation: its ladder stops climbing",
)
def acknowledge(id: str, rule: str, request: Request) -> Response:
    actor = request.headers.get("x-provtrack-user") or "api"
    result = use.acknowledge(request.app.state.store, id, rule, ctx=context(request, actor))
    return json_response(orjson.dumps(result).decode())
