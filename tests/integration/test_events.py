"""Events end to end on loopback: the hub, the outbox, signed delivery by the worker, retries, dead letters.

The worker runs with the test's FakeClock: retries become due when the test moves the clock, never by
sleeping. The receiver is a real HTTP server on 127.0.0.1 (allowed by the operator's allow-list).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from provtrack.adapters.store.repository import SqlStore
from provtrack.adapters.webhooks import HttpSender
from provtrack.api.app import create_app
from provtrack.api.hub import events_config
from provtrack.domain.cancellation import CancelServiceOrder
from provtrack.domain.clock import format_datetime
from provtrack.domain.events import ALL_EVENT_TYPES
from provtrack.domain.model import EventType, OrderEvent, ServiceOrder
from provtrack.domain.states import OrderState
from provtrack.domain.webhooks import InvalidSignature, verify
from provtrack.engine.events import EventDelivery
from provtrack.engine.worker import Worker
from provtrack.settings import Settings
from tests.conftest import AS_ADMIN, FakeClock
from tests.factories import order_body
from tests.integration.receiver import Received, Receiver, free_port

API = "/tmf-api/serviceOrdering/v4"
EXT = "/provtrack/v1"
PUBLIC = "https://som.example.net"


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        public_url=PUBLIC,
        events_callback_allow="127.0.0.1",
        events_attempt_timeout_seconds=5,
    )


@pytest.fixture
def api(settings: Settings, store: SqlStore, clock: FakeClock) -> Iterator[TestClient]:
    with TestClient(
        create_app(settings, store, clock=clock, authenticator=AS_ADMIN), base_url="http://testserver"
    ) as client:
        yield client


@pytest.fixture
def worker(settings: Settings, store: SqlStore, clock: FakeClock) -> Iterator[Worker]:
    sender = HttpSender(timeout=settings.events_attempt_timeout_seconds)
    worker = Worker(
        store, EventDelivery(store, sender, events_config(settings)).handlers(), clock=clock, threads=4
    )
    yield worker
    worker.stop()
    sender.close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver().start()
    yield receiver
    receiver.stop()


def subscribe(api: TestClient, callback: str, **extra: Any) -> dict[str, Any]:
    response = api.post(f"{API}/hub", json={"callback": callback, **extra})
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def create_order(api: TestClient, **fields: Any) -> str:
    response = api.post(f"{API}/serviceOrder", json=order_body(**fields))
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def patch(api: TestClient, order_id: str, **fields: Any) -> None:
    response = api.patch(f"{API}/serviceOrder/{order_id}", json=fields)
    assert response.status_code == 200, response.text


def change(store: SqlStore, order_id: str, act: Callable[[ServiceOrder], None]) -> None:
    """What the engine does: load the aggregate, change it, save it in one transaction."""
    with store.transaction(write=True) as tx:
        order = tx.get_order(order_id)
        assert order is not None
        act(order)
        tx.save_order(order)


def assert_signed(receiver: Receiver, secret: str, clock: FakeClock) -> None:
    for received in receiver.accepted:
        assert signed_at(received) <= clock.now
        verify(secret, received.headers, received.body, now=signed_at(received))
        assert received.headers["webhook-id"] == received.event["eventId"]


def test_every_event_type_arrives_signed_with_the_v4_envelope(
    api: TestClient, store: SqlStore, worker: Worker, receiver: Receiver, clock: FakeClock
) -> None:
    secret = subscribe(api, receiver.url)["secret"]
    now = format_datetime(clock.now)

    first = create_order(api)
    patch(api, first, description="moved to the 3rd floor")
    change(store, first, lambda o: o.move_item("1", OrderState.IN_PROGRESS, now=now, actor="engine"))

    def engine_notes(order: ServiceOrder) -> None:
        order.milestones.append({"id": "m1", "name": "site survey done", "milestoneDate": now})
        order.events.append(OrderEvent(EventType.ORDER_MILESTONE, now))
        order.jeopardy_alerts.append({"id": "j1", "jeopardyType": "atRisk", "alertDate": now})
        order.events.append(OrderEvent(EventType.ORDER_JEOPARDY, now))
        order.events.append(OrderEvent(EventType.ORDER_INFORMATION_REQUIRED, now))

    change(store, first, engine_notes)
    second = create_order(api)
    cancelled = api.post(f"{API}/cancelServiceOrder", json={"serviceOrder": {"id": second}})
    assert cancelled.status_code == 201, cancelled.text
    with store.transaction(write=True) as tx:
        task = CancelServiceOrder.accept(
            {"serviceOrder": {"id": second}}, task_id="t-2", now=now, actor="ops"
        )
        task.events.append(OrderEvent(EventType.CANCEL_INFORMATION_REQUIRED, now))
        tx.add_task(task, created_at=now)
    assert api.delete(f"{API}/serviceOrder/{first}").status_code == 204

    worker.run_until_idle()

    assert set(receiver.event_types()) == set(ALL_EVENT_TYPES)
    assert len(ALL_EVENT_TYPES) == 10
    assert_signed(receiver, secret, clock)
    of_first = [r.event for r in receiver.accepted if r.event["correlationId"] == first]
    assert [e["eventType"] for e in of_first] == [
        EventType.ORDER_CREATE,
        EventType.ORDER_ATTRIBUTE_VALUE_CHANGE,
        EventType.ORDER_ATTRIBUTE_VALUE_CHANGE,
        EventType.ORDER_STATE_CHANGE,
        EventType.ORDER_MILESTONE,
        EventType.ORDER_JEOPARDY,
        EventType.ORDER_INFORMATION_REQUIRED,
        EventType.ORDER_DELETE,
    ]
    created = of_first[0]
    assert set(created) >= {"eventId", "eventTime", "eventType", "correlationId", "event"}
    assert created["eventTime"] == now
    assert created["event"]["serviceOrder"]["href"] == f"{PUBLIC}{API}/serviceOrder/{first}"
    # Each event carries the order as that change left it, even though it was deleted since.
    assert created["event"]["serviceOrder"]["description"] != "moved to the 3rd floor"
    assert of_first[1]["event"]["serviceOrder"]["description"] == "moved to the 3rd floor"
    assert of_first[3]["event"]["serviceOrder"]["state"] == "inProgress"
    task_events = [r.event for r in receiver.accepted if "cancelServiceOrder" in r.event["event"]]
    assert {e["eventType"] for e in task_events} == {
        EventType.CANCEL_CREATE,
        EventType.CANCEL_STATE_CHANGE,
        EventType.CANCEL_INFORMATION_REQUIRED,
    }
    assert task_events[0]["event"]["cancelServiceOrder"]["href"].startswith(
        f"{PUBLIC}{API}/cancelServiceOrder/"
    )
    assert len({r.event["eventId"] for r in receiver.accepted}) == len(receiver.accepted)


def test_a_receiver_down_then_failing_then_healthy_gets_every_event_once_in_order(
    api: TestClient, store: SqlStore, worker: Worker, clock: FakeClock
) -> None:
    receiver = Receiver(free_port())  # nothing listens yet: connection refused
    secret = subscribe(api, receiver.url)["secret"]
    order_id = create_order(api)
    worker.run_until_idle()
    patch(api, order_id, description="v2")
    patch(api, order_id, description="v3")
    clock.advance(minutes=2)
    worker.run_until_idle()  # still down

    receiver.answers.extend([500, 503])
    receiver.start()
    try:
        for _ in range(4):
            clock.advance(minutes=10)
            worker.run_until_idle()
        patch(api, order_id, description="v4")
        worker.run_until_idle()
    finally:
        receiver.stop()

    assert receiver.requests == 6  # two refused answers, then four events
    assert_signed(receiver, secret, clock)
    descriptions = [r.event["event"]["serviceOrder"]["description"] for r in receiver.accepted]
    assert descriptions[1:] == ["v2", "v3", "v4"]
    assert receiver.event_types() == [EventType.ORDER_CREATE] + [EventType.ORDER_ATTRIBUTE_VALUE_CHANGE] * 3
    assert api.get(f"{EXT}/deadLetter").json() == []


def test_410_gone_disables_the_subscription(api: TestClient, worker: Worker, receiver: Receiver) -> None:
    receiver.default = 410
    subscription = subscribe(api, receiver.url)
    order_id = create_order(api)
    worker.run_until_idle()
    patch(api, order_id, description="after the subscriber left")
    worker.run_until_idle()

    assert receiver.requests == 1
    state = api.get(f"{API}/hub/{subscription['id']}").json()
    assert state["state"] == "disabled"
    assert "410" in state["disabledReason"]
    assert "secret" not in state


def test_the_query_filter_selects_the_events_a_subscriber_gets(
    api: TestClient, store: SqlStore, worker: Worker, receiver: Receiver, clock: FakeClock
) -> None:
    creations = Receiver().start()
    try:
        subscribe(
            api,
            receiver.url,
            query="eventType=ServiceOrderStateChangeEvent&event.serviceOrder.state=inProgress,completed",
        )
        subscribe(api, creations.url, query="eventType=ServiceOrderCreateEvent")
        now = format_datetime(clock.now)
        order_id = create_order(api)
        patch(api, order_id, description="not a state change")
        change(store, order_id, lambda o: o.move_item("1", OrderState.IN_PROGRESS, now=now, actor="engine"))
        change(store, order_id, lambda o: o.move_to(OrderState.HELD, now=now, actor="ops"))
        worker.run_until_idle()
    finally:
        creations.stop()

    assert receiver.event_types() == [EventType.ORDER_STATE_CHANGE]
    assert receiver.accepted[0].event["event"]["serviceOrder"]["state"] == "inProgress"
    assert creations.event_types() == [EventType.ORDER_CREATE]


def test_a_bad_filter_is_refused_naming_it(api: TestClient, receiver: Receiver) -> None:
    response = api.post(f"{API}/hub", json={"callback": receiver.url, "query": "eventType=OrderBaked"})
    assert response.status_code == 400
    assert "OrderBaked" in response.json()["message"]


@pytest.mark.parametrize(
    ("callback", "why"),
    [
        ("ftp://127.0.0.1/events", "only http and https"),
        ("http://10.0.0.5/events", "allow-list"),
        ("http://user:pw@127.0.0.1/events", "credentials"),
        ("not a url", "scheme"),
    ],
)
def test_a_refused_callback_is_a_400_that_says_why(api: TestClient, callback: str, why: str) -> None:
    response = api.post(f"{API}/hub", json={"callback": callback})
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["code"] == "REFUSED_CALLBACK"
    assert why in body["message"]


def test_a_callback_is_required(api: TestClient) -> None:
    response = api.post(f"{API}/hub", json={"query": "eventType=ServiceOrderCreateEvent"})
    assert response.status_code == 400
    assert response.json()["message"].startswith("callback")


def test_a_subscription_can_be_read_and_deleted(api: TestClient, receiver: Receiver) -> None:
    created = subscribe(api, receiver.url, query="eventType=ServiceOrderCreateEvent")
    href = f"{PUBLIC}{API}/hub/{created['id']}"
    assert created["href"] == href
    read = api.get(f"{API}/hub/{created['id']}").json()
    assert read["callback"] == receiver.url
    assert read["query"] == "eventType=ServiceOrderCreateEvent"
    assert read["deliverTo"] == "callback"
    assert "secret" not in read
    assert api.delete(f"{API}/hub/{created['id']}").status_code == 204
    assert api.get(f"{API}/hub/{created['id']}").status_code == 404
    assert api.delete(f"{API}/hub/{created['id']}").status_code == 404


def test_listener_delivery_posts_to_the_listener_path_of_the_event(
    api: TestClient, worker: Worker, receiver: Receiver
) -> None:
    subscribe(api, receiver.url, deliverTo="listener")
    create_order(api)
    worker.run_until_idle()
    assert [r.path for r in receiver.accepted] == ["/events/listener/serviceOrderCreateEvent"]


def test_after_a_rotation_both_secrets_sign_until_the_overlap_ends(
    api: TestClient, worker: Worker, receiver: Receiver, clock: FakeClock
) -> None:
    subscription = subscribe(api, receiver.url)
    rotated = api.post(f"{EXT}/hub/{subscription['id']}/rotateSecret", json={"overlapSeconds": 3600})
    assert rotated.status_code == 200, rotated.text
    new_secret = rotated.json()["secret"]
    assert new_secret != subscription["secret"]

    create_order(api)
    worker.run_until_idle()
    clock.advance(hours=2)
    create_order(api)
    worker.run_until_idle()

    during, after = receiver.accepted
    assert len(during.headers["webhook-signature"].split()) == 2
    verify(subscription["secret"], during.headers, during.body, now=signed_at(during))
    verify(new_secret, during.headers, during.body, now=signed_at(during))
    verify(new_secret, after.headers, after.body, now=signed_at(after))
    with pytest.raises(InvalidSignature):
        verify(subscription["secret"], after.headers, after.body, now=signed_at(after))


def signed_at(received: Received) -> datetime:
    return datetime.fromtimestamp(int(received.headers["webhook-timestamp"]), UTC)


def test_after_the_horizon_an_event_is_dead_lettered_and_an_operator_can_replay_it(
    api: TestClient, worker: Worker, receiver: Receiver, clock: FakeClock
) -> None:
    receiver.default = 503
    subscription = subscribe(api, receiver.url)
    order_id = create_order(api)
    worker.run_until_idle()
    clock.advance(hours=25)
    worker.run_until_idle()

    [dead] = api.get(f"{EXT}/deadLetter").json()
    assert dead["serviceOrderId"] == order_id
    assert dead["subscriptionId"] == subscription["id"]
    assert dead["eventType"] == EventType.ORDER_CREATE
    assert "503" in dead["lastError"]
    assert receiver.accepted == []

    receiver.default = 200
    replay = api.post(f"{EXT}/deadLetter/replay", json={"ids": [dead["id"]]})
    assert replay.json() == {"queued": [dead["id"]]}
    worker.run_until_idle()

    assert receiver.event_types() == [EventType.ORDER_CREATE]
    [replayed] = api.get(f"{EXT}/deadLetter").json()
    assert replayed["deliveredAt"] is not None


def test_a_dead_subscriber_delays_nobody_else(
    api: TestClient, worker: Worker, receiver: Receiver, store: SqlStore
) -> None:
    dead = subscribe(api, f"http://127.0.0.1:{free_port()}/gone-away")
    subscribe(api, receiver.url)
    orders = [create_order(api) for _ in range(6)]

    worker.run_until_idle()

    assert sorted(r.event["correlationId"] for r in receiver.accepted) == sorted(orders)
    waiting = [j for j in store.pending_jobs(kind="events.deliver") if j["key"].startswith(dead["id"])]
    assert len(waiting) == 6  # the dead subscriber's streams wait: backing off, or parked behind it
    assert all(j["due_at"] > "2026-11-27T09:00:00.000Z" for j in waiting)


def test_the_timeline_lists_every_change_and_as_of_returns_the_order_as_it_was(
    api: TestClient, store: SqlStore, clock: FakeClock
) -> None:
    order_id = create_order(api, description="first wording")
    created_at = clock.now
    clock.advance(minutes=5)
    patch(api, order_id, description="second wording")
    clock.advance(minutes=5)
    now = format_datetime(clock.now)
    change(store, order_id, lambda o: o.move_item("1", OrderState.IN_PROGRESS, now=now, actor="engine"))
    clock.advance(minutes=5)
    assert api.delete(f"{API}/serviceOrder/{order_id}").status_code == 204

    timeline = api.get(f"{EXT}/serviceOrder/{order_id}/timeline").json()
    described = [t for t in timeline if t["attribute"] == "description"]
    assert described == [
        {
            "subject": "serviceOrder",
            "attribute": "description",
            "oldValue": "first wording",
            "newValue": "second wording",
            "at": "2026-11-27T09:05:00.000Z",
            "actor": "test-admin",
        }
    ]
    assert {
        "subject": "serviceOrderItem[1]",
        "oldValue": "acknowledged",
        "newValue": "inProgress",
    }.items() <= next(t for t in timeline if t["subject"] == "serviceOrderItem[1]").items()
    assert timeline[-1]["attribute"] == "deleted"

    def as_of(stamp: str) -> Any:
        return api.get(f"{API}/serviceOrder/{order_id}", params={"asOf": stamp})

    assert as_of("2026-11-27T08:59:59Z").status_code == 404
    at_creation = as_of(format_datetime(created_at)).json()
    assert at_creation["description"] == "first wording"
    assert at_creation["href"] == f"{PUBLIC}{API}/serviceOrder/{order_id}"
    assert as_of("2026-11-27T09:07:00Z").json()["description"] == "second wording"
    assert as_of("2026-11-27T09:07:00Z").json()["state"] == "acknowledged"
    assert as_of("2026-11-27T09:12:00+00:00").json()["state"] == "inProgress"
    gone = as_of("2026-11-27T09:16:00Z")
    assert gone.status_code == 404
    assert "deleted" in gone.json()["message"]
    assert as_of("yesterday").status_code == 400
    assert api.get(f"{EXT}/serviceOrder/nope/timeline").status_code == 404


def test_a_failing_subscribers_other_streams_wait_parked_and_its_recovery_wakes_them(
    api: TestClient, settings: Settings, store: SqlStore, clock: FakeClock
) -> None:
    receiver = Receiver(free_port())
    subscribe(api, receiver.url)
    first, second = create_order(api), create_order(api)
    sender = HttpSender(timeout=5)
    one_at_a_time = Worker(
        store, EventDelivery(store, sender, events_config(settings)).handlers(), clock=clock, batch=1
    )
    try:
        one_at_a_time.run_until_idle()  # the first stream fails and pauses the subscriber...
        [parked] = [j for j in store.pending_jobs(kind="events.deliver") if j["key"].endswith(second)]
        assert parked["due_at"] >= "2026-11-27T09:10:00.000Z"  # ...so the second does not even try
        receiver.start()
        clock.advance(seconds=5)
        one_at_a_time.run_until_idle()
    finally:
        receiver.stop()
        one_at_a_time.stop()
        sender.close()

    assert receiver.requests == 2
    assert sorted(r.event["correlationId"] for r in receiver.accepted) == sorted([first, second])


def test_an_event_the_receiver_refuses_with_a_4xx_is_dead_lettered_at_once_and_the_stream_goes_on(
    api: TestClient, worker: Worker, receiver: Receiver
) -> None:
    receiver.answers.append(422)
    subscribe(api, receiver.url)
    order_id = create_order(api)
    patch(api, order_id, description="next")
    worker.run_until_idle()

    assert receiver.event_types() == [EventType.ORDER_ATTRIBUTE_VALUE_CHANGE]
    [dead] = api.get(f"{EXT}/deadLetter").json()
    assert (dead["eventType"], dead["lastError"]) == (EventType.ORDER_CREATE, "HTTP 422")
