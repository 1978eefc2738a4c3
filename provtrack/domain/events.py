"""TMF641 notifications: the v4 event envelope, subscription filters, routing, listener paths, callback
checks.

Pure functions: the store keeps the events (outbox) and subscriptions, the worker delivers them.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from provtrack.domain.clock import InvalidDateTime, format_datetime, normalise_datetime, parse_datetime
from provtrack.domain.model import EventType, OrderEvent
from provtrack.domain.query import Condition, InvalidQuery, Value, parse_query

ALL_EVENT_TYPES: tuple[str, ...] = tuple(
    value for name, value in vars(EventType).items() if name.isupper() and isinstance(value, str)
)
TASK_EVENT_TYPES = frozenset(
    {EventType.CANCEL_CREATE, EventType.CANCEL_STATE_CHANGE, EventType.CANCEL_INFORMATION_REQUIRED}
)
ORDER_RESOURCE = "serviceOrder"
TASK_RESOURCE = "cancelServiceOrder"
ORDERS_PATH = "/tmf-api/serviceOrdering/v4/serviceOrder"
TASKS_PATH = "/tmf-api/serviceOrdering/v4/cancelServiceOrder"
_PAGING = ("fields", "offset", "limit", "sort", "asOf")
# A stream of a failing subscriber waits ("parks") until a delivery to it succeeds, at most this long.
PARK_LIMIT = timedelta(minutes=10)
DELIVER_JOB = "events.deliver"  # key: <subscription id>/<order id>, one job per delivery stream
REDELIVER_JOB = "events.redeliver"  # key: subscription id; posts its dead letters queued for replay
PRUNE_JOB = "events.prune"  # key: PRUNE_KEY; deletes delivered outbox rows, then reschedules itself
PRUNE_KEY = "outbox"


def stream_key(subscription_id: str, order_id: str) -> str:
    """The delivery job's key of a (subscription, order) stream."""
    return f"{subscription_id}/{order_id}"


class DeliverTo(StrEnum):
    """Where a subscription's events are posted; the TMF641 text leaves it open (§5 of the notes)."""

    CALLBACK = "callback"  # the callback URL exactly as registered (the default)
    LISTENER = "listener"  # callback + /listener/<eventName>, the spec's example client listener


def resource_of(event_type: str) -> str:
    return TASK_RESOURCE if event_type in TASK_EVENT_TYPES else ORDER_RESOURCE


def listener_name(event_type: str) -> str:
    """`ServiceOrderCreateEvent` -> `serviceOrderCreateEvent`, as in the TMF641 listener paths."""
    return event_type[0].lower() + event_type[1:]


def target_url(callback: str, deliver_to: DeliverTo, event_type: str) -> str:
    if deliver_to == DeliverTo.LISTENER:
        return f"{callback.rstrip('/')}/listener/{listener_name(event_type)}"
    return callback


def envelope(
    *,
    event_id: str,
    event_type: str,
    event_time: str,
    correlation_id: str,
    document: dict[str, Any],
    base_url: str,
) -> dict[str, Any]:
    """The TMF641 v4 event: `event` holds the order (or cancel task) with its absolute href."""
    resource = resource_of(event_type)
    path = TASKS_PATH if resource == TASK_RESOURCE else ORDERS_PATH
    payload = {"id": document["id"], "href": f"{base_url.rstrip('/')}{path}/{document['id']}"}
    payload.update((k, v) for k, v in document.items() if k != "id")
    return {
        "@type": event_type,
        "eventId": event_id,
        "eventTime": event_time,
        "eventType": event_type,
        "correlationId": correlation_id,
        "domain": "serviceOrdering",
        "title": event_type,
        "timeOcurred": event_time,  # spelled so in TMF641 v4
        "event": {resource: payload},
    }


# --- records (the store keeps them) -------------------------------------------------------------------------------------


@dataclass(slots=True)
class Subscription:
    id: str
    callback: str
    query: str | None
    deliver_to: DeliverTo
    secret: str
    created_at: str
    after_event: int
    state: str = "active"
    disabled_reason: str | None = None
    previous_secret: str | None = None
    previous_secret_until: str | None = None
    paused_until: str | None = None
    failures: int = 0
    client: str | None = None  # whose orders it sees; None: an administrator's, every order


@dataclass(frozen=True, slots=True)
class StoredEvent:
    id: int
    event_id: str
    service_order_id: str
    event_type: str
    event_time: str
    document: dict[str, Any] | None  # None: the order version is gone (should not happen)


@dataclass(slots=True)
class Stream:
    subscription_id: str
    service_order_id: str
    delivered_through: int
    attempts: int = 0
    failing_since: str | None = None
    last_error: str | None = None
    exists: bool = False


@dataclass(frozen=True, slots=True)
class DeadLetter:
    id: int
    subscription_id: str
    outbox_id: int
    event_id: str  # the eventId (and webhook-id) the receiver saw; a replay sends it again
    service_order_id: str
    event_type: str
    dead_at: str
    attempts: int  # POSTs of this event that reached the network, replays included
    last_error: str
    replayed_at: str | None  # queued for replay since then (None: not queued)
    delivered_at: str | None


# --- subscription filters ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EventFilter:
    """A hub `query` (TMF630 filter syntax) applied to the event envelope; empty selects everything."""

    conditions: tuple[Condition, ...]

    def matches(self, event: dict[str, Any]) -> bool:
        return all(_holds(c, list(_values_at(event, c.path))) for c in self.conditions)


@lru_cache(maxsize=1024)
def parse_event_filter(query: str | None) -> EventFilter:
    """`eventType=ServiceOrderStateChangeEvent&event.serviceOrder.state=completed,failed`."""
    if not query:
        return EventFilter(())
    text = query.lstrip("?")
    for part in text.replace(";", "&").split("&"):
        name = part.split("=", 1)[0].split(".", 1)[0]
        if name in _PAGING:
            raise InvalidQuery("query", f"{name} selects fields or pages, not events")
    parsed = parse_query(text, default_limit=1, max_limit=1)
    for condition in parsed.conditions:
        if condition.path == ("eventType",):
            for value in condition.values:
                if condition.op in ("eq", "ne") and value.text not in ALL_EVENT_TYPES:
                    raise InvalidQuery(
                        "query", f"eventType {value.text!r} is not one of {', '.join(ALL_EVENT_TYPES)}"
                    )
    return EventFilter(parsed.conditions)


def _values_at(node: Any, path: tuple[str, ...]) -> Iterable[Any]:
    if isinstance(node, list):
        for element in node:
            yield from _values_at(element, path)
        return
    if not path:
        yield node
        return
    if isinstance(node, dict) and path[0] in node:
        yield from _values_at(node[path[0]], path[1:])


def _holds(condition: Condition, found: list[Any]) -> bool:
    if condition.op == "ne":
        return not any(_compare(v, w) == 0 for v in found for w in condition.values)
    if not found:
        return False
    wanted = {"eq": (0,), "gt": (1,), "gte": (0, 1), "lt": (-1,), "lte": (-1, 0)}[condition.op]
    return any(_compare(v, w) in wanted for v in found for w in condition.values)


def _compare(actual: Any, expected: Value) -> int | None:
    """-1/0/1 comparing a document value with a filter value of its kind; None if incomparable."""
    if isinstance(actual, dict | list) or actual is None:
        return None
    if expected.kind == "number" and not isinstance(actual, bool):
        try:
            a, b = float(actual), expected.number
        except (TypeError, ValueError):
            return None
        return (a > b) - (a < b)
    text = str(actual).lower() if isinstance(actual, bool) else str(actual)
    if expected.kind == "datetime":
        try:
            text = normalise_datetime(text)
        except InvalidDateTime:
            return None
    return (text > expected.text) - (text < expected.text)


# --- routing: which subscription's stream gets which events ----------------------------------------


@dataclass(frozen=True, slots=True)
class ActiveSubscription:
    """What routing needs of an active subscription."""

    id: str
    query: str | None
    paused_until: str | None  # a failing subscriber: no stream of it posts before then
    client: str | None = None  # sees only the orders of this client; None: every order
    failures: int = 0  # 0 with a pause: only busy (its POSTs in flight hang), not failing


@dataclass(frozen=True, slots=True)
class RaisedEvents:
    """The events one transaction raised about one order: changes of the order or of its cancel task."""

    order_id: str
    resource: str  # ORDER_RESOURCE or TASK_RESOURCE: where the document sits in the envelope
    events: Sequence[OrderEvent]
    # The order (or task) as the transaction leaves it; built only if some subscription looks at it.
    document: Callable[[], dict[str, Any]]
    client: str | None = None  # the client that placed the order


@dataclass(frozen=True, slots=True)
class StreamDue:
    """The delivery job of the (subscription, order) stream, due at `due_at`."""

    subscription_id: str
    order_id: str
    due_at: str

    @property
    def key(self) -> str:
        return stream_key(self.subscription_id, self.order_id)

    @property
    def payload(self) -> dict[str, Any]:
        return {"subscription": self.subscription_id, "order": self.order_id}


def route_events(
    subscriptions: Sequence[ActiveSubscription], raised: Sequence[RaisedEvents]
) -> list[StreamDue]:
    """The streams that must run: one per subscription whose filter selects any of an order's events.

    Due when the order's last event happened; a paused subscriber's new streams park at once, for
    PARK_LIMIT (a delivery to it that succeeds wakes them earlier).
    """
    due: list[StreamDue] = []
    if not subscriptions:
        return due
    for batch in raised:
        if not batch.events:
            continue
        document = batch.document()
        envelopes = [
            {
                "eventType": e.event_type,
                "eventTime": e.at,
                "correlationId": batch.order_id,
                "event": {batch.resource: document},
            }
            for e in batch.events
        ]
        at = batch.events[-1].at
        for subscription in subscriptions:
            if subscription.client is not None and subscription.client != batch.client:
                continue  # another client's order: that subscriber may not see it
            event_filter = parse_event_filter(subscription.query)
            if any(event_filter.matches(e) for e in envelopes):
                due.append(StreamDue(subscription.id, batch.order_id, _stream_due_at(subscription, at)))
    return due


def _stream_due_at(subscription: ActiveSubscription, at: str) -> str:
    if subscription.paused_until and subscription.paused_until > at:
        return format_datetime(
            parked_until(parse_datetime(at), subscription.paused_until, subscription.failures)
        )
    return at


def parked_until(now: datetime, paused_until: str, failures: int) -> datetime:
    """When a stream of a paused subscriber looks again, unless a delivery that succeeds wakes it first.

    A failing subscriber's streams wait PARK_LIMIT: a probe tells when it is back, and its success
    wakes them. A subscriber that is only busy (failures 0: its POSTs in flight hang) is paused for a
    short while; its streams wait no longer than that, since the POSTs it waits on may all have ended
    before the pause was recorded, leaving no success to come and wake them.
    """
    if failures:
        return now + PARK_LIMIT
    return min(now + PARK_LIMIT, max(now, parse_datetime(paused_until)))


# --- callback URL checks -------------------------------------------------------------------------


class RefusedCallback(ValueError):
    """A callback URL the hub will not post to; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class CallbackPolicy:
    """The operator's allow-list: host names (`*.example.net`), addresses and networks (CIDR).

    Empty: any public host. Loopback, private, link-local and other special addresses are refused
    unless an entry names the host or covers the address.
    """

    allow: tuple[str, ...] = ()

    def host_listed(self, host: str) -> bool:
        host = host.lower().rstrip(".")
        for entry in self.allow:
            entry = entry.lower().strip()
            if entry in ("*", host):
                return True
            if entry.startswith("*.") and host.endswith(entry[1:]):
                return True
        return False

    def address_listed(self, address: str) -> bool:
        ip = ipaddress.ip_address(address)
        for entry in self.allow:
            try:
                network = ipaddress.ip_network(entry.strip(), strict=False)
            except ValueError:
                continue
            if ip.version == network.version and ip in network:
                return True
        return False


def callback_host(url: str) -> str:
    """The host of an http(s) URL, or RefusedCallback."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises on a malformed port)
    except ValueError as exc:
        raise RefusedCallback(f"callback {url!r} is not a valid URL: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise RefusedCallback(
            f"callback {url!r} uses scheme {parts.scheme or '(none)'!r}: only http and https are allowed"
        )
    if not parts.hostname:
        raise RefusedCallback(f"callback {url!r} has no host")
    if parts.username or parts.password:
        raise RefusedCallback(f"callback {url!r} carries credentials; the hub signs its posts instead")
    return parts.hostname


def check_callback(url: str, addresses: Iterable[str], policy: CallbackPolicy) -> None:
    """Refuse a callback the operator has not allowed; `addresses` are what its host resolves to."""
    check_addresses(callback_host(url), addresses, policy)


def check_addresses(host: str, addresses: Iterable[str], policy: CallbackPolicy) -> None:
    """Refuse a callback host whose addresses the operator has not allowed: at registration, and
    again at delivery for the addresses actually connected to (DNS may have changed meanwhile)."""
    addresses = list(addresses)
    if not addresses:
        raise RefusedCallback(f"callback host {host!r} does not resolve to any address")
    named = policy.host_listed(host)
    unlisted = [a for a in addresses if not policy.address_listed(a)]
    if policy.allow and not named and unlisted:
        raise RefusedCallback(
            f"callback host {host!r} (at {', '.join(unlisted)}) is not in the operator's allow-list "
            f"(PROVTRACK_EVENTS_CALLBACK_ALLOW={','.join(policy.allow)})"
        )
    for address in addresses:
        ip = ipaddress.ip_address(address)
        if named or policy.address_listed(address) or ip.is_global:
            continue
        kind = (
            "loopback"
            if ip.is_loopback
            else "link-local"
            if ip.is_link_local
            else "private"
            if ip.is_private
            else "non-public"
        )
        raise RefusedCallback(
            f"callback host {host!r} resolves to {kind} address {address}: internal addresses are "
            "refused unless the operator allows them (PROVTRACK_EVENTS_CALLBACK_ALLOW)"
        )
