"""Routing decides which subscription's stream gets which events, without a database."""

from __future__ import annotations

from typing import Any

from provtrack.domain.events import (
    ORDER_RESOURCE,
    TASK_RESOURCE,
    ActiveSubscription,
    RaisedEvents,
    StreamDue,
    route_events,
)
from provtrack.domain.model import EventType, OrderEvent
from provtrack.domain.webhooks import Attempt, Outcome
from provtrack.services import delivery

AT = "2026-11-27T09:00:00.000Z"
LATER = "2026-11-27T09:00:05.000Z"


def order_events(*types: str, order_id: str = "o-1", **document: Any) -> RaisedEvents:
    events = [OrderEvent(t, AT) for t in types[:-1]] + [OrderEvent(types[-1], LATER)]
    return RaisedEvents(order_id, ORDER_RESOURCE, events, lambda: {"id": order_id, **document})


def subscriber(
    query: str | None = None, *, paused_until: str | None = None, id: str = "s-1", failures: int = 1
) -> ActiveSubscription:
    return ActiveSubscription(id, query, paused_until, failures=failures)


def test_a_subscription_that_selects_any_of_an_orders_events_gets_its_stream_due_at_the_last_one() -> None:
    raised = order_events(EventType.ORDER_CREATE, EventType.ORDER_STATE_CHANGE, state="inProgress")
    due = route_events([subscriber("eventType=ServiceOrderStateChangeEvent")], [raised])
    assert due == [StreamDue("s-1", "o-1", LATER)]
    assert due[0].key == "s-1/o-1"
    assert due[0].payload == {"subscription": "s-1", "order": "o-1"}


def test_a_subscription_whose_filter_selects_none_of_the_events_gets_nothing() -> None:
    raised = order_events(EventType.ORDER_ATTRIBUTE_VALUE_CHANGE, category="business")
    assert route_events([subscriber("event.serviceOrder.category=residential")], [raised]) == []


def test_each_order_and_each_subscription_has_its_own_stream() -> None:
    first = order_events(EventType.ORDER_CREATE, order_id="o-1", category="business")
    second = order_events(EventType.ORDER_CREATE, order_id="o-2", category="residential")
    everything, business = subscriber(id="all"), subscriber("event.serviceOrder.category=business", id="biz")
    due = route_events([everything, business], [first, second])
    assert sorted(d.key for d in due) == ["all/o-1", "all/o-2", "biz/o-1"]


def test_a_busy_subscribers_new_stream_parks_only_until_its_pause_ends() -> None:
    # Busy, not failing: the POSTs it waits on may have ended already, and no success would wake it.
    raised = order_events(EventType.ORDER_CREATE)
    [parked] = route_events([subscriber(paused_until="2026-11-27T09:00:15.000Z", failures=0)], [raised])
    assert parked.due_at == "2026-11-27T09:00:15.000Z"


def test_a_paused_subscribers_new_stream_parks_for_the_park_limit() -> None:
    raised = order_events(EventType.ORDER_CREATE)
    [parked] = route_events([subscriber(paused_until="2026-11-27T09:03:00.000Z")], [raised])
    assert parked.due_at == "2026-11-27T09:10:05.000Z"  # PARK_LIMIT after the event


def test_a_pause_that_ended_before_the_event_does_not_park_it() -> None:
    raised = order_events(EventType.ORDER_CREATE)
    [due] = route_events([subscriber(paused_until="2026-11-27T08:59:00.000Z")], [raised])
    assert due.due_at == LATER


def test_cancel_task_events_are_matched_on_the_task_document() -> None:
    task = RaisedEvents(
        "o-1",
        TASK_RESOURCE,
        [OrderEvent(EventType.CANCEL_CREATE, AT)],
        lambda: {"id": "t-1", "state": "acknowledged"},
    )
    query = "event.cancelServiceOrder.state=acknowledged"
    assert route_events([subscriber(query)], [task]) == [StreamDue("s-1", "o-1", AT)]
    assert route_events([subscriber("event.serviceOrder.state=acknowledged")], [task]) == []


def test_without_subscriptions_no_document_is_built() -> None:
    def never() -> dict[str, Any]:
        raise AssertionError("the document was built for nobody")

    raised = RaisedEvents("o-1", ORDER_RESOURCE, [OrderEvent(EventType.ORDER_CREATE, AT)], never)
    assert route_events([], [raised]) == []


def test_an_attempt_refused_before_connecting_was_not_sent_and_is_blocked() -> None:
    blocked = Attempt(None, "callback host resolves to private address 10.0.0.7", blocked=True)
    assert blocked.outcome == Outcome.BLOCKED
    assert not blocked.sent
    assert not Attempt(None, "busy", busy=True).sent
    assert Attempt(None, "connection refused").sent
    assert Attempt(503).sent


def test_every_outcome_of_an_attempt_has_a_rule_for_streams_and_for_replays() -> None:
    assert set(delivery._ON_STREAM_OUTCOME) == set(Outcome)
    assert set(delivery._ON_REPLAY_OUTCOME) == set(Outcome)


def test_a_clients_subscription_gets_only_that_clients_orders_and_an_administrators_gets_all() -> None:
    alices = RaisedEvents("o-a", ORDER_RESOURCE, [OrderEvent(EventType.ORDER_CREATE, AT)], dict, "alice")
    bobs = RaisedEvents("o-b", ORDER_RESOURCE, [OrderEvent(EventType.ORDER_CREATE, AT)], dict, "bob")
    alice = ActiveSubscription("s-alice", None, None, client="alice")
    admin = ActiveSubscription("s-admin", None, None, client=None)

    due = route_events([alice, admin], [alices, bobs])

    assert sorted(d.key for d in due) == ["s-admin/o-a", "s-admin/o-b", "s-alice/o-a"]
