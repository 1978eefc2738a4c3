"""Dead letters tell the truth: the eventId the receiver saw, and how many POSTs really went out.

And the callback address is checked again at delivery: a host whose DNS now points inside is not
posted to, whatever it resolved to when it subscribed.
"""

from __future__ import annotations

from provtrack.domain.model import EventType
from tests.integration.events_harness import Hub, hub, receiver, settings
from tests.integration.receiver import Receiver

__all__ = ["hub", "receiver", "settings"]


def test_a_dead_letter_carries_the_event_id_the_receiver_saw_and_a_replay_sends_it_again(
    hub: Hub, receiver: Receiver
) -> None:
    receiver.answers.append(422)
    subscription = hub.subscribe(receiver.url)
    hub.create_order()
    worker = hub.worker()
    worker.run_until_idle()

    [refused] = receiver.seen
    [dead] = hub.dead_letters()
    assert dead["eventId"] == refused.headers["webhook-id"] == refused.event["eventId"]

    hub.replay(subscription=subscription["id"])
    worker.run_until_idle()
    [replayed] = receiver.accepted
    assert replayed.event["eventId"] == replayed.headers["webhook-id"] == dead["eventId"]


def test_attempts_count_only_the_posts_that_went_out(hub: Hub, receiver: Receiver) -> None:
    receiver.default = 503
    hub.subscribe(receiver.url)
    first = hub.create_order()
    hub.patch(first, description="queued behind the failing create event")
    hub.create_order()  # its stream parks behind the failing subscriber
    worker = hub.worker()
    for _ in range(26 * 3):
        worker.run_until_idle()
        hub.clock.advance(minutes=20)
    worker.run_until_idle()

    letters = hub.dead_letters()
    assert len(letters) == 3
    assert sum(letter["attempts"] for letter in letters) == receiver.requests
    behind = next(d for d in letters if d["eventType"] == EventType.ORDER_ATTRIBUTE_VALUE_CHANGE)
    assert behind["attempts"] == 0  # never sent: the event before it never got through
    assert "HTTP 503" in behind["lastError"]


def test_a_callback_whose_host_now_resolves_inside_is_not_posted_to(hub: Hub, receiver: Receiver) -> None:
    callback = receiver.url.replace("127.0.0.1", "hooks.partner.example")
    hub.dns["hooks.partner.example"] = ["127.0.0.1"]  # allowed by address (the allow-list is 127.0.0.1)
    hub.subscribe(callback)
    order_id = hub.create_order()
    worker = hub.worker()
    worker.run_until_idle()
    [delivered] = receiver.accepted
    assert delivered.headers["host"] == f"hooks.partner.example:{receiver.port}"

    hub.dns["hooks.partner.example"] = ["10.1.2.3"]  # DNS changed since the subscription
    hub.patch(order_id, description="must not leave for 10.1.2.3")
    for _ in range(26 * 6):
        worker.run_until_idle()
        hub.clock.advance(minutes=10)
    worker.run_until_idle()

    assert receiver.requests == 1
    [dead] = hub.dead_letters()
    assert dead["eventType"] == EventType.ORDER_ATTRIBUTE_VALUE_CHANGE
    assert dead["attempts"] == 0
    assert "10.1.2.3" in dead["lastError"]
    assert "refused at delivery" in dead["lastError"]
