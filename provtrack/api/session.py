"""Signing in once, for the dashboard: a bearer token (an API key, or a JWT of the issuer) is
exchanged for an HttpOnly, SameSite=Strict session cookie; a request that changes something with
that cookie must also carry the session's CSRF token in `X-CSRF-Token` (docs/security.md).

The cookie is signed (HMAC-SHA256 with a key made once and kept in the database), not stored: it
says who, which scopes, until when, and the CSRF token. It lasts `PROVTRACK_SESSION_SECONDS`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from datetime import datetime, timedelta
from urllib.parse import parse_qsl, urlencode

import orjson
from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from provtrack.api.http import json_response
from provtrack.api.openapi import answers
from provtrack.api.security import AUTH_FAILURES, principal_of
from provtrack.domain.access import CsrfRefused, Principal, Unauthenticated, return_path
from provtrack.domain.clock import format_datetime, parse_datetime
from provtrack.services import access

COOKIE = "provtrack_session"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
FORM_TYPE = "application/x-www-form-urlencoded"
router = APIRouter(prefix="/provtrack/v1", tags=["provtrack session (dashboard)"])


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


async def _key(request: Request) -> bytes:
    key: bytes | None = getattr(request.app.state, "session_key", None)
    if key is None:
        secret = await run_in_threadpool(
            access.listener_token,
            request.app.state.store,
            "session:signing-key",
            now=request.app.state.clock(),
        )
        key = hashlib.sha256(secret.encode()).digest()
        request.app.state.session_key = key
    return key


def _seal(key: bytes, claims: dict[str, object]) -> str:
    body = _b64(orjson.dumps(claims))
    return f"{body}.{_b64(hmac.new(key, body.encode(), hashlib.sha256).digest())}"


def _open(key: bytes, cookie: str) -> dict[str, object] | None:
    body, _, signature = cookie.partition(".")
    expected = _b64(hmac.new(key, body.encode(), hashlib.sha256).digest())
    if not signature or not hmac.compare_digest(expected, signature):
        return None
    try:
        claims = orjson.loads(_unb64(body))
    except (ValueError, orjson.JSONDecodeError):
        return None
    return claims if isinstance(claims, dict) else None


async def session_principal(request: Request) -> Principal | None:
    """The principal of the request's session cookie, or None when it has none. A cookie that is
    forged or expired is Unauthenticated; a change without the CSRF token is CsrfRefused."""
    cookie = request.cookies.get(COOKIE)
    if cookie is None:
        return None
    claims = _open(await _key(request), cookie)
    now: datetime = request.app.state.clock()
    if (
        claims is None
        or not isinstance(claims.get("until"), str)
        or parse_datetime(str(claims["until"])) <= now
    ):
        raise Unauthenticated("the session has expired or is not ours: sign in again", error="invalid_token")
    csrf = str(claims.get("csrf", ""))
    if request.method not in SAFE_METHODS and not hmac.compare_digest(
        csrf.encode(), (await _csrf_sent(request)).encode()
    ):
        raise CsrfRefused(f"a change in a session needs its CSRF token ({CSRF_HEADER}, or the form's `csrf`)")
    request.state.csrf = csrf  # the dashboard's forms carry it (web/app.csrf_token)
    scopes = claims.get("scopes")
    return Principal(
        str(claims.get("client")),
        frozenset(str(s) for s in scopes) if isinstance(scopes, list) else frozenset(),
        via="session",
    )


async def _csrf_sent(request: Request) -> str:
    """The CSRF token a change carries: the header (scripts), or the `csrf` field of a form (the
    dashboard's forms; the request keeps the body it read for the route)."""
    header = request.headers.get(CSRF_HEADER)
    if header is not None:
        return header
    return (await form_fields(request)).get("csrf", "")


async def form_fields(request: Request) -> dict[str, str]:
    """An `application/x-www-form-urlencoded` body's fields (anything else: none)."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != FORM_TYPE:
        return {}
    return dict(parse_qsl((await request.body()).decode("utf-8", errors="replace"), keep_blank_values=True))


@router.post(
    "/session",
    status_code=201,
    summary="Sign in (the dashboard): the bearer token becomes a session cookie",
    description=(
        "Send the token as `Authorization: Bearer ...`. The answer sets an HttpOnly, SameSite=Strict "
        "cookie and gives the session's `csrfToken`, to send as `X-CSRF-Token` with every change."
    ),
    responses=answers(201, description="Signed in: the cookie is set"),
)
async def sign_in(request: Request) -> Response:
    principal = principal_of(request)
    if principal.via == "session":
        raise Unauthenticated("sign in with a bearer token, not with a session", error="invalid_request")
    claims = _claims(request, principal)
    body = {
        "client": principal.client,
        "scopes": claims["scopes"],
        "expiresAt": claims["until"],
        "csrfToken": claims["csrf"],
    }
    response = json_response(orjson.dumps(body).decode(), 201)
    await _set_cookie(request, response, claims)
    return response


def _claims(request: Request, principal: Principal) -> dict[str, object]:
    until = request.app.state.clock() + timedelta(seconds=request.app.state.settings.session_seconds)
    return {
        "client": principal.client,
        "scopes": sorted(principal.scopes),
        "until": format_datetime(until),
        "csrf": secrets.token_urlsafe(24),
    }


async def _set_cookie(request: Request, response: Response, claims: dict[str, object]) -> None:
    settings = request.app.state.settings
    secure = request.url.scheme == "https" or (settings.public_url or "").startswith("https://")
    response.set_cookie(
        COOKIE,
        _seal(await _key(request), claims),
        max_age=int(settings.session_seconds),
        httponly=True,
        samesite="strict",
        secure=secure,
        path="/",
    )


@router.post("/signin", include_in_schema=False, summary="The dashboard's sign-in form")
async def sign_in_form(request: Request) -> Response:
    """The sign-in page's form (web/templates/signin.html): the token is checked as a bearer token
    would be; then the session cookie, and back to the page that asked (a path of this server only).
    Public: the token in the form is the credential."""
    form = await form_fields(request)
    token, wanted = form.get("token"), form.get("next")
    back = return_path(wanted)
    if not isinstance(token, str) or not token.strip():
        return RedirectResponse(f"/signin?{urlencode({'next': back, 'problem': 'empty'})}", status_code=303)
    headers = [(k, v) for k, v in request.scope["headers"] if k != b"authorization"]
    headers.append((b"authorization", f"Bearer {token.strip()}".encode()))
    as_bearer = Request({**request.scope, "headers": headers})
    try:
        principal = await request.app.state.authenticator(as_bearer)
    except Unauthenticated:
        AUTH_FAILURES.labels("invalid").inc()
        return RedirectResponse(f"/signin?{urlencode({'next': back, 'problem': 'refused'})}", status_code=303)
    response = RedirectResponse(back, status_code=303)
    await _set_cookie(request, response, _claims(request, principal))
    return response


@router.delete(
    "/session",
    status_code=204,
    summary="Sign out: the session cookie is cleared",
    responses=answers(204),
)
async def sign_out() -> Response:
    response = Response(status_code=204)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return response
