"""The provisioning extension API (/provtrack/v1, docs/engine.md) and the TMF652 listener.

`GET /serviceOrder/{id}` stays pure TMF641; the plan and its activities are read and operated here.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from provtrack.adapters.tmf652 import ResourceOrderingClient
from provtrack.api import confirmation
from provtrack.api.errors import ApiError
from provtrack.api.extension_schemas import ActivityFailure, ActivitySkip, ResourceOrderEvent
from provtrack.api.http import base_url, context, json_response, read_json
from provtrack.api.openapi import answers, body, header
from provtrack.api.security import AUTH_FAILURES, principal_of
from provtrack.domain.access import Unauthenticated
from provtrack.domain.catalog import Catalog
from provtrack.services import access, activities, provisioning

PREFIX = "/provtrack/v1"
router = APIRouter(prefix=PREFIX, tags=["provtrack provisioning (extension)"])


def install_provisioning(app: FastAPI) -> None:
    app.include_router(router)


def _dump(document: Any) -> str:
    import orjson

    return orjson.dumps(document).decode()


def _with_links(request: Request, activity: dict[str, Any]) -> dict[str, Any]:
    return {"href": f"{base_url(request)}{PREFIX}/activity/{activity['id']}", **activity}


ACTOR = {"parameters": [header("X-Actor", "who acts, for the order's timeline (default `operator`)")]}


@router.get(
    "/serviceOrder/{id}/plan",
    summary="The provisioning plan of a service order",
    responses=answers(200, 404),
)
def get_plan(id: str, request: Request) -> Response:
    access.check_order(request.app.state.store, principal_of(request), id)
    plan = activities.get_plan(request.app.state.store, id)
    plan["activity"] = [_with_links(request, a) for a in plan["activity"]]
    return json_response(_dump(plan))


@router.get("/activity/{id}", summary="One provisioning activity", responses=answers(200, 404))
def get_activity(id: str, request: Request) -> Response:
    access.check_activity(request.app.state.store, principal_of(request), id)
    return json_response(_dump(_with_links(request, activities.get_activity(request.app.state.store, id))))


@router.post(
    "/activity/{id}/retry",
    summary="Send a failed activity again (a new downstream order); no body",
    responses=answers(200, 404, 409),
    openapi_extra=ACTOR,
)
async def retry_activity(id: str, request: Request) -> Response:
    await run_in_threadpool(access.check_activity, request.app.state.store, principal_of(request), id)
    ctx = context(request, actor=request.headers.get("X-Actor", "operator"))
    activity = await run_in_threadpool(
        activities.retry_activity, request.app.state.store, id, ctx=ctx, catalog=_catalog(request)
    )
    return json_response(_dump(_with_links(request, activity)))


@router.post(
    "/activity/{id}/skip",
    summary="Skip an activity; `reason` is required",
    responses=answers(200, 400, 404, 409, 413),
    openapi_extra={**body(ActivitySkip), **ACTOR},
)
async def skip_activity(id: str, request: Request) -> Response:
    await run_in_threadpool(access.check_activity, request.app.state.store, principal_of(request), id)
    reason = await _reason(request, required=True)
    ctx = context(request, actor=request.headers.get("X-Actor", "operator"))
    activity = await run_in_threadpool(
        activities.skip_activity,
        request.app.state.store,
        id,
        reason=reason or "",
        ctx=ctx,
        catalog=_catalog(request),
    )
    return json_response(_dump(_with_links(request, activity)))


@router.post(
    "/activity/{id}/fail",
    summary="Give an activity up: its item fails",
    responses=answers(200, 400, 404, 409, 413),
    openapi_extra={**body(ActivityFailure, required=False), **ACTOR},
)
async def fail_activity(id: str, request: Request) -> Response:
    await run_in_threadpool(access.check_activity, request.app.state.store, principal_of(request), id)
    reason = await _reason(request, required=False)
    ctx = context(request, actor=request.headers.get("X-Actor", "operator"))
    activity = await run_in_threadpool(
        activities.fail_activity,
        request.app.state.store,
        id,
        reason=reason,
        ctx=ctx,
        catalog=_catalog(request),
    )
    return json_response(_dump(_with_links(request, activity)))


def _catalog(request: Request) -> Catalog | None:
    catalog: Catalog | None = request.app.state.catalog
    return catalog


async def _reason(request: Request, *, required: bool) -> str | None:
    body: Any = await read_json(request) if (await request.body()) or required else {}
    reason = body.get("reason") if isinstance(body, dict) else None
    if required and (not isinstance(reason, str) or not reason.strip()):
        raise ApiError(400, "INVALID_VALUE", "Invalid request", "reason: a non-empty text is required")
    return reason if isinstance(reason, str) else None


@router.post(
    "/tmf652/{system}/{token}/listener/{event_type}",
    status_code=204,
    summary="TMF652 listener: resource order notifications from a downstream system's hub",
    responses=answers(204, 400, 401, 404, 409, 413, 422, 503),
    openapi_extra=body(ResourceOrderEvent),
    description=(
        "The callback provtrack registers at the system's hub carries an unguessable token; a "
        "notification that finishes a resource order is confirmed by reading it at the system first "
        "(catalog `confirm`, docs/security.md)."
    ),
)
async def resource_order_listener(system: str, token: str, event_type: str, request: Request) -> Response:
    catalog, confirmed = await confirmation.notified(
        request,
        system,
        token,
        what="resourceOrder",
        final=confirmation.RESOURCE_ORDER_FINAL,
        read=ResourceOrderingClient.get,
    )
    store = request.app.state.store
    await run_in_threadpool(
        provisioning.record_notification, store, system, confirmed, catalog, ctx=context(request, system)
    )
    return Response(status_code=204)


@router.post(
    "/tmf652/{system}/listener/{event_type}",
    status_code=401,
    summary="A TMF652 callback without its token (provtrack before 0.2 registered these): refused",
    include_in_schema=False,
)
async def untokened_listener(system: str, event_type: str) -> Response:
    AUTH_FAILURES.labels("listener").inc()
    raise Unauthenticated(
        "listener callbacks carry a token: provtrack subscribes again at its next start with one"
    )
