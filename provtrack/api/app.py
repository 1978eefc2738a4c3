"""The HTTP application: TMF641 routes, TMF630 errors, body limit. Built by `create_app`, never at import."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import datetime

from fastapi import Depends, FastAPI

from provtrack.adapters.clock import utc_now
from provtrack.adapters.tmf652 import ResourceOrderingClient
from provtrack.api import hub, monitoring, operations, service_orders, session
from provtrack.api.errors import install_error_handlers
from provtrack.api.http import BodyLimit
from provtrack.api.jeopardy import install_jeopardy
from provtrack.api.limits import InputGuard, limits_from
from provtrack.api.monitoring import RequestMetrics
from provtrack.api.provisioning import install_provisioning
from provtrack.api.security import Authenticator, Tokens, authorize, document_security
from provtrack.api.tracing import RequestContext
from provtrack.domain.catalog import Catalog
from provtrack.services.jeopardy import JeopardyMonitor
from provtrack.services.ports import Store
from provtrack.settings import Settings

DESCRIPTION = """
provtrack takes TMF641 v4.1 service orders, tracks them through provisioning and reports their state.

Conventions (TMF630): `fields=` attribute selection, attribute filtering, `sort`, `offset`/`limit`
paging with `X-Total-Count` and `X-Result-Count`, errors as `{code, reason, message, status}`.
See `docs/tmf641.md` for the choices provtrack makes where the specification is silent.
"""


def create_app(
    settings: Settings,
    store: Store,
    *,
    clock: Callable[[], datetime] = utc_now,
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]] | None = None,
    worker_in_process: bool = False,
    catalog: Catalog | None = None,
    jeopardy: JeopardyMonitor | None = None,
    authenticator: Authenticator | None = None,
    resource_orders: ResourceOrderingClient | None = None,
) -> FastAPI:
    """The API. Every route but liveness needs a bearer token (`authenticator`, by default the API
    keys in the store; tests that are not about access give a `security.Trusted` principal)."""
    app = FastAPI(
        dependencies=[Depends(authorize)],
        lifespan=lifespan,
        title="provtrack",
        version="0.1.0",
        description=DESCRIPTION,
        docs_url="/docs",
        openapi_url="/openapi.json",
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.store = store
    app.state.clock = clock
    app.state.worker_in_process = worker_in_process
    app.state.catalog = catalog  # the TMF652 listener and activity actions need the systems
    app.state.jeopardy = jeopardy  # the jeopardy extension API reads its policy
    app.state.limits = limits_from(settings)
    # The TMF652 listener reads a resource order at its system to confirm a final notification.
    app.state.resource_orders = resource_orders or ResourceOrderingClient(
        timeout=settings.downstream_timeout_seconds
    )
    app.state.authenticator = authenticator or Tokens(
        store, clock=clock, cache_seconds=settings.auth_cache_seconds
    )
    app.include_router(service_orders.router)
    hub.install(app)
    install_provisioning(app)
    install_jeopardy(app)
    app.include_router(operations.router)
    app.include_router(monitoring.router)
    app.include_router(session.router)
    install_error_handlers(app)
    install_openapi(app)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(InputGuard)
    app.add_middleware(RequestMetrics)
    app.add_middleware(RequestContext, access_log=settings.access_log)  # outermost: its ids on every line
    return app


def install_openapi(app: FastAPI) -> None:
    """Add the request-body schemas (read from raw bodies, so FastAPI does not see them)."""
    from fastapi.openapi.utils import get_openapi
    from pydantic import BaseModel
    from pydantic.json_schema import models_json_schema

    from provtrack.api import schemas

    def openapi() -> dict[str, object]:
        if app.openapi_schema:
            return app.openapi_schema
        document = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        bodies: list[type[BaseModel]] = [
            schemas.ServiceOrderCreate,
            schemas.ServiceOrderUpdate,
            schemas.CancelServiceOrderCreate,
        ]
        _, extra = models_json_schema(
            [(m, "validation") for m in bodies], ref_template="#/components/schemas/{model}"
        )
        components = document.setdefault("components", {}).setdefault("schemas", {})
        for name, schema in extra.get("$defs", {}).items():
            components.setdefault(name, schema)
        document_security(document)
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]
