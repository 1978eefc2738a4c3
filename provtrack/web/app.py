"""The operations dashboard (docs/dashboard.md): server-rendered pages (Jinja2), htmx for live
regions, the charts as SVG drawn here. Its assets ship in the package; nothing is built by the user.

Every page and every action is on the one `router`, so access control applies to all of it in one
place: `install_dashboard(app, errors=..., dependencies=[...])`. Static assets are public.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, FastAPI, Request
from fastapi.params import Depends
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.staticfiles import StaticFiles

from provtrack.adapters.clock import new_id
from provtrack.domain.clock import format_datetime
from provtrack.services.ports import Context

# Exception type -> (status, code, reason): the API's one table (api/errors.ERRORS), given at
# assembly, so the dashboard words a refusal as the API does.
ErrorTable = Mapping[type[Exception], tuple[int, str, str]]
STATIC_VERSION = "2"  # in asset URLs: a new release is fetched anew, an old one cached for long

router = APIRouter(include_in_schema=False)


@dataclass(frozen=True, slots=True)
class Dashboard:
    templates: Environment
    errors: ErrorTable
    poll_seconds: float


def install_dashboard(
    app: FastAPI,
    *,
    errors: ErrorTable,
    dependencies: Sequence[Depends] = (),
    poll_seconds: float = 2.0,
) -> None:
    """Serve the dashboard at `/` of `app`. `dependencies` guard every page and action (access
    control plugs in here); `poll_seconds` is how often an open page asks whether anything changed."""
    from provtrack.web import actions, cancelling, pages, queues, signin  # noqa: F401 - routes on `router`

    templates = Environment(
        loader=PackageLoader("provtrack.web", "templates"),
        autoescape=select_autoescape(["html", "svg"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    templates.globals.update(static_version=STATIC_VERSION, csrf_token=csrf_token)
    templates.filters.update(when=when, duration=duration_text)
    app.state.dashboard = Dashboard(templates, errors, poll_seconds)
    app.mount("/static", StaticFiles(packages=[("provtrack.web", "static")]), name="static")
    app.include_router(router, dependencies=list(dependencies))


def dashboard(request: Request) -> Dashboard:
    value: Dashboard = request.app.state.dashboard
    return value


def render(request: Request, template: str, status: int = 200, **values: Any) -> HTMLResponse:
    board = dashboard(request)
    page = board.templates.get_template(template)
    html = page.render(
        request=request,
        now=now_of(request),
        notice=request.query_params.get("notice"),
        tone=request.query_params.get("tone", "ok"),
        poll_seconds=board.poll_seconds,
        **values,
    )
    return HTMLResponse(html, status_code=status)


def now_of(request: Request) -> datetime:
    clock: Callable[[], datetime] = request.app.state.clock
    return clock()


def store_of(request: Request) -> Any:
    return request.app.state.store


def actor_of(request: Request) -> str:
    """Who acts: the client the session was signed in as (api/session.py), with the person a
    `X-Provtrack-User` header names after a colon (a header alone proves nothing); `dashboard`
    for a dashboard served without access control."""
    principal = getattr(request.state, "principal", None)
    person = request.headers.get("x-provtrack-user")
    if principal is None:
        return person or "dashboard"
    return f"{principal.client}:{person[:100]}" if person else str(principal.client)


def person_of(request: Request) -> str:
    """Who works a manual task (the work queues): the person `X-Provtrack-User` names, else the
    client the session was signed in as (a key per coordinator: `--client amelie`), as the task
    API takes the person its caller names (api/http.context)."""
    principal = getattr(request.state, "principal", None)
    person = request.headers.get("x-provtrack-user")
    if person:
        return person[:100]
    return str(principal.client) if principal is not None else "dashboard"


def task_context(request: Request) -> Context:
    """The context of a work-queue action: its actor is the person who works the task."""
    return Context(now=format_datetime(now_of(request)), actor=person_of(request), new_id=new_id)


def context(request: Request) -> Context:
    return Context(now=format_datetime(now_of(request)), actor=actor_of(request), new_id=new_id)


def csrf_token(request: Request) -> str:
    """The session's CSRF token, which api/session.py checks on every change made with the session
    cookie. Every change the dashboard makes is a form of the `post_form` macro
    (templates/_macros.html), the one place it is rendered: as the `csrf` field and as the
    X-CSRF-Token header of its htmx request."""
    return str(getattr(request.state, "csrf", ""))


def refusal(request: Request, exc: Exception) -> str | None:
    """The API's wording of a listed exception ("Reason: message"), or None if it is not listed."""
    table = dashboard(request).errors
    for cls in type(exc).__mro__:
        if cls in table:
            _status, _code, reason = table[cls]
            return f"{reason}: {exc}"
    return None


async def form_fields(request: Request) -> dict[str, str]:
    """The fields of a submitted form (urlencoded: the dashboard's forms send nothing else)."""
    body = (await request.body()).decode("utf-8", errors="replace")
    return dict(parse_qsl(body, keep_blank_values=True))


# What a button tells once its use case has run: a notice, or a notice and its tone.
Outcome = str | tuple[str, str]


async def run_action(
    request: Request, target: str, action: Callable[[], Any], done: Outcome | Callable[[Any], Outcome]
) -> Response:
    """Run the use case in the threadpool (it waits on the database), then go back to `target`
    with `done` (or what `done` makes of the use case's result), or with the refusal."""
    try:
        result = await run_in_threadpool(action)
    except Exception as exc:
        message = refusal(request, exc)
        if message is None:
            raise
        return back(target, message, tone="error")
    told = done(result) if callable(done) else done
    notice, tone = (told, "ok") if isinstance(told, str) else told
    return back(target, notice, tone=tone)


def back(target: str, notice: str, *, tone: str = "ok") -> Response:
    """Post/redirect/get: to a page of the dashboard (never elsewhere), with a notice to show."""
    if not target.startswith("/") or target.startswith("//"):
        target = "/"
    path, _, query = target.partition("?")
    kept = [p for p in query.split("&") if p and not p.startswith(("notice=", "tone="))]
    kept.append(urlencode({"notice": notice, "tone": tone}))
    return RedirectResponse(f"{path}?{'&'.join(kept)}", status_code=303)


def when(value: str | None, *, date_only: bool = False) -> str:
    """A stored instant as a coordinator reads it: `2026-11-27 09:12` (UTC)."""
    if not value:
        return "—"
    text = str(value).replace("T", " ")
    return text[:10] if date_only else text[:16]


def duration_text(seconds: float | None) -> str:
    from datetime import timedelta

    from provtrack.domain.durations import humane_duration

    if seconds is None:
        return "—"
    return humane_duration(timedelta(seconds=float(seconds)))
