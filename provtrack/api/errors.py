"""TMF630 error bodies (`code`, `reason`, `message`, `status`), one stable code per cause."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from provtrack.domain.cancellation import TaskError
from provtrack.domain.patching import MalformedPatch, PatchConflict
from provtrack.domain.query import InvalidQuery
from provtrack.domain.states import IllegalTransition
from provtrack.domain.validation import InvalidOrder, ServerOwnedField
from provtrack.services.orders import OrderNotFound, TaskNotFound
from provtrack.services.ports import ConcurrentUpdate

JSON = "application/json;charset=utf-8"


class ApiError(Exception):
    """An error the API answers directly (malformed body, unsupported media type, too large)."""

    def __init__(self, status: int, code: str, reason: str, message: str) -> None:
        self.status = status
        self.code = code
        self.reason = reason
        self.message = message
        super().__init__(message)


def error_response(
    status: int, code: str, reason: str, message: str, headers: dict[str, str] | None = None
) -> Response:
    body = {"code": code, "reason": reason, "message": message, "status": str(status), "@type": "Error"}
    return Response(orjson.dumps(body), status_code=status, media_type=JSON, headers=headers)


def format_location(loc: Sequence[Any]) -> str:
    """('body', 'serviceOrderItem', 1, 'service') -> 'serviceOrderItem[1].service'."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += ("." if path else "") + str(part)
    return path or "body"


def install_error_handlers(app: FastAPI) -> None:
    def handler(status: int, code: str, reason: str) -> Any:
        async def handle(_request: Request, exc: Exception) -> Response:
            return error_response(status, code, reason, str(exc))

        return handle

    app.add_exception_handler(ServerOwnedField, handler(400, "SERVER_OWNED_FIELD", "Field set by the server"))
    app.add_exception_handler(InvalidOrder, handler(400, "INVALID_VALUE", "Invalid request"))
    app.add_exception_handler(InvalidQuery, handler(400, "INVALID_QUERY", "Invalid query parameter"))
    app.add_exception_handler(MalformedPatch, handler(400, "INVALID_PATCH", "Invalid patch document"))
    app.add_exception_handler(OrderNotFound, handler(404, "NOT_FOUND", "Service order not found"))
    app.add_exception_handler(TaskNotFound, handler(404, "NOT_FOUND", "Cancel request not found"))
    app.add_exception_handler(
        IllegalTransition, handler(409, "ILLEGAL_STATE_TRANSITION", "State change not allowed")
    )
    app.add_exception_handler(PatchConflict, handler(409, "CONFLICT", "Change not allowed now"))
    app.add_exception_handler(TaskError, handler(409, "CONFLICT", "Change not allowed now"))
    app.add_exception_handler(
        ConcurrentUpdate, handler(409, "CONCURRENT_UPDATE", "Changed concurrently; retry")
    )

    async def api_error(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return error_response(exc.status, exc.code, exc.reason, exc.message)

    async def validation_error(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        first = exc.errors()[0]
        loc = [p for p in first.get("loc", ()) if p not in ("body", "query", "path")]
        message = f"{format_location(loc)}: {first.get('msg', 'invalid')}"
        return error_response(400, "INVALID_VALUE", "Invalid request", message)

    async def http_error(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        reasons = {404: ("NOT_FOUND", "Not found"), 405: ("METHOD_NOT_ALLOWED", "Method not allowed")}
        code, reason = reasons.get(exc.status_code, ("HTTP_ERROR", "Request failed"))
        message = str(exc.detail)
        if exc.status_code == 404 and message == "Not Found":
            message = "no such resource; the TMF641 API is under /tmf-api/serviceOrdering/v4"
        elif exc.status_code == 405:
            message = "this method is not allowed on this resource"
        headers = dict(exc.headers) if exc.headers else None
        return error_response(exc.status_code, code, reason, message, headers=headers)

    async def unexpected(_request: Request, exc: Exception) -> Response:
        import structlog

        structlog.get_logger().exception("unhandled error", error=str(exc))
        return error_response(500, "INTERNAL_ERROR", "Internal error", "the server failed; see its log")

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, unexpected)
