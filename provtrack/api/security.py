"""Who may call which route: bearer tokens on every route but liveness, one scope per route, and
what each client may see (docs/security.md).

`authorize` runs before every API route (a dependency of the whole app): it finds the route's rule
in `ROUTE_SCOPES`, authenticates the caller (an API key, or a JWT of the configured issuer) and
checks the scope. A route missing from the table is for administrators only, and a test fails
until it is listed: access is decided here, in one table, not in each route.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import urlencode

import structlog
from fastapi import Request
from prometheus_client import Counter
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from provtrack.domain.access import TOKEN_PREFIX, MissingScope, Principal, Scope, Unauthenticated
from provtrack.services import access
from provtrack.services.ports import Store

PUBLIC = None  # a route anyone may call: liveness, and listeners that check their own token
TMF641 = "/tmf-api/serviceOrdering/v4"
EXT = "/provtrack/v1"

# (method, route path) -> the scope it needs; HEAD is GET.
ROUTE_SCOPES: dict[tuple[str, str], Scope | None] = {
    ("GET", f"{TMF641}/serviceOrder"): Scope.ORDERS_READ,
    ("POST", f"{TMF641}/serviceOrder"): Scope.ORDERS_WRITE,
    ("GET", f"{TMF641}/serviceOrder/{{id}}"): Scope.ORDERS_READ,
    ("PATCH", f"{TMF641}/serviceOrder/{{id}}"): Scope.ORDERS_WRITE,
    ("DELETE", f"{TMF641}/serviceOrder/{{id}}"): Scope.ADMIN,  # "for administration purposes"
    ("GET", f"{TMF641}/cancelServiceOrder"): Scope.ORDERS_READ,
    ("POST", f"{TMF641}/cancelServiceOrder"): Scope.ORDERS_CANCEL,
    ("GET", f"{TMF641}/cancelServiceOrder/{{id}}"): Scope.ORDERS_READ,
    ("POST", f"{TMF641}/hub"): Scope.EVENTS_MANAGE,
    ("GET", f"{TMF641}/hub/{{id}}"): Scope.EVENTS_MANAGE,
    ("DELETE", f"{TMF641}/hub/{{id}}"): Scope.EVENTS_MANAGE,
    ("GET", f"{EXT}/hub"): Scope.EVENTS_MANAGE,
    ("POST", f"{EXT}/hub/{{id}}/rotateSecret"): Scope.EVENTS_MANAGE,
    ("GET", f"{EXT}/deadLetter"): Scope.EVENTS_MANAGE,
    ("POST", f"{EXT}/deadLetter/replay"): Scope.EVENTS_MANAGE,
    ("GET", f"{EXT}/serviceOrder/{{id}}/timeline"): Scope.ORDERS_READ,
    ("GET", f"{EXT}/serviceOrder/{{id}}/plan"): Scope.ORDERS_READ,
    ("GET", f"{EXT}/activity/{{id}}"): Scope.ORDERS_READ,
    ("POST", f"{EXT}/activity/{{id}}/retry"): Scope.TASKS_WORK,
    ("POST", f"{EXT}/activity/{{id}}/skip"): Scope.TASKS_WORK,
    ("POST", f"{EXT}/activity/{{id}}/fail"): Scope.TASKS_WORK,
    ("GET", f"{EXT}/serviceOrder/{{id}}/jeopardy"): Scope.ORDERS_READ,
    ("POST", f"{EXT}/serviceOrder/{{id}}/escalation/{{rule}}/acknowledge"): Scope.TASKS_WORK,
    ("POST", f"{EXT}/tmf652/{{system}}/{{token}}/listener/{{event_type}}"): PUBLIC,  # its callback token
    ("POST", f"{EXT}/tmf652/{{system}}/listener/{{event_type}}"): PUBLIC,  # refused: no callback token
    ("GET", f"{EXT}/health"): PUBLIC,  # liveness, for load balancers
    ("POST", f"{EXT}/session"): Scope.ORDERS_READ,  # signs in with a bearer token (api/session.py)
    ("DELETE", f"{EXT}/session"): PUBLIC,  # clears the session cookie
    ("GET", "/ready"): Scope.METRICS_READ,
    ("GET", "/metrics"): Scope.METRICS_READ,
    ("GET", "/openapi.json"): PUBLIC,  # the API's description, and the documentation pages
    ("GET", "/docs"): PUBLIC,
    ("GET", "/redoc"): PUBLIC,
    # cancellation (docs/cancellation.md)
    ("GET", f"{EXT}/serviceOrder/{{id}}/cancellationImpact"): Scope.ORDERS_READ,
    ("POST", f"{EXT}/tmf652/{{system}}/{{token}}/listener/cancelResourceOrderCreateEvent"): PUBLIC,
    ("POST", f"{EXT}/tmf652/{{system}}/{{token}}/listener/cancelResourceOrderStateChangeEvent"): PUBLIC,
    ("POST", f"{EXT}/partner/{{partner}}/{{token}}/listener/cancelServiceOrderCreateEvent"): PUBLIC,
    ("POST", f"{EXT}/partner/{{partner}}/{{token}}/listener/cancelServiceOrderStateChangeEvent"): PUBLIC,
    ("POST", f"{EXT}/tmf622/{{token}}/listener/{{event_type}}"): PUBLIC,  # its callback token
    # partners (docs/coordination.md): their callbacks carry a token
    ("POST", f"{EXT}/partner/{{partner}}/{{token}}/listener"): PUBLIC,
    ("POST", f"{EXT}/partner/{{partner}}/{{token}}/listener/{{event_type}}"): PUBLIC,
    # manual tasks and work groups: the operator's own staff, across clients (docs/coordination.md)
    ("GET", f"{EXT}/task"): Scope.TASKS_WORK,
    ("GET", f"{EXT}/task/{{id}}"): Scope.TASKS_WORK,
    ("POST", f"{EXT}/task/{{id}}/assign"): Scope.TASKS_WORK,
    ("POST", f"{EXT}/task/{{id}}/reassign"): Scope.TASKS_WORK,
    ("POST", f"{EXT}/task/{{id}}/claim"): Scope.TASKS_WORK,
    ("POST", f"{EXT}/task/{{id}}/start"): Scope.TASKS_WORK,
    ("POST", f"{EXT}/task/{{id}}/note"): Scope.TASKS_WORK,
    ("POST", f"{EXT}/task/{{id}}/complete"): Scope.TASKS_WORK,
    ("POST", f"{EXT}/task/{{id}}/fail"): Scope.TASKS_WORK,
    ("POST", f"{EXT}/task/{{id}}/handBack"): Scope.TASKS_WORK,
    ("POST", f"{EXT}/task/{{id}}/requestInformation"): Scope.TASKS_WORK,
    ("GET", f"{EXT}/workGroup"): Scope.TASKS_WORK,
    ("GET", f"{EXT}/workGroup/{{name}}"): Scope.TASKS_WORK,
    ("GET", f"{EXT}/workGroup/{{name}}/queue"): Scope.TASKS_WORK,
    ("PUT", f"{EXT}/workGroup/{{name}}"): Scope.ADMIN,
    # business metrics (docs/dashboard.md): across every client's orders
    ("GET", f"{EXT}/metrics"): Scope.METRICS_READ,
    ("GET", f"{EXT}/metrics/cycleTime"): Scope.METRICS_READ,
    ("GET", f"{EXT}/metrics/onTime"): Scope.METRICS_READ,
    ("GET", f"{EXT}/metrics/jeopardy"): Scope.METRICS_READ,
    ("GET", f"{EXT}/metrics/fallout"): Scope.METRICS_READ,
    ("GET", f"{EXT}/metrics/throughput"): Scope.METRICS_READ,
    ("GET", f"{EXT}/metrics/openOrders"): Scope.METRICS_READ,
    # The dashboard (provtrack/web) is the operator's console: it shows and changes every client's
    # orders, so each of its pages and actions needs `admin` (its session is signed in with such a key).
    ("GET", "/signin"): PUBLIC,  # the sign-in page; its form posts to /provtrack/v1/signin
    ("POST", f"{EXT}/signin"): PUBLIC,  # the form carries the token: the credential itself
    ("GET", "/"): Scope.ADMIN,
    ("GET", "/orders/{order_id}"): Scope.ADMIN,
    ("GET", "/jeopardy"): Scope.ADMIN,
    ("GET", "/fallout"): Scope.ADMIN,
    ("GET", "/events"): Scope.ADMIN,
    ("GET", "/performance"): Scope.ADMIN,
    ("GET", "/live"): Scope.ADMIN,
    ("POST", "/orders/{order_id}/note"): Scope.ADMIN,
    ("POST", "/orders/{order_id}/hold"): Scope.ADMIN,
    ("POST", "/orders/{order_id}/resume"): Scope.ADMIN,
    ("POST", "/activities/{activity_id}/{action}"): Scope.ADMIN,
    ("POST", "/orders/{order_id}/escalations/{rule}/acknowledge"): Scope.ADMIN,
    ("POST", "/fallout/retry"): Scope.ADMIN,
    ("POST", "/events/replay"): Scope.ADMIN,
    ("GET", "/queues"): Scope.ADMIN,
    ("POST", "/tasks/{task_id}/{action}"): Scope.ADMIN,
    ("GET", "/orders/{order_id}/cancel"): Scope.ADMIN,  # the impact preview
    ("POST", "/orders/{order_id}/cancel"): Scope.ADMIN,
}

AUTH_FAILURES = Counter(
    "provtrack_auth_failures_total",
    "Requests refused for want of credentials (missing, invalid) or of a scope (scope)",
    ["reason"],
)
_BEARER = re.compile(r"Bearer ([A-Za-z0-9\-._~+/]+=*)", re.IGNORECASE)  # RFC 6750 b64token
MAX_TOKEN_LENGTH = 8192


class Authenticator(Protocol):
    """Who the request acts as, or Unauthenticated."""

    def __call__(self, request: Request) -> Awaitable[Principal]: ...


class JwtVerifier(Protocol):
    def verify(self, token: str) -> Principal: ...


@dataclass
class Trusted:
    """Every request acts as one principal: for tests and benchmarks that are not about access."""

    principal: Principal

    async def __call__(self, request: Request) -> Principal:
        return self.principal


class Tokens:
    """Bearer tokens: provtrack API keys (`pt_...`, looked up by hash, remembered for `cache_seconds`
    so that a busy client costs no query per request; a revocation takes effect within that time)
    and, with a verifier, JWTs of the configured issuer."""

    def __init__(
        self,
        store: Store,
        *,
        clock: Callable[[], datetime],
        jwt: JwtVerifier | None = None,
        cache_seconds: float = 5.0,
    ) -> None:
        self.store = store
        self.clock = clock
        self.jwt = jwt
        self.cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, Principal | None]] = {}

    async def __call__(self, request: Request) -> Principal:
        token = bearer_token(request)
        if token.startswith(TOKEN_PREFIX):
            principal = await self._api_key(token)
            if principal is None:
                raise Unauthenticated("the API key is unknown, revoked or expired", error="invalid_token")
            return principal
        if self.jwt is not None:
            return await run_in_threadpool(self.jwt.verify, token)
        raise Unauthenticated("the token is not a provtrack API key", error="invalid_token")

    async def _api_key(self, token: str) -> Principal | None:
        now = time.monotonic()
        cached = self._cache.get(token)
        if cached is not None and cached[0] > now:
            return cached[1]
        principal = await run_in_threadpool(access.principal_of_token, self.store, token, now=self.clock())
        if self.cache_seconds > 0:
            if len(self._cache) > 4096:  # unknown tokens are cached too: keep a flood of them bounded
                self._cache.clear()
            self._cache[token] = (now + self.cache_seconds, principal)
        return principal


def bearer_token(request: Request) -> str:
    header = request.headers.get("authorization")
    if not header:
        raise Unauthenticated("this needs a bearer token: Authorization: Bearer <token>")
    match = _BEARER.fullmatch(header.strip())
    if match is None or len(header) > MAX_TOKEN_LENGTH:
        raise Unauthenticated("the Authorization header is not `Bearer <token>`", error="invalid_request")
    return match.group(1)


async def authorize(request: Request) -> None:
    """The dependency every API route runs first (create_app): its rule, the caller, the scope."""
    route: Any = request.scope.get("route")
    method = "GET" if request.method == "HEAD" else request.method
    key = (method, str(getattr(route, "path", "")))
    scope = ROUTE_SCOPES.get(key, Scope.ADMIN)  # unlisted: administrators only
    if scope is PUBLIC:
        return
    authenticator: Authenticator = request.app.state.authenticator
    try:
        principal = None
        if "authorization" not in request.headers:
            from provtrack.api.session import session_principal  # the dashboard's cookie

            principal = await session_principal(request)
        if principal is None:
            principal = await authenticator(request)
    except Unauthenticated as exc:
        AUTH_FAILURES.labels("missing" if exc.error is None else "invalid").inc()
        if method == "GET" and is_dashboard_page(key[1]):
            raise SignInRequired(str(request.url.path), str(request.url.query)) from None
        raise
    request.state.principal = principal
    fields = {"client": principal.client}
    if "serviceOrder/{id}" in key[1]:
        fields["order_id"] = str(request.path_params.get("id", ""))[:100]
    structlog.contextvars.bind_contextvars(**fields)  # on every log line of the request
    if not principal.allows(scope):
        AUTH_FAILURES.labels("scope").inc()
        raise MissingScope(scope, principal)


async def require_listener_token(request: Request, source: str, token: str, *, who: str) -> None:
    """A listener's callback URL carries the token provtrack registered with `source` (a system's,
    a partner's or the product ordering API's hub): anything else is Unauthenticated."""
    if not await run_in_threadpool(access.listener_token_matches, request.app.state.store, source, token):
        AUTH_FAILURES.labels("listener").inc()
        raise Unauthenticated(f"this is not the callback provtrack registered at {who}'s hub")


API_PREFIXES = ("/tmf-api/", "/provtrack/", "/ready", "/metrics", "/openapi.json", "/docs", "/redoc")


def is_dashboard_page(route_path: str) -> bool:
    """A page of the dashboard (provtrack/web), where a browser without a session is sent to sign
    in rather than answered 401."""
    return not route_path.startswith(API_PREFIXES)


class SignInRequired(Exception):
    """A dashboard page asked for without a session: the browser goes to the sign-in page."""

    def __init__(self, path: str, query: str) -> None:
        super().__init__("sign in to see this page")
        self.back = f"{path}?{query}" if query else path


def sign_in_redirect(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SignInRequired)
    return RedirectResponse(f"/signin?{urlencode({'next': exc.back})}", status_code=303)


def principal_of(request: Request) -> Principal:
    """The caller, as `authorize` found it."""
    principal: Principal = request.state.principal
    return principal


def client_filter(request: Request) -> str | None:
    """What a list is restricted to: the caller's own records, or everything for an administrator."""
    principal = principal_of(request)
    return None if principal.is_admin else principal.client


def challenge(exc: Exception) -> dict[str, str] | None:
    """The WWW-Authenticate header of a 401 or 403 (RFC 6750 §3)."""
    if isinstance(exc, Unauthenticated):
        error = f', error="{exc.error}"' if exc.error else ""
        return {"WWW-Authenticate": f'Bearer realm="provtrack"{error}'}
    if isinstance(exc, MissingScope):
        return {
            "WWW-Authenticate": f'Bearer realm="provtrack", error="insufficient_scope", scope="{exc.scope}"'
        }
    return None


def document_security(document: dict[str, Any]) -> None:
    """The OpenAPI document says it too: a bearer scheme, and on each operation its scope and every
    error status it may answer (access, limits, retries: this feature's; the others TMF630's)."""
    from provtrack.api.schemas import Error

    components = document.setdefault("components", {})
    components.setdefault("securitySchemes", {})["bearerAuth"] = {
        "type": "http",
        "scheme": "bearer",
        "description": "an API key (`provtrack token create`), or a JWT of the configured issuer",
    }
    error = {"application/json": {"schema": {"$ref": f"#/components/schemas/{Error.__name__}"}}}
    components.setdefault("schemas", {}).setdefault(Error.__name__, Error.model_json_schema())
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            key = (method.upper(), path)
            scope = ROUTE_SCOPES.get(key, Scope.ADMIN)
            responses = operation.setdefault("responses", {})
            statuses = _statuses(method.upper(), path, scope, with_body="requestBody" in operation)
            for status, text in statuses.items():
                responses.setdefault(str(status), {"description": text, "content": error})
            if scope is PUBLIC:
                operation["security"] = []
                continue
            operation["security"] = [{"bearerAuth": []}]
            operation["description"] = (
                operation.get("description", "") + f"\n\nNeeds the scope `{scope}` (or `admin`)."
            ).strip()


IDEMPOTENT_POSTS = ("/serviceOrder", "/cancelServiceOrder", "/hub")  # take an Idempotency-Key


def _statuses(method: str, path: str, scope: Scope | None, *, with_body: bool) -> dict[int, str]:
    """The error statuses this feature adds to an operation (the route declares its own first):
    any query can be refused at the door (limits, NUL); access; retries and concurrent edits."""
    statuses = {400: "Bad request: a parameter, the query or the body is refused (the message says which)"}
    if scope is not PUBLIC:
        statuses |= {401: "No bearer token, or one refused", 403: f"The token lacks the scope {scope}"}
    if with_body:
        statuses |= {413: "Body too large", 415: "The body is not JSON"}
    if method == "POST" and path.endswith(IDEMPOTENT_POSTS) and path.startswith(TMF641):
        statuses |= {
            409: "A request with this Idempotency-Key is still running",
            422: "This Idempotency-Key was used for another request",
        }
    if method in ("PATCH", "DELETE") and path.endswith("serviceOrder/{id}"):
        statuses[412] = "If-Match names a version the order no longer has: nothing changed"
    if method == "GET" and path.endswith("serviceOrder/{id}"):
        statuses[304] = "If-None-Match names the version the client has"
    if path.endswith("/tmf652/{system}/{token}/listener/{event_type}"):
        statuses |= {
            422: "A notification its system does not confirm",
            503: "The system could not be read to confirm the notification",
        }
    return statuses
