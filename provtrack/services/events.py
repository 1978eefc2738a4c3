"""Use cases of the events feature: the hub, delivery (worker handlers), dead letters, the timeline.

Delivery runs one job per (subscription, order) stream: the job posts the stream's undelivered events
in outbox order and moves the stream's cursor after each one, so a crash re-sends at most the event
in flight (at least once, in order). A failed attempt backs the stream off and pauses the whole
subscription for the same time, so a dead subscriber costs one attempt per backoff, not one per order.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import orjson

from provtrack.domain.clock import format_datetime, parse_datetime
from provtrack.domain.events import (
    PARK_LIMIT,
    REDELIVER_JOB,
    CallbackPolicy,
    DeadLetter,
    DeliverTo,
    StoredEvent,
    Stream,
    Subscription,
    callback_host,
    check_callback,
    envelope,
    parse_event_filter,
    target_url,
)
from provtrack.domain.jobs import Job, JobRequest, RetryLater, backoff
from provtrack.domain.model import Change
from provtrack.domain.webhooks import Attempt, Outcome, new_secret, signature_headers
from provtrack.services.ports import Context, OrderNotFound

BACKOFF_BASE = timedelta(seconds=1)
BACKOFF_CAP = timedelta(hours=1)
BUSY_RETRY = timedelta(milliseconds=200)  # a healthy subscriber's delivery slots were all taken


# --- ports ---------------------------------------------------------------------------------------


class Sender(Protocol):
    def post(
        self, url: str, body: bytes, headers: dict[str, str], *, subscriber: str, probing: bool = False
    ) -> Attempt: ...


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
    def events_after(self, order_id: str, after: int, *, limit: int) -> list[StoredEvent]: ...
    def get_event(self, outbox_id: int) -> StoredEvent | None: ...
    def add_dead_letter(
        self, stream: Stream, event: StoredEvent, *, now: str, attempts: int, error: str
    ) -> None: ...
    def dead_letters(
        self, *, subscription_id: str | None = None, pending_only: bool = False
    ) -> list[DeadLetter]: ...
    def get_dead_letter(self, dead_letter_id: int) -> DeadLetter | None: ...
    def update_dead_letter(self, dead_letter_id: int, **values: Any) -> None: ...
    def order_as_of(self, order_id: str, at: str) -> tuple[str | None, str | None]: ...


class Transaction(Protocol):
    @property
    def events(self) -> EventsTransaction: ...
    def audit_trail(self, order_id: str) -> list[Change]: ...
    def schedule_job(self, request: JobRequest, *, now: datetime, replace: bool = True) -> None: ...


class Store(Protocol):
    def transaction(self, *, write: bool) -> AbstractContextManager[Transaction]: ...


@dataclass(frozen=True, slots=True)
class EventsConfig:
    base_url: str  # for the href of the order in each event
    policy: CallbackPolicy
    horizon: timedelta = timedelta(hours=24)
    secret_overlap: timedelta = timedelta(hours=24)
    batch: int = 100  # events one job run posts before it yields the worker thread
    busy_delay: timedelta = timedelta(seconds=10)  # pause when its slots hang (the attempt timeout)


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
    store: Store, body: Any, *, config: EventsConfig, resolve: Resolver, ctx: Context
) -> Subscription:
    """Register a listener; the returned subscription carries its secret (shown only this once)."""
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
        )
        tx.events.add_subscription(subscription)
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


# --- delivery (worker handlers) ------------------------------------------------------------------


def deliver_stream(store: Store, sender: Sender, config: EventsConfig, job: Job, now: datetime) -> None:
    """Post a stream's pending events in order; stop at the first failure and back off."""
    subscription_id, order_id = job.payload["subscription"], job.payload["order"]
    stamp = format_datetime(now)
    with store.transaction(write=False) as tx:
        subscription = tx.events.get_subscription(subscription_id)
        if subscription is None or subscription.state != "active":
            return
        stream = tx.events.get_stream(subscription, order_id)
        pending = tx.events.events_after(order_id, stream.delivered_through, limit=config.batch)
    if not pending:
        return
    event_filter = parse_event_filter(subscription.query)
    bodies = [_body(e, config) for e in pending]
    selected = [
        (event, body)
        for event, body in zip(pending, bodies, strict=True)
        if body is not None and event_filter.matches(orjson.loads(body))
    ]
    if subscription.paused_until and parse_datetime(subscription.paused_until) > now:
        _park(store, stream, [e for e, _ in selected], last=pending[-1].id, config=config, now=now)
        return
    for position, (event, body) in enumerate(selected):
        attempt = _post(sender, subscription, event, body, now)
        outcome = attempt.outcome
        if outcome == Outcome.DELIVERED:
            stream.delivered_through = event.id
            stream.attempts, stream.failing_since, stream.last_error = 0, None, None
            with store.transaction(write=True) as tx:
                tx.events.save_stream(stream)
                tx.events.resume_subscription(subscription.id, now=stamp)
            continue
        if outcome == Outcome.GONE:
            with store.transaction(write=True) as tx:
                tx.events.save_stream(stream)
                tx.events.disable_subscription(
                    subscription.id, reason=f"the callback answered 410 Gone at {stamp}"
                )
            return
        if outcome == Outcome.BUSY and not attempt.stalled:
            if position:  # some were delivered in this run
                _save_stream(store, stream)
            raise RetryLater(attempt.describe(), delay=BUSY_RETRY + _jitter(BUSY_RETRY))
        if outcome == Outcome.BUSY:
            # Its earlier deliveries hang: hold its streams until they end (success wakes them).
            with store.transaction(write=True) as tx:
                tx.events.save_stream(stream)
                tx.events.pause_subscription(
                    subscription.id, until=format_datetime(now + config.busy_delay), failed=False
                )
            _park(
                store,
                stream,
                [e for e, _ in selected[position:]],
                last=pending[-1].id,
                config=config,
                now=now,
            )
            return
        if outcome == Outcome.REFUSED:
            stream.failing_since = None  # it answered: reachable, only this event is refused
            _dead_letter(store, stream, [event], now=stamp, error=attempt.describe())
            continue
        failing_since = parse_datetime(stream.failing_since) if stream.failing_since else now
        if now - failing_since >= config.horizon:
            # Failing for longer than the horizon: this event and the rest of the batch are dead.
            rest = [e for e, _ in selected[position:]]
            _dead_letter(store, stream, rest, now=stamp, error=attempt.describe(), last=pending[-1].id)
            return
        # The subscriber pauses as long as its longest-waiting failed stream: when the others come due
        # they find it paused and park, so a dead subscriber gets about one attempt per backoff.
        delay = backoff(stream.attempts, base=BACKOFF_BASE, cap=BACKOFF_CAP)
        stream.attempts += 1
        stream.failing_since = format_datetime(failing_since)
        stream.last_error = attempt.describe()
        with store.transaction(write=True) as tx:
            tx.events.save_stream(stream)
            tx.events.pause_subscription(subscription.id, until=format_datetime(now + delay))
        raise RetryLater(f"delivery to {subscription.callback} failed: {attempt.describe()}", delay=delay)
    if stream.delivered_through != pending[-1].id:  # the rest were not selected by the filter
        stream.delivered_through = pending[-1].id
        _save_stream(store, stream)
    if len(pending) == config.batch:
        raise RetryLater("more events are waiting in this stream", delay=timedelta(0))


def _park(
    store: Store,
    stream: Stream,
    selected: list[StoredEvent],
    *,
    last: int,
    config: EventsConfig,
    now: datetime,
) -> None:
    """The subscriber is failing: wait for a delivery to it to succeed (that wakes every parked stream),
    at most PARK_LIMIT, and dead-letter without an attempt once the horizon has passed."""
    if stream.failing_since is None:
        stream.failing_since = format_datetime(now)
    elapsed = now - parse_datetime(stream.failing_since)
    if elapsed >= config.horizon:
        if selected:
            error = f"not attempted: the subscriber has been failing since {stream.failing_since}"
            _dead_letter(store, stream, selected, now=format_datetime(now), error=error, last=last)
        return
    delay = min(PARK_LIMIT, config.horizon - elapsed)
    # Moved in the same statement that checks the pause, not by RetryLater after the handler: a
    # success that wakes the subscriber's streams meanwhile must not be overwritten.
    with store.transaction(write=True) as tx:
        tx.events.save_stream(stream)
        parked = tx.events.park_stream(
            stream.subscription_id,
            stream.service_order_id,
            until=format_datetime(now + delay + _jitter(delay)),
            now=format_datetime(now),
        )
    if not parked:
        raise RetryLater("the subscriber answered again meanwhile", delay=timedelta(0))


def redeliver(store: Store, sender: Sender, config: EventsConfig, job: Job, now: datetime) -> None:
    """An operator's replay of one dead letter: one attempt; it stays dead (and replayable) on failure."""
    dead_letter_id = int(job.key)
    stamp = format_datetime(now)
    with store.transaction(write=False) as tx:
        dead = tx.events.get_dead_letter(dead_letter_id)
        if dead is None or dead.delivered_at is not None:
            return
        subscription = tx.events.get_subscription(dead.subscription_id)
        event = tx.events.get_event(dead.outbox_id)
    if subscription is None or event is None:
        with store.transaction(write=True) as tx:
            tx.events.update_dead_letter(
                dead_letter_id, replayed_at=None, last_error="the subscription or the event no longer exists"
            )
        return
    body = _body(event, config)
    attempt = _post(sender, subscription, event, body or b"{}", now)
    if attempt.outcome == Outcome.BUSY:
        raise RetryLater(attempt.describe(), delay=config.busy_delay)
    with store.transaction(write=True) as tx:
        if attempt.outcome == Outcome.DELIVERED:
            tx.events.update_dead_letter(dead_letter_id, delivered_at=stamp)
        else:
            tx.events.update_dead_letter(
                dead_letter_id,
                replayed_at=None,
                attempts=dead.attempts + 1,
                last_error=f"replay at {stamp}: {attempt.describe()}",
            )


def _post(
    sender: Sender, subscription: Subscription, event: StoredEvent, body: bytes, now: datetime
) -> Attempt:
    headers = signature_headers(signing_secrets(subscription, now), event.event_id, now, body)
    url = target_url(subscription.callback, subscription.deliver_to, event.event_type)
    return sender.post(url, body, headers, subscriber=subscription.id, probing=subscription.failures > 0)


def _body(event: StoredEvent, config: EventsConfig) -> bytes | None:
    if event.document is None:
        return None
    return orjson.dumps(
        envelope(
            event_id=event.event_id,
            event_type=event.event_type,
            event_time=event.event_time,
            correlation_id=event.service_order_id,
            document=event.document,
            base_url=config.base_url,
        )
    )


def _dead_letter(
    store: Store,
    stream: Stream,
    events: Sequence[StoredEvent],
    *,
    now: str,
    error: str,
    last: int | None = None,
) -> None:
    with store.transaction(write=True) as tx:
        for event in events:
            tx.events.add_dead_letter(stream, event, now=now, attempts=stream.attempts + 1, error=error)
        stream.delivered_through = last if last is not None else events[-1].id
        stream.attempts, stream.last_error = 0, None
        tx.events.save_stream(stream)


def _save_stream(store: Store, stream: Stream) -> None:
    with store.transaction(write=True) as tx:
        tx.events.save_stream(stream)


def _jitter(delay: timedelta) -> timedelta:
    return timedelta(seconds=random.uniform(0, min(1.0, delay.total_seconds() * 0.2)))


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
    """Queue the named dead letters (or all undelivered ones of a subscription) for one more attempt."""
    with store.transaction(write=True) as tx:
        if ids:
            letters = []
            for dead_letter_id in ids:
                letter = tx.events.get_dead_letter(dead_letter_id)
                if letter is None:
                    raise DeadLetterNotFound(dead_letter_id)
                letters.append(letter)
        else:
            letters = tx.events.dead_letters(subscription_id=subscription_id, pending_only=True)
        queued = []
        for letter in letters:
            if letter.delivered_at is not None:
                continue
            tx.events.update_dead_letter(letter.id, replayed_at=format_datetime(now))
            tx.schedule_job(JobRequest(REDELIVER_JOB, str(letter.id), now), now=now)
            queued.append(letter.id)
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
