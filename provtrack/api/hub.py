"""The TMF641 notification hub, and provtrack's extensions: secret rotation, dead letters, timeline."""

from __future__ import annotations

import functools
from datetime import timedelta
from typing import Any

import orjson
from fastapi import APIRouter, FastAPI, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from provtrack.api.errors import ApiError
from provtrack.api.extension_schemas import DeadLetterReplay, SecretRotation
from provtrack.api.http import base_url, context, json_response, read_json
from provtrack.api.idempotency import once
from provtrack.api.openapi import answers, body
from provtrack.api.schemas import EventSubscription, EventSubscriptionInput
from provtrack.api.security import principal_of
from provtrack.api.service_orders import BASE_PATH
from provtrack.domain.events import CallbackPolicy, DeadLetter, Subscription
from provtrack.domain.idempotency import Answer
from provtrack.services import access, events
from provtrack.services.events import DeadLetterNotFound
from provtrack.settings import Settings

EXTENSION_PATH = "/provtrack/v1"
MAX_OVERLAP = 366 * 24 * 3600  # a year: a rotation that overlaps longer is not a rotation

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
    owner = principal_of(request).owner

    async def run(then: Any) -> Subscription:
        return await run_in_threadpool(
            functools.partial(
                events.create_subscription,
                _store(request),
                body,
                config=config,
                resolve=resolver,
                ctx=context(request),
                client=owner,
                then=then,
            )
        )

    def answer(subscription: Subscription) -> Answer:
        href = _hub_href(request, subscription.id)
        document = subscription_document(subscription, href, with_secret=True)
        return Answer(201, {"Location": href}, orjson.dumps(document).decode())

    return await once(request, run, answer)


def _owned(request: Request, subscription_id: str) -> Subscription:
    """The subscription, if it is the caller's (or the caller an administrator): SubscriptionNotFound
    otherwise, as for one that does not exist."""
    subscription = events.get_subscription(_store(request), subscription_id)
    if not principal_of(request).sees(subscription.client):
        raise events.SubscriptionNotFound(subscription_id)
    return subscription


@router.get(
    "/hub/{id}",
    summary="Retrieves an EventSubscription",
    operation_id="retrieveListener",
    responses=answers(200, 404, model=EventSubscription),
)
def retrieve_listener(id: str, request: Request) -> Response:
    subscription = _owned(request, id)
    return _json(subscription_document(subscription, _hub_href(request, id)))


@router.delete(
    "/hub/{id}",
    status_code=204,
    summary="Unregisters a listener",
    operation_id="unregisterListener",
    responses=answers(204, 404),
)
def unregister_listener(id: str, request: Request) -> Response:
    _owned(request, id)
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
            if principal_of(request).sees(s.client)
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
    await run_in_threadpool(_owned, request, id)
    document = await read_json(request) if await request.body() else {}
    overlap = document.get("overlapSeconds") if isinstance(document, dict) else None
    if overlap is not None and (
        not isinstance(overlap, int | float) or isinstance(overlap, bool) or not 0 <= overlap <= MAX_OVERLAP
    ):
        raise ApiError(
            400,
            "INVALID_VALUE",
            "Invalid request",
            f"overlapSeconds: must be a number from 0 to {MAX_OVERLAP}",
        )
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
    responses=answers(200, 404, description="The dead letters (`subscription=`: of that subscription)"),
)
def list_dead_letters(request: Request, subscription: str | None = None) -> Response:
    if subscription is not None:
        _owned(request, subscription)
    letters = events.list_dead_letters(_store(request), subscription_id=subscription)
    mine = _visible_subscriptions(request)
    return _json([dead_letter_document(d) for d in letters if mine is None or d.subscription_id in mine])


def _visible_subscriptions(request: Request) -> set[str] | None:
    """The ids of the caller's subscriptions; None: an administrator sees all."""
    principal = principal_of(request)
    if principal.is_admin:
        return None
    return {s.id for s in events.list_subscriptions(_store(request)) if principal.sees(s.client)}


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
    if ids is not None and not (
        isinstance(ids, list)
        and all(isinstance(i, int) and not isinstance(i, bool) and 0 < i < 2**63 for i in ids)
    ):
        raise ApiError(400, "INVALID_VALUE", "Invalid request", "ids: must be a list of dead letter ids")
    if subscription is not None and not isinstance(subscription, str):
        raise ApiError(400, "INVALID_VALUE", "Invalid request", "subscription: must be a subscription id")
    await run_in_threadpool(_check_letters, request, ids or (), subscription)
    queued = await run_in_threadpool(
        events.replay_dead_letters,
        _store(request),
        ids=ids or (),
        subscription_id=subscription,
        now=request.app.state.clock(),
    )
    return _json({"queued": queued})


def _check_letters(request: Request, ids: list[int] | tuple[()], subscription: str | None) -> None:
    """A client replays only the dead letters of its own subscriptions."""
    if subscription is not None:
        _owned(request, subscription)
    mine = _visible_subscriptions(request)
    if mine is None or not ids:
        return
    for letter in events.list_dead_letters(_store(request)):
        if letter.id in ids and letter.subscription_id not in mine:
            raise DeadLetterNotFound(letter.id)


@extensions.get(
    "/serviceOrder/{id}/timeline",
    summary="Every recorded change of a service order: what, old and new value, when, by whom",
    responses=answers(200, 404),
)
def order_timeline(id: str, request: Request) -> Response:
    access.check_order(_store(request), principal_of(request), id)
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
