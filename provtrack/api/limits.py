"""Hostile input stops at the door: NUL characters and oversized paths or query strings are refused
before any route runs, and every JSON body is checked against the limits (domain/limits.py) as it
is read, the same way on SQLite and PostgreSQL (docs/security.md, "Limits")."""

from __future__ import annotations

from urllib.parse import unquote_to_bytes

from starlette.types import ASGIApp, Receive, Scope, Send

from provtrack.api.errors import error_response
from provtrack.domain.limits import Limits
from provtrack.settings import Settings

MAX_PATH_BYTES = 2048  # ids are uuids or short names; a longer path is not a provtrack URL
MAX_QUERY_BYTES = 16_384


def limits_from(settings: Settings) -> Limits:
    return Limits(
        depth=settings.max_depth,
        string_length=settings.max_string_length,
        items_per_order=settings.max_items_per_order,
        characteristics_per_service=settings.max_characteristics_per_service,
        sort_terms=settings.max_sort_terms,
        filter_terms=settings.max_filter_terms,
    )


class InputGuard:
    """Refuse a request whose path or query string holds a NUL character (PostgreSQL cannot keep or
    compare one: each such id or filter answered 500) or is longer than any provtrack URL."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            problem = _problem(scope)
            if problem is not None:
                code, message = problem
                response = error_response(400, code, "Invalid request", message)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _problem(scope: Scope) -> tuple[str, str] | None:
    raw_path: bytes = scope.get("raw_path") or scope["path"].encode("utf-8", "surrogateescape")
    query: bytes = scope.get("query_string", b"")
    if len(raw_path) > MAX_PATH_BYTES:
        return "INVALID_VALUE", f"the path is longer than {MAX_PATH_BYTES} bytes"
    if b"\x00" in unquote_to_bytes(raw_path) or "\x00" in scope["path"]:
        return "INVALID_VALUE", "the path holds a NUL character (%00): no id has one"
    if len(query) > MAX_QUERY_BYTES:
        return "INVALID_QUERY", f"the query string is longer than {MAX_QUERY_BYTES} bytes"
    if b"\x00" in unquote_to_bytes(query):
        return "INVALID_QUERY", "the query holds a NUL character (%00)"
    return None
