"""The cancellation extension API (docs/cancellation.md): the impact preview, the TMF652 listener for
cancelResourceOrder notifications from downstream systems, the partners' cancelServiceOrder
notifications, and the TMF622 listener for product order (customer order) notifications."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, FastAPI, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from provtrack.adapters.tmf652 import ResourceOrderingClient
from provtrack.api import confirmation
from provtrack.api.errors import ApiError
from provtrack.api.extension_schemas import CancelResourceOrderEvent, PartnerCancelEvent, ProductOrderEvent
from provtrack.api.http import context, json_response, read_json
from provtrack.api.openapi import answers, body
from provtrack.api.security import principal_of, require_listener_token
from provtrack.domain.catalog import Catalog
from provtrack.domain.partners import partner_subscription_key
from provtrack.domain.product_orders import read_event
from provtrack.services import access, cancellation, product_orders, withdrawals

PREFIX = "/provtrack/v1"
router = APIRouter(prefix=PREFIX, tags=["provtrack cancellation (extension)"])
CANCEL_EVENTS = ("cancelResourceOrderCreateEvent", "cancelResourceOrderStateChangeEvent")
PARTNER_CANCEL_EVENTS = ("cancelServiceOrderCreateEvent", "cancelServiceOrderStateChangeEvent")


def install_cancellation(app: FastAPI) -> None:
    """Installed before the provisioning routes: its listener path is more specific than theirs
    (`/tmf652/{system}/listener/{event_type}`), and the first route that matches answers."""
    app.include_router(router)


def _catalog(request: Request) -> Catalog | None:
    catalog: Catalog | None = request.app.state.catalog
    return catalog


@router.get(
    "/serviceOrder/{id}/cancellationImpact",
    summary="What cancelling the order would do now: accepted or refused (why), what it stops and undoes",
    responses=answers(200, 404),
)
def cancellation_impact(id: str, request: Request) -> Response:
    access.check_order(request.app.state.store, principal_of(request), id)
    impact = cancellation.cancellation_impact(request.app.state.store, id, _catalog(request))
    return json_response(orjson.dumps(impact).decode())


async def _cancel_task_listener(system: str, token: str, request: Request) -> Response:
    catalog, confirmed = await confirmation.notified(
        request,
        system,
        token,
        what="cancelResourceOrder",
        final=confirmation.CANCEL_TASK_FINAL,
        read=ResourceOrderingClient.get_cancellation,
    )
    await run_in_threadpool(
        withdrawals.record_cancellation_state,
        request.app.state.store,
        system,
        confirmed,
        catalog,
        ctx=context(request, system),
    )
    return Response(status_code=204)


for _event in CANCEL_EVENTS:
    router.add_api_route(
        f"/tmf652/{{system}}/{{token}}/listener/{_event}",
        _cancel_task_listener,
        methods=["POST"],
        status_code=204,
        summary=f"TMF652 listener: {_event} from a downstream system's hub",
        responses=answers(204, 400, 401, 404, 409, 413, 422, 503),
        openapi_extra=body(CancelResourceOrderEvent),
        description=(
            "The callback carries the system's token; a notification that finishes the cancel task is "
            "confirmed by reading it at the system first (catalog `confirm`, docs/security.md)."
        ),
    )


async def _partner_cancel_listener(partner: str, token: str, request: Request) -> Response:
    """Like a partner's order, its cancel task is read at the partner, not taken from the event."""
    catalog = _catalog(request)
    if catalog is None or partner not in catalog.partners:
        raise ApiError(404, "NOT_FOUND", "Unknown partner", f"no partner {partner[:100]!r} in the catalog")
    await require_listener_token(request, partner_subscription_key(partner), token, who=partner)
    event = await read_json(request)
    task: Any = (event.get("event") or {}).get("cancelServiceOrder") if isinstance(event, dict) else None
    if not isinstance(task, dict):
        raise ApiError(
            400, "INVALID_VALUE", "Invalid request", "event.cancelServiceOrder: an object is required"
        )
    catalog = _catalog(request)
    if catalog is None or partner not in catalog.partners:
        raise ApiError(404, "NOT_FOUND", "Unknown partner", f"no partner {partner!r} in the catalog")
    store, now = request.app.state.store, request.app.state.clock()
    await run_in_threadpool(withdrawals.nudge_withdrawal, store, partner, task, now=now)
    return Response(status_code=204)


for _event in PARTNER_CANCEL_EVENTS:  # before the partners' listener (api/tasks.py), which reads orders
    router.add_api_route(
        f"/partner/{{partner}}/{{token}}/listener/{_event}",
        _partner_cancel_listener,
        methods=["POST"],
        status_code=204,
        summary=f"TMF641 listener: {_event} from a partner's hub (our withdrawal's cancel task)",
        responses=answers(204, 400, 401, 404, 413),
        openapi_extra=body(PartnerCancelEvent),
    )


@router.post(
    "/tmf622/{token}/listener/{event_type}",
    status_code=204,
    summary="TMF622 listener: a cancelled product order cancels the service orders that came from it",
    description=(
        "CancelProductOrderCreateEvent, CancelProductOrderStateChangeEvent and ProductOrderStateChangeEvent "
        "(to assessingCancellation, pendingCancellation or cancelled) open a cancel task for every service "
        "order naming the product order; with PROVTRACK_PRODUCT_ORDERING_URL the product order is read there "
        "first. Other events are accepted and ignored; repeats open nothing again."
    ),
    responses=answers(204, 400, 401, 409, 413),
    openapi_extra=body(ProductOrderEvent),
)
async def product_order_listener(token: str, event_type: str, request: Request) -> Response:
    await require_listener_token(
        request, product_orders.LISTENER_SOURCE, token, who="the product ordering API"
    )
    event = await read_json(request)
    payload = event.get("event") if isinstance(event, dict) else None
    if not isinstance(payload, dict):
        raise ApiError(400, "INVALID_VALUE", "Invalid request", "event: an object is required")
    signal = read_event(event)
    if signal is None:
        return Response(status_code=204)  # about no product order provtrack can name
    await run_in_threadpool(
        product_orders.receive_event,
        request.app.state.store,
        signal,
        confirm=bool(request.app.state.settings.product_ordering_url),
        ctx=context(request, "tmf622"),
        catalog=_catalog(request),
    )
    return Response(status_code=204)
