"""/docs (Swagger UI) and /redoc, with their scripts and styles served from the installed package
`fastapi-offline` instead of a CDN: the docs work on a machine with no Internet access."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

ASSETS_PATH = "/docs/assets"
ASSETS = ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js", "favicon.png")


def assets_directory() -> Path:
    return Path(str(files("fastapi_offline") / "static"))


def install_docs(app: FastAPI, *, openapi_url: str) -> None:
    app.mount(ASSETS_PATH, StaticFiles(directory=assets_directory()), name="docs-assets")

    def root(request: Request) -> str:
        return str(request.scope.get("root_path", "")).rstrip("/")

    @app.get("/docs", include_in_schema=False)
    def swagger_ui(request: Request) -> HTMLResponse:
        base = root(request)
        return get_swagger_ui_html(
            openapi_url=base + openapi_url,
            title=f"{app.title} - API docs",
            swagger_js_url=f"{base}{ASSETS_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{base}{ASSETS_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{base}{ASSETS_PATH}/favicon.png",
        )

    @app.get("/redoc", include_in_schema=False)
    def redoc(request: Request) -> HTMLResponse:
        base = root(request)
        return get_redoc_html(
            openapi_url=base + openapi_url,
            title=f"{app.title} - API reference",
            redoc_js_url=f"{base}{ASSETS_PATH}/redoc.standalone.js",
            redoc_favicon_url=f"{base}{ASSETS_PATH}/favicon.png",
            with_google_fonts=False,
        )
