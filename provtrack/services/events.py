"""Use cases of the events feature: the hub, dead letters and their replay, the timeline and `asOf`.

Delivery itself (the worker's jobs) is `services/delivery.py`; this module holds the ports both use.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from provtrack.domain.clock import format_datetime, parse_datetime
from provtrack.domain.events import (
    REDELIVER_JOB,
    CallbackPolicy,
    DeadLetter,
    DeliverTo,
    StoredEvent,
    Stream,
    Subscription,
    callback_host,
    check_callback,
    parse_event_filter,
)
from provtrack.domain.jobs import JobRequest
from provtrack.domain.model import Change
from provtrack.domain.webhooks import Attempt, new_secret
from provtrack.services.ports import Context, OrderNotFound

# --- ports ---------------------------------------------------------------------------------------


class Sender(Protocol):
    def post(
        self,
        url: str,
        body: bytes,
        headers: dict[str, str],
        *,
        subscriber: str,
        probing: bool = False,
        policy: CallbackPolicy | None = None,
    ) -> Attempt:
        """POST `body`. With a `policy`, only to an address it allows, checked when connecting
        (`Attempt.blocked` otherwise): the callback's DNS may have changed since it was registered."""
        ...


Resolver = Callable[[str], list[str]]


class EventsTransaction(Protocol):
    def add_subscription(self, subscription: Subscription) -> None: ...
    def get_subscription(self, subscription_id: str) -> Subscription | None: ...
    def save_subscription(self, subscription: Subscription) -> None: ...
    def list_subscriptions(self) -> list[Subscription]: ...
    def delete_subscription(self, subscription_id: str) -> bool: ...
    def pause_subscription(self, subscription_id: str, *, until: str, failed: bool = True) -> None: ...
    def resume_subscription(self, subscription_id: str, *, now: str) -> None: ...
    def disable_subscription(self, subscription_id: str, *, reason: str) -> None: ...
    def last_event_id(self) -> int: ...
    def get_stream(self, subscription: Subscription, order_id: str) -> Stream: ...
    def save_stream(self, stream: Stream) -> None: ...
    def park_stream(self, subscription_id: str, order_id: str, *, until: str, now: str) -> bool: ...
    def park_replay(self, subscription_id: str, *, until: str, now: str) -> bool: ...
    def events_after(self, order_id: str, after: int, *, limit: int) -> list[StoredEvent]: ...
    def get_event(self, outbox_id: int) -> StoredEvent | None: ...
    def get_events(self, outbox_ids: Sequence[int]) -> dict[int, StoredEvent]: ...
    def add_dead_letter(
        self, stream: Stream, event: StoredEvent, *, now: str, attempts: int, error: str
    ) -> None: ...
    def dead_letters(
        self, *, subscription_id: str | None = None, pending_only: bool = False
    ) -> list[DeadLetter]: ...
    def get_dead_letter(self, dead_letter_id: int) -> DeadLetter | None: ...
    def get_dead_letters(self, dead_letter_ids: Sequence[int]) -> list[DeadLetter]: ...
    def update_dead_letter(self, dead_letter_id: int, **values: Any) -> None: ...
    def queue_replays(self, dead_letter_ids: Sequence[int], *, now: str) -> None: ...
    def queued_replays(self, subscription_id: str, *, limit: int) -> list[DeadLetter]: ...
    def unqueue_replays(self, subscription_id: str, *, error: str) -> None: ...
    def order_as_of(self, order_id: str, at: str) -> tuple[str | None, str | None]: ...
    def prune_delivered(self, *, before: str, limit: int) -> int: ...


class Transaction(Protocol):
    @property
    def events(self) -> EventsTransaction: ...
    def audit_trail(self, order_id: str) -> list[Change]: ...
    def schedule_job(self, request: JobRequest, *, now: datetime, replace: bool = True) -> None: ...


class Store(Protocol):
    def transaction(self, *, write: bool) -> AbstractContextManager[Transaction]: ...


DEFAULT_RETENTION = timedelta(days=7)


@dataclass(frozen=True, slots=True)
class EventsConfig:
    base_url: str  # for the href of the order in each event
    policy: CallbackPolicy  # checked at registration, and at delivery for the address connected to
    horizon: timedelta = timedelta(hours=24)
    secret_overlap: timedelta = timedelta(hours=24)
    batch: int = 100  # events (or replays) one job run posts before it yields the worker thread
    busy_delay: timedelta = timedelta(seconds=10)  # pause when its slots hang (the attempt timeout)
    retention: timedelta = DEFAULT_RETENTION  # delivered outbox rows older than this are pruned
    prune_every: timedelta = timedelta(hours=1)
    prune_batch: int = 1000  # outbox rows one statement deletes


# --- errors --------------------------------------------------------------------------------------


class SubscriptionNotFound(LookupError):
    def __init__(self, subscription_id: str) -> None:
        super().__init__(f"no hub subscription with id {subscription_id!r}")


class DeadLetterNotFound(LookupError):
    def __init__(self, dead_letter_id: int) -> None:
        super().__init__(f"no dead letter with id {dead_letter_id}")


class InvalidSubscription(ValueError):
    """A hub registration body that cannot be used; the message names the attribute."""


class OrderNotYetCreated(LookupError):
    """`asOf` a moment before the order existed, or after it was deleted."""


# --- the hub -------------------------------------------------------------------------------------


def create_subscription(
    store: Store,
    body: Any,
    *,
    config: EventsConfig,
    resolve: Resolver,
    ctx: Context,
    client: str | None = None,
    then: Callable[[Any, Subscription], None] | None = None,
) -> Subscription:
    """Register a listener; the returned subscription carries its secret (shown only this once).
    With `client` it belongs to that client and sees only its orders; `then` runs in the
    transaction that adds it (the Idempotency-Key's answer)."""
    if not isinstance(body, dict):
        raise InvalidSubscription("the body must be a JSON object with a callback")
    callback = body.get("callback")
    if not isinstance(callback, str) or not callback:
        raise InvalidSubscription("callback: is required (the URL events are posted to)")
    query = body.get("query")
    if query is not None and not isinstance(query, str):
        raise InvalidSubscription("query: must be a string such as eventType=ServiceOrderStateChangeEvent")
    deliver_to = body.get("deliverTo", DeliverTo.CALLBACK.value)
    if deliver_to not in tuple(DeliverTo):
        raise InvalidSubscription(f"deliverTo: must be one of {', '.join(DeliverTo)}, not {deliver_to!r}")
    parse_event_filter(query or None)  # InvalidQuery names the problem
    check_callback(callback, resolve(callback_host(callback)), config.policy)
    with store.transaction(write=True) as tx:
        subscription = Subscription(
            id=ctx.new_id(),
            callback=callback,
            query=query or None,
            deliver_to=DeliverTo(deliver_to),
            secret=new_secret(),
            created_at=ctx.now,
            after_event=tx.events.last_event_id(),
            client=client,
        )
        tx.events.add_subscription(subscription)
        if then is not None:
            then(tx, subscription)
    return subscription


def get_subscription(store: Store, subscription_id: str) -> Subscription:
    with store.transaction(write=False) as tx:
        subscription = tx.events.get_subscription(subscription_id)
    if subscription is None:
        raise SubscriptionNotFound(subscription_id)
    return subscription


def list_subscriptions(store: Store) -> list[Subscription]:
    with store.transaction(write=False) as tx:
        return tx.events.list_subscriptions()


def delete_subscription(store: Store, subscription_id: str) -> None:
    with store.transaction(write=True) as tx:
        if not tx.events.delete_subscription(subscription_id):
            raise SubscriptionNotFound(subscription_id)


def rotate_secret(
    store: Store, subscription_id: str, *, overlap: timedelta | None, config: EventsConfig, ctx: Context
) -> Subscription:
    """A new secret signs from now on; the old one signs too until the overlap ends."""
    overlap = config.secret_overlap if overlap is None else overlap
    with store.transaction(write=True) as tx:
        subscription = tx.events.get_subscription(subscription_id)
        if subscription is None:
            raise SubscriptionNotFound(subscription_id)
        subscription.previous_secret = subscription.secret
        subscription.previous_secret_until = format_datetime(parse_datetime(ctx.now) + overlap)
        subscription.secret = new_secret()
        tx.events.save_subscription(subscription)
    return subscription


def signing_secrets(subscription: Subscription, now: datetime) -> list[str]:
    keys = [subscription.secret]
    until = subscription.previous_secret_until
    if subscription.previous_secret and until and parse_datetime(until) > now:
        keys.append(subscription.previous_secret)
    return keys


# --- dead letters --------------------------------------------------------------------------------


def list_dead_letters(store: Store, *, subscription_id: str | None = None) -> list[DeadLetter]:
    with store.transaction(write=False) as tx:
        return tx.events.dead_letters(subscription_id=subscription_id)


def replay_dead_letters(
    store: Store,
    *,
    ids: Sequence[int] = (),
    subscription_id: str | None = None,
    now: datetime,
) -> list[int]:
    """Queue the named dead letters (or all undelivered ones of a subscription) for replay.

    Each subscription's replay job posts its queued letters in order (services/delivery.py);
    returns the ids queued (those not delivered yet).
    """
    stamp = format_datetime(now)
    with store.transaction(write=True) as tx:
        if ids:
            letters = tx.events.get_dead_letters(ids)
            missing = sorted(set(ids) - {letter.id for letter in letters})
            if missing:
                raise DeadLetterNotFound(missing[0])
        else:
            letters = tx.events.dead_letters(subscription_id=subscription_id, pending_only=True)
        queued = [letter.id for letter in letters if letter.delivered_at is None]
        for chunk in range(0, len(queued), 500):
            tx.events.queue_replays(queued[chunk : chunk + 500], now=stamp)
        for subscriber in sorted(
            {letter.subscription_id for letter in letters if letter.delivered_at is None}
        ):
            request = JobRequest(REDELIVER_JOB, subscriber, now, {"subscription": subscriber}, run_again=True)
            tx.schedule_job(request, now=now)
    return queued


# --- the timeline --------------------------------------------------------------------------------


def order_timeline(store: Store, order_id: str) -> list[Change]:
    with store.transaction(write=False) as tx:
        changes = tx.audit_trail(order_id)
    if not changes:
        raise OrderNotFound(order_id)
    return changes


def order_as_of(store: Store, order_id: str, at: str) -> str:
    """The order's document as it was at `at` (a normalised date-time)."""
    with store.transaction(write=False) as tx:
        document, began = tx.events.order_as_of(order_id, at)
    if began is None:
        raise OrderNotFound(order_id)
    if document is None:
        if at < began:
            raise OrderNotYetCreated(f"service order {order_id} did not exist yet at {at}: it began {began}")
        raise OrderNotYetCreated(f"service order {order_id} had been deleted by {at}")
    return document
