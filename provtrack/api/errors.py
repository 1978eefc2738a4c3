"""TMF630 error bodies (`code`, `reason`, `message`, `status`), one stable code per cause."""

from __future__ import annotations

import traceback
from collections.abc import Sequence
from typing import Any

import orjson
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from provtrack.api.security import challenge
from provtrack.domain.access import CsrfRefused, MissingScope, Unauthenticated
from provtrack.domain.activities import IllegalActivityTransition
from provtrack.domain.cancellation import TaskError
from provtrack.domain.cancellation_steps import CancellationInProgress
from provtrack.domain.coordination_catalog import InvalidWorkGroup
from provtrack.domain.events import RefusedCallback
from provtrack.domain.idempotency import ClaimLost, InvalidIdempotencyKey, KeyInUse, KeyReused
from provtrack.domain.limits import LimitExceeded, UnsafeText
from provtrack.domain.patching import MalformedPatch, PatchConflict
from provtrack.domain.query import InvalidQuery
from provtrack.domain.states import IllegalTransition
from provtrack.domain.tasks import CapacityReached, IllegalTaskMove, InvalidTaskInput, TaskRefused
from provtrack.domain.validation import InvalidOrder, ServerOwnedField
from provtrack.domain.work_groups import InvalidChecklist
from provtrack.services.events import (
    DeadLetterNotFound,
    InvalidSubscription,
    OrderNotYetCreated,
    SubscriptionNotFound,
)
from provtrack.services.jeopardy import EscalationNotFound
from provtrack.services.orders import NoCatalog
from provtrack.services.ports import (
    ActivityNotFound,
    ConcurrentUpdate,
    ManualTaskNotFound,
    OrderNotFound,
    PlanNotFound,
    TaskNotFound,
)
from provtrack.services.tasks import UnknownWorkGroup

JSON = "application/json;charset=utf-8"


class PreconditionFailed(Exception):
    """If-Match names a version the order no longer has (HTTP 412): nothing was changed."""


TRACEBACK_FRAMES = 20  # the innermost frames: a RecursionError has a thousand of the same

# Every domain and use-case exception the API answers, with its TMF630 status, code and reason; the
# message is the exception's own. A subclass answers as its nearest listed ancestor.
ERRORS: dict[type[Exception], tuple[int, str, str]] = {
    Unauthenticated: (401, "UNAUTHENTICATED", "Authentication required"),
    MissingScope: (403, "FORBIDDEN", "Not allowed"),
    CsrfRefused: (403, "CSRF_REFUSED", "CSRF token missing"),
    PreconditionFailed: (412, "PRECONDITION_FAILED", "The order has changed"),
    InvalidIdempotencyKey: (400, "INVALID_VALUE", "Invalid request"),
    KeyInUse: (409, "IDEMPOTENCY_KEY_IN_USE", "A request with this key is running"),
    ClaimLost: (409, "IDEMPOTENCY_KEY_IN_USE", "A request with this key is running"),
    KeyReused: (422, "IDEMPOTENCY_KEY_REUSED", "Idempotency-Key used for another request"),
    ServerOwnedField: (400, "SERVER_OWNED_FIELD", "Field set by the server"),
    InvalidOrder: (400, "INVALID_VALUE", "Invalid request"),
    UnsafeText: (400, "INVALID_VALUE", "Invalid request"),
    LimitExceeded: (400, "LIMIT_EXCEEDED", "Request over a limit"),
    InvalidQuery: (400, "INVALID_QUERY", "Invalid query parameter"),
    MalformedPatch: (400, "INVALID_PATCH", "Invalid patch document"),
    InvalidSubscription: (400, "INVALID_VALUE", "Invalid request"),
    RefusedCallback: (400, "REFUSED_CALLBACK", "Callback URL refused"),
    InvalidChecklist: (400, "INVALID_CHECKLIST", "Checklist not filled in"),
    InvalidTaskInput: (400, "INVALID_VALUE", "Invalid request"),
    InvalidWorkGroup: (400, "INVALID_VALUE", "Invalid work group"),
    OrderNotFound: (404, "NOT_FOUND", "Service order not found"),
    TaskNotFound: (404, "NOT_FOUND", "Cancel request not found"),
    PlanNotFound: (404, "NOT_FOUND", "Plan not found"),
    ActivityNotFound: (404, "NOT_FOUND", "Activity not found"),
    EscalationNotFound: (404, "NOT_FOUND", "Escalation not found"),
    SubscriptionNotFound: (404, "NOT_FOUND", "Subscription not found"),
    DeadLetterNotFound: (404, "NOT_FOUND", "Dead letter not found"),
    OrderNotYetCreated: (404, "NOT_FOUND", "Service order did not exist then"),
    ManualTaskNotFound: (404, "NOT_FOUND", "Task not found"),
    UnknownWorkGroup: (404, "NOT_FOUND", "Work group not found"),
    IllegalTransition: (409, "ILLEGAL_STATE_TRANSITION", "State change not allowed"),
    IllegalActivityTransition: (409, "ILLEGAL_STATE_TRANSITION", "Activity state change not allowed"),
    PatchConflict: (409, "CONFLICT", "Change not allowed now"),
    TaskError: (409, "CONFLICT", "Change not allowed now"),
    CancellationInProgress: (409, "CONFLICT", "Change not allowed now"),
    ConcurrentUpdate: (409, "CONCURRENT_UPDATE", "Changed concurrently; retry"),
    IllegalTaskMove: (409, "ILLEGAL_STATE_TRANSITION", "Task state change not allowed"),
    CapacityReached: (409, "CAPACITY_REACHED", "Work group at capacity"),
    TaskRefused: (409, "CONFLICT", "Task action not possible now"),
    NoCatalog: (503, "NO_CATALOG", "No provisioning catalog configured"),
}


class ClientGone(Exception):
    """The client went away before it had sent its whole body: nobody reads the answer."""


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
    async def listed_error(_request: Request, exc: Exception) -> Response:
        status, code, reason = next(ERRORS[c] for c in type(exc).__mro__ if c in ERRORS)
        return error_response(status, code, reason, str(exc), headers=challenge(exc))

    for exception in ERRORS:
        app.add_exception_handler(exception, listed_error)

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

    async def client_gone(request: Request, _exc: Exception) -> Response:
        structlog.get_logger("provtrack.api").info(
            "client disconnected before its body was read", path=request.url.path
        )
        return error_response(400, "CLIENT_DISCONNECTED", "Client disconnected", "the body was not received")

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(ClientGone, client_gone)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_middleware(CatchAll)


class CatchAll:
    """An exception no handler took: one log line with the end of its traceback, and a TMF630 500.

    Not Starlette's `Exception` handler: that one answers, then raises again for the server to
    log, so each failure was logged twice, a RecursionError with thousands of lines each time."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception as exc:
            trace = "".join(traceback.format_exception(exc, limit=-TRACEBACK_FRAMES)).rstrip()
            structlog.get_logger("provtrack.api").error(
                "unhandled error",
                method=scope.get("method"),
                path=scope.get("path"),
                error=f"{type(exc).__name__}: {str(exc)[:300]}",
                traceback=trace,
            )
            if not started:
                response = error_response(
                    500, "INTERNAL_ERROR", "Internal error", "the server failed; see its log"
                )
                await response(scope, receive, send)
