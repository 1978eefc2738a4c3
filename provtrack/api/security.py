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

import structlog
from fastapi import Request
from prometheus_client import Counter
from starlette.concurrency import run_in_threadpool

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
        raise
    request.state.principal = principal
    fields = {"client": principal.client}
    if "serviceOrder/{id}" in key[1]:
        fields["order_id"] = str(request.path_params.get("id", ""))[:100]
    structlog.contextvars.bind_contextvars(**fields)  # on every log line of the request
    if not principal.allows(scope):
        AUTH_FAILURES.labels("scope").inc()
        raise MissingScope(scope, principal)


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
            for status, text in _statuses(method.upper(), path, scope).items():
                responses.setdefault(str(status), {"description": text, "content": error})
            if scope is PUBLIC:
                operation["security"] = []
                continue
            operation["security"] = [{"bearerAuth": []}]
            operation["description"] = (
                operation.get("description", "") + f"\n\nNeeds the scope `{scope}` (or `admin`)."
            ).strip()


def _statuses(method: str, path: str, scope: Scope | None) -> dict[int, str]:
    """The error statuses of an operation, by what it is."""
    statuses = {400: "Bad request: a parameter, the query or the body is refused (the message says which)"}
    if scope is not PUBLIC:
        statuses |= {401: "No bearer token, or one refused", 403: f"The token lacks the scope {scope}"}
    statuses[404] = "Not found: no such resource (or another client's), or a resource the query names"
    if method in ("POST", "PATCH", "PUT"):
        statuses |= {
            409: "Conflict: the state does not allow it, or a request with this Idempotency-Key is running",
            413: "Body too large",
            415: "The body is not JSON",
            422: "Idempotency-Key used for another request, or a notification its system does not confirm",
        }
    if method in ("PATCH", "DELETE") and "serviceOrder/{id}" in path:
        statuses[412] = "If-Match names a version the order no longer has: nothing changed"
    if method == "GET" and path.endswith("serviceOrder/{id}"):
        statuses[304] = "If-None-Match names the version the client has"
    if "jeopardy" in path or "escalation" in path or "tmf652" in path or path == "/ready":
        statuses[503] = "Not available now: not monitored, not ready, or the system could not be read"
    return statuses
