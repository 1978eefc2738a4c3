"""HTTP methods a resource allows: `OPTIONS` and 405 answer with `Allow`, `HEAD` works where `GET` does.

Starlette's router answers 405 with the methods of the first route whose path matches, but a TMF path
is several routes (GET, PATCH and DELETE on `/serviceOrder/{id}` are three), and it knows no HEAD or
OPTIONS for FastAPI routes. This middleware answers them from every route of the path.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from provtrack.api.errors import error_response

_ALWAYS = ("OPTIONS",)


@dataclass(frozen=True, slots=True)
class RouteInfo:
    """One route of the application, included routers flattened."""

    path: str  # the path template, `/serviceOrder/{id}`
    pattern: re.Pattern[str]
    methods: frozenset[str]
    name: str
    operation_id: str | None
    in_schema: bool


def routes_of(app: FastAPI) -> Iterator[RouteInfo]:
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        methods = getattr(route, "methods", None)
        path = context.path_format
        if not methods or path is None:
            continue  # a mount (the docs assets): not a resource
        pattern, _, _ = compile_path(path)
        yield RouteInfo(
            path=path,
            pattern=pattern,
            methods=frozenset(methods),
            name=getattr(route, "name", ""),
            operation_id=getattr(route, "operation_id", None),
            in_schema=getattr(route, "include_in_schema", False),
        )


class AllowedMethods:
    def __init__(self, app: ASGIApp, *, application: FastAPI) -> None:
        self.app = app
        self.application = application  # whose routes are looked up, once all are added
        self._routes: list[RouteInfo] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        if method not in ("HEAD", "OPTIONS"):
            # Matching the path against every route costs more than a create's SQL: only when the
            # router refuses the method (its plain 405) is the answer made here.
            refused = await self._pass(scope, receive, send)
            if not refused:
                return
        served = self._served(scope)
        if not served or method in served:
            await self.app(scope, receive, send)
            return
        if method == "HEAD" and "GET" in served:
            await self.app({**scope, "method": "GET"}, receive, _without_body(send))
            return
        allow = ", ".join(sorted({*served, *(("HEAD",) if "GET" in served else ()), *_ALWAYS}))
        if method == "OPTIONS":
            await send(
                {"type": "http.response.start", "status": 204, "headers": [(b"allow", allow.encode())]}
            )
            await send({"type": "http.response.body", "body": b""})
            return
        message = f"{method} is not allowed on this resource; it allows {allow}"
        response = error_response(405, "METHOD_NOT_ALLOWED", "Method not allowed", message, {"Allow": allow})
        await response(scope, receive, send)

    async def _pass(self, scope: Scope, receive: Receive, send: Send) -> bool:
        """Run the app; True (and nothing sent) if its router answered 405."""
        refused = False

        async def sending(message: Message) -> None:
            nonlocal refused
            if message["type"] == "http.response.start" and message["status"] == 405:
                refused = True
            if not refused:
                await send(message)

        await self.app(scope, receive, sending)
        return refused

    def _served(self, scope: Scope) -> set[str]:
        """The methods the routes whose path matches serve themselves."""
        if self._routes is None:
            self._routes = list(routes_of(self.application))
        path = scope.get("path", "")
        allowed: set[str] = set()
        for route in self._routes:
            if route.pattern.match(path):
                allowed |= route.methods
        return allowed


def _without_body(send: Send) -> Send:
    """A HEAD answer: the GET's status and headers (Content-Length included), no body."""

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.body":
            message = {**message, "body": b""}
        await send(message)

    return sending
