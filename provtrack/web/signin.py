"""The sign-in page: a browser without a session is sent here (api/security.SignInRequired). Its form
posts the API key (or a JWT of the configured issuer) to `/provtrack/v1/signin`, which sets the
HttpOnly, SameSite=Strict session cookie and sends the browser back (api/session.py)."""

from __future__ import annotations

from fastapi import Request
from starlette.responses import Response

from provtrack.domain.access import return_path
from provtrack.web.app import render, router

PROBLEMS = {
    "empty": "Paste an API key to sign in.",
    "refused": "That key was refused: it is unknown, revoked or expired.",
}


@router.get("/signin")
def sign_in_page(request: Request) -> Response:
    back = return_path(request.query_params.get("next", "/"))
    problem = PROBLEMS.get(request.query_params.get("problem", ""))
    return render(request, "signin.html", back=back, problem=problem)
