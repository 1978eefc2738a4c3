"""Request and response helpers shared by the TMF routes: bodies, hrefs, field selection, pages."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import orjson
from fastapi import Request
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from provtrack.adapters.clock import new_id
from provtrack.api.errors import JSON, ApiError, ClientGone, error_response, format_location
from provtrack.domain.clock import format_datetime
from provtrack.domain.limits import check_document
from provtrack.domain.query import FieldTree, Query, parse_fields, parse_query, select_fields
from provtrack.services.ports import Context, Page, Store
from provtrack.settings import Settings

T = TypeVar("T")


async def call_store(
    request: Request,
    use_case: Callable[..., T],
    *args: Any,
    write: bool = False,
    together: bool = False,
    **kwargs: Any,
) -> T:
    """Run a use case on one order or task: inline on SQLite when nothing can hold it up, in the
    threadpool otherwise.

    On SQLite such a use case is a lookup by key or one short write transaction in this process's
    disk cache (no network inside a transaction, by design), cheaper than the hop to the threadpool:
    measured, -400 to -550 µs of CPU per GET by id and -1 ms per create. A write stays in the
    threadpool when a job worker runs in this process: the event loop must not queue behind the
    write lock its jobs hold (measured: create at 17% of the ceiling instead of 42%), nor while
    another process (a `provtrack worker`) writes. A PostgreSQL call waits on the network and must
    not hold up the event loop.

    `together`: a use case that only writes (nothing after its transaction reads what it wrote) does
    not wait for its COMMIT on the event loop; the loop serves other requests, whose transactions join
    the same COMMIT (SQLite group commit), and answers once it is durable.
    """
    store: Store = request.app.state.store
    if not (write and request.app.state.worker_in_process) and store.answers_at_once(write=write):
        if not together:
            return use_case(store, *args, **kwargs)
        with store.commit_together() as pending:
            result = use_case(store, *args, **kwargs)
        await pending.durable()
        return result
    return await run_in_threadpool(use_case, store, *args, **kwargs)


def context(request: Request, actor: str = "api", *, person: bool = False) -> Context:
    """Who acts, and when. On an authenticated route the actor the audit trail records is the
    client the token proved, with the person it names (`X-Actor`) after a colon: a header alone
    proves nothing. A listener's actor is its system. With `person` (the manual-task routes, whose
    use cases assign and check tasks by person), the actor is the person the token's holder names:
    a `tasks:work` token is the operator's own work-force system, trusted to say who works."""
    clock = request.app.state.clock
    principal = request.scope.get("state", {}).get("principal")
    if principal is not None and not person:
        actor = principal.client if actor in ("api", "operator") else f"{principal.client}:{actor[:100]}"
    return Context(now=format_datetime(clock()), actor=actor, new_id=new_id)


async def read_json(request: Request) -> Any:
    """The body as JSON: a JSON media type (415 otherwise), parsed, and within the limits
    (domain/limits.py: depth, strings, no NUL), checked before anything else reads it."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json" and not (
        media_type.startswith("application/") and media_type.endswith("+json")
    ):
        raise ApiError(
            415,
            "UNSUPPORTED_MEDIA_TYPE",
            "Unsupported media type",
            f"the body must be JSON (application/json), not {media_type[:100] or 'a body without Content-Type'}",
        )
    try:
        body = await request.body()
    except ClientDisconnect:
        raise ClientGone() from None
    if not body:
        raise ApiError(400, "MALFORMED_BODY", "Malformed request body", "the request has no body")
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ApiError(
            400, "MALFORMED_BODY", "Malformed request body", f"the body is not valid JSON: {exc}"
        ) from None
    check_document(document, request.app.state.limits)
    return document


def check_types(model: type[BaseModel], body: Any) -> None:
    """Type-check a body against its schema without replacing it (extension fields stay as sent)."""
    try:
        model.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ApiError(
            400, "INVALID_VALUE", "Invalid request", f"{format_location(first['loc'])}: {first['msg']}"
        ) from None


def base_url(request: Request) -> str:
    settings: Settings = request.app.state.settings
    return settings.base_url(str(request.base_url))


def with_href(document: str, href: str) -> str:
    """Insert `href` after `id` in a stored document (`{"id":"<uuid>",...`) without parsing it."""
    cut = document.index('",', 7) + 2
    return f'{document[:cut]}"href":{orjson.dumps(href).decode()},{document[cut:]}'


def render(document: str, href: str, fields: FieldTree | None) -> str:
    if fields is None:
        return with_href(document, href)
    doc = orjson.loads(document)
    doc = {"id": doc["id"], "href": href, **{k: v for k, v in doc.items() if k != "id"}}
    return orjson.dumps(select_fields(doc, fields)).decode()


def json_response(content: str, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(content.encode(), status_code=status, media_type=JSON, headers=headers)


def fields_of(request: Request) -> FieldTree | None:
    value = request.query_params.get("fields")
    return None if value is None else parse_fields(value)


def list_query(request: Request, enums: dict[tuple[str, ...], tuple[str, ...]] | None = None) -> Query:
    settings: Settings = request.app.state.settings
    return parse_query(
        request.scope["query_string"].decode("latin-1"),
        default_limit=settings.default_limit,
        max_limit=settings.max_limit,
        enums=enums,
        limits=request.app.state.limits,
    )


def page_response(page: Page, query: Query, collection_url: str) -> Response:
    parts = []
    for document in page.documents:
        resource_id = document[7 : document.index('"', 7)]
        parts.append(render(document, f"{collection_url}/{resource_id}", query.fields))
    complete = query.offset == 0 and len(parts) == page.total
    headers = {"X-Total-Count": str(page.total), "X-Result-Count": str(len(parts))}
    return json_response("[" + ",".join(parts) + "]", 200 if complete else 206, headers)


class BodyLimit:
    """Refuse bodies over the limit with 413, whether announced by Content-Length or streamed."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                await self._too_large(scope, receive, send)
                return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise ApiError(413, "BODY_TOO_LARGE", "Request body too large", self._message())
            return message

        await self.app(scope, limited, send)

    def _message(self) -> str:
        return f"the request body is over the limit of {self.max_bytes} bytes"

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(413, "BODY_TOO_LARGE", "Request body too large", self._message())
        await response(scope, receive, send)
