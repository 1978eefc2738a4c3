"""Every request gets a request id and a trace (its `traceparent`, or a new one), bound to every log
line it writes with the client and the order it is about; both are answered back in headers, and
the trace goes on with the calls the request makes (adapters/tracing.py)."""

from __future__ import annotations

import re
import time

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from provtrack.adapters import tracing

_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
log = structlog.get_logger("provtrack.api")


class RequestContext:
    def __init__(self, app: ASGIApp, *, access_log: bool = False) -> None:
        self.app = app
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        given = headers.get("x-request-id", "")
        request_id = given if _REQUEST_ID.fullmatch(given) else tracing.new_trace()
        trace = tracing.trace_of(headers.get("traceparent")) or tracing.new_trace()
        started, status = time.perf_counter(), 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode()),
                    (b"traceparent", tracing.outgoing()["traceparent"].encode()),
                ]
            await send(message)

        structlog.contextvars.clear_contextvars()
        try:
            with tracing.traced(trace, request_id=request_id):
                await self.app(scope, receive, sending)
                if self.access_log:
                    log.info(
                        "request",
                        method=scope["method"],
                        path=scope["path"],
                        status=status,
                        ms=round((time.perf_counter() - started) * 1000, 1),
                    )
        finally:
            structlog.contextvars.clear_contextvars()
