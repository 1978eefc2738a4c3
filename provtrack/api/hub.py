"""The TMF641 notification hub, and provtrack's extensions: secret rotation, dead letters, timeline."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import orjson
from fastapi import APIRouter, FastAPI, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from provtrack.api.errors import ApiError
from provtrack.api.extension_schemas import DeadLetterReplay, SecretRotation
from provtrack.api.http import base_url, context, json_response, read_json
from provtrack.api.openapi import answers, body
from provtrack.api.schemas import EventSubscription, EventSubscriptionInput
from provtrack.api.service_orders import BASE_PATH
from provtrack.domain.events import CallbackPolicy, DeadLetter, Subscription
from provtrack.services import events
from provtrack.settings import Settings

EXTENSION_PATH = "/provtrack/v1"

router = APIRouter(prefix=BASE_PATH, tags=["TMF641 notification hub"])
extensions = APIRouter(prefix=EXTENSION_PATH, tags=["provtrack extensions"])

HUB_DESCRIPTION = """
Body: `{"callback": "https://listener.example.net/tmf641", "query": "eventType=ServiceOrderStateChangeEvent&event.serviceOrder.state=completed", "deliverTo": "callback"}`.

- `query` (optional): TMF630 filter over the event (`eventType`, `event.serviceOrder.<attribute>`, ...).
- `deliverTo` (provtrack extension): `callback` (default) posts to the callback as given; `listener`
  posts to `<callback>/listener/<eventName>` (e.g. `/listener/serviceOrderCreateEvent`).
- The answer carries `secret` once: every delivery is signed with it (Standard Webhooks headers
  `webhook-id`, `webhook-timestamp`, `webhook-signature`); see docs/events.md.
- Callbacks must be http(s); hosts outside the operator's allow-list and internal addresses are refused.
"""


def events_config(settings: Settings) -> events.EventsConfig:
    allow = tuple(e.strip() for e in settings.events_callback_allow.split(",") if e.strip())
    return events.EventsConfig(
        base_url=settings.base_url(),
        policy=CallbackPolicy(allow),
        horizon=timedelta(seconds=settings.events_retry_horizon_seconds),
        secret_overlap=timedelta(seconds=settings.events_secret_overlap_seconds),
        busy_delay=timedelta(seconds=settings.events_attempt_timeout_seconds),
        retention=timedelta(seconds=settings.events_outbox_retention_seconds),
        batch=settings.events_delivery_batch,
        prune_batch=settings.events_prune_batch,
    )


def _store(request: Request) -> Any:
    return request.app.state.store


def subscription_document(
    subscription: Subscription, href: str, *, with_secret: bool = False
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": subscription.id,
        "href": href,
        "callback": subscription.callback,
        "query": subscription.query,
        "deliverTo": subscription.deliver_to.value,
        "state": subscription.state,
        "createdAt": subscription.created_at,
        "@type": "EventSubscription",
    }
    if subscription.disabled_reason:
        doc["disabledReason"] = subscription.disabled_reason
    if with_secret:
        doc["secret"] = subscription.secret
    if subscription.previous_secret_until:
        doc["previousSecretValidUntil"] = subscription.previous_secret_until
    return doc


def _hub_href(request: Request, subscription_id: str) -> str:
    return f"{base_url(request)}{BASE_PATH}/hub/{subscription_id}"


def _json(value: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return json_response(orjson.dumps(value).decode(), status, headers)


@router.post(
    "/hub",
    status_code=201,
    summary="Registers a listener (EventSubscription)",
    description=HUB_DESCRIPTION,
    operation_id="registerListener",
    responses=answers(201, 400, 413, model=EventSubscription),
    openapi_extra=body(EventSubscriptionInput),
)
async def register_listener(request: Request) -> Response:
    body = await read_json(request)
    config = events_config(request.app.state.settings)
    resolver = request.app.state.resolve
    subscription = await run_in_threadpool(
        events.create_subscription,
        _store(request),
        body,
        config=config,
        resolve=resolver,
        ctx=context(request),
    )
    href = _hub_href(request, subscription.id)
    return _json(subscription_document(subscription, href, with_secret=True), 201, {"Location": href})


@router.get(
    "/hub/{id}",
    summary="Retrieves an EventSubscription",
    operation_id="retrieveListener",
    responses=answers(200, 404, model=EventSubscription),
)
def retrieve_listener(id: str, request: Request) -> Response:
    subscription = events.get_subscription(_store(request), id)
    return _json(subscription_document(subscription, _hub_href(request, id)))


@router.delete(
    "/hub/{id}",
    status_code=204,
    summary="Unregisters a listener",
    operation_id="unregisterListener",
    responses=answers(204, 404),
)
def unregister_listener(id: str, request: Request) -> Response:
    events.delete_subscription(_store(request), id)
    return Response(status_code=204)


# --- extensions ----------------------------------------------------------------------------------


@extensions.get(
    "/hub",
    summary="Lists the hub subscriptions (no secrets)",
    responses=answers(200, model=list[EventSubscription]),
)
def list_listeners(request: Request) -> Response:
    return _json(
        [
            subscription_document(s, _hub_href(request, s.id))
            for s in events.list_subscriptions(_store(request))
        ]
    )


@extensions.post(
    "/hub/{id}/rotateSecret",
    summary="Issues a new signing secret; the old one keeps signing during the overlap",
    description='Body (optional): `{"overlapSeconds": 86400}`. The answer carries the new `secret` once.',
    responses=answers(200, 400, 404, 413, model=EventSubscription),
    openapi_extra=body(SecretRotation, required=False),
)
async def rotate_secret(id: str, request: Request) -> Response:
    document = await read_json(request) if await request.body() else {}
    overlap = document.get("overlapSeconds") if isinstance(document, dict) else None
    if overlap is not None and (not isinstance(overlap, int | float) or overlap < 0):
        raise ApiError(400, "INVALID_VALUE", "Invalid request", "overlapSeconds: must be a number >= 0")
    subscription = await run_in_threadpool(
        events.rotate_secret,
        _store(request),
        id,
        overlap=None if overlap is None else timedelta(seconds=overlap),
        config=events_config(request.app.state.settings),
        ctx=context(request),
    )
    return _json(subscription_document(subscription, _hub_href(request, id), with_secret=True))


def dead_letter_document(letter: DeadLetter) -> dict[str, Any]:
    return {
        "id": letter.id,
        "subscriptionId": letter.subscription_id,
        "eventId": letter.event_id,
        "serviceOrderId": letter.service_order_id,
        "eventType": letter.event_type,
        "deadAt": letter.dead_at,
        "attempts": letter.attempts,
        "lastError": letter.last_error,
        "replayedAt": letter.replayed_at,
        "deliveredAt": letter.delivered_at,
    }


@extensions.get(
    "/deadLetter",
    summary="Events that could not be delivered within the retry horizon",
    responses=answers(200),
)
def list_dead_letters(request: Request, subscription: str | None = None) -> Response:
    letters = events.list_dead_letters(_store(request), subscription_id=subscription)
    return _json([dead_letter_document(d) for d in letters])


@extensions.post(
    "/deadLetter/replay",
    summary="Queues dead letters for one more delivery attempt",
    description='Body: `{"ids": [1, 2]}` or `{"subscription": "<id>"}` (all its undelivered ones).',
    responses=answers(200, 400, 404, 413),
    openapi_extra=body(DeadLetterReplay),
)
async def replay_dead_letters(request: Request) -> Response:
    document = await read_json(request)
    ids = document.get("ids") if isinstance(document, dict) else None
    subscription = document.get("subscription") if isinstance(document, dict) else None
    if ids is None and subscription is None:
        raise ApiError(400, "INVALID_VALUE", "Invalid request", "give ids (a list) or subscription (an id)")
    if ids is not None and not (isinstance(ids, list) and all(isinstance(i, int) for i in ids)):
        raise ApiError(400, "INVALID_VALUE", "Invalid request", "ids: must be a list of dead letter ids")
    queued = await run_in_threadpool(
        events.replay_dead_letters,
        _store(request),
        ids=ids or (),
        subscription_id=subscription,
        now=request.app.state.clock(),
    )
    return _json({"queued": queued})


@extensions.get(
    "/serviceOrder/{id}/timeline",
    summary="Every recorded change of a service order: what, old and new value, when, by whom",
    responses=answers(200, 404),
)
def order_timeline(id: str, request: Request) -> Response:
    changes = events.order_timeline(_store(request), id)
    return _json(
        [
            {
                "subject": c.subject,
                "attribute": c.attribute,
                "oldValue": c.old,
                "newValue": c.new,
                "at": c.at,
                "actor": c.actor,
            }
            for c in changes
        ]
    )


def install(app: FastAPI) -> None:
    app.include_router(router)
    app.include_router(extensions)
