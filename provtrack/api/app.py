"""The HTTP application: TMF641 routes, TMF630 errors, body limit. Built by `create_app`, never at import."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import datetime

from fastapi import Depends, FastAPI

from provtrack.adapters.clock import utc_now
from provtrack.adapters.tmf652 import ResourceOrderingClient
from provtrack.adapters.webhooks import resolve
from provtrack.api import hub, monitoring, operations, service_orders, session
from provtrack.api.cancellation import install_cancellation
from provtrack.api.docs_assets import install_docs
from provtrack.api.errors import install_error_handlers
from provtrack.api.http import BodyLimit
from provtrack.api.jeopardy import install_jeopardy
from provtrack.api.limits import InputGuard, limits_from
from provtrack.api.methods import AllowedMethods
from provtrack.api.metrics import install_metrics
from provtrack.api.monitoring import RequestMetrics
from provtrack.api.openapi import install_openapi
from provtrack.api.provisioning import install_provisioning
from provtrack.api.security import Authenticator, SignInRequired, Tokens, authorize, sign_in_redirect
from provtrack.api.tasks import install_tasks
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
    require_catalog: bool = False,
    authenticator: Authenticator | None = None,
    resource_orders: ResourceOrderingClient | None = None,
) -> FastAPI:
    """The API. With `require_catalog` (every process role) and no catalog, orders are refused at
    once instead of waiting for a plan that cannot come. Every route but liveness needs a bearer
    token (`authenticator`, by default the API keys in the store; tests that are not about access
    give a `security.Trusted` principal)."""
    app = FastAPI(
        dependencies=[Depends(authorize)],
        lifespan=lifespan,
        title="provtrack",
        version="0.1.0",
        description=DESCRIPTION,
        docs_url=None,
        openapi_url="/openapi.json",
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.store = store
    app.state.clock = clock
    app.state.worker_in_process = worker_in_process
    app.state.catalog = catalog  # the TMF652 listener and activity actions need the systems
    app.state.jeopardy = jeopardy  # the jeopardy extension API reads its policy
    app.state.resolve = resolve  # the hub checks a callback's addresses (tests give their own)
    app.state.orders_need_catalog = require_catalog and catalog is None
    app.state.limits = limits_from(settings)
    # The TMF652 listener reads a resource order at its system to confirm a final notification.
    app.state.resource_orders = resource_orders or ResourceOrderingClient(
        timeout=settings.downstream_timeout_seconds
    )
    app.state.authenticator = authenticator or Tokens(
        store, clock=clock, cache_seconds=settings.auth_cache_seconds
    )
    _install(app, settings)
    return app


def _install(app: FastAPI, settings: Settings) -> None:
    """The routes, the error handlers, the OpenAPI document and docs, and the ASGI layers."""
    app.include_router(service_orders.router)
    hub.install(app)
    install_cancellation(app)
    install_provisioning(app)
    install_tasks(app)
    install_jeopardy(app)
    install_metrics(app)
    app.include_router(operations.router)
    app.include_router(monitoring.router)
    app.include_router(session.router)
    install_error_handlers(app)
    app.add_exception_handler(SignInRequired, sign_in_redirect)
    install_openapi(app, max_limit=settings.max_limit)
    install_docs(app, openapi_url="/openapi.json")
    app.add_middleware(AllowedMethods, application=app)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(InputGuard)
    app.add_middleware(RequestMetrics)
    app.add_middleware(RequestContext, access_log=settings.access_log)  # outermost: its ids on every line
