"""Replaying dead letters at operator scale: in order, in one job per subscription, beside live events.

The worker runs on the test's clock: a replay that waited for a busy delay would never finish here.
"""

from __future__ import annotations

from provtrack.domain.model import EventType
from tests.integration.events_harness import Hub, hub, receiver, settings
from tests.integration.receiver import Receiver

__all__ = ["hub", "receiver", "settings"]


def dead_letters_of(hub: Hub, receiver: Receiver, *, orders: int, patches: int) -> list[dict[str, object]]:
    """Events the receiver refused (422): each is dead-lettered at once."""
    receiver.default = 422
    for n in range(orders):
        order_id = hub.create_order()
        for p in range(patches):
            hub.patch(order_id, description=f"order {n}, change {p}")
    hub.worker().run_until_idle()
    receiver.default = 200
    letters = hub.dead_letters()
    assert len(letters) == orders * (1 + patches)
    return letters


def test_dead_letters_replay_in_their_order_without_waiting_when_delivery_slots_are_scarce(
    hub: Hub, receiver: Receiver
) -> None:
    subscription = hub.subscribe(receiver.url)
    letters = dead_letters_of(hub, receiver, orders=4, patches=2)

    queued = hub.replay(subscription=subscription["id"])
    # One POST at a time to this subscriber and no wait for a slot: parallel replays would be busy.
    hub.worker(threads=4, per_subscriber=1, max_wait=0).run_until_idle()

    assert queued == [letter["id"] for letter in letters]
    assert [r.event["eventId"] for r in receiver.accepted] == [letter["eventId"] for letter in letters]
    replayed = hub.dead_letters()
    assert all(letter["deliveredAt"] == "2026-11-27T09:00:00.000Z" for letter in replayed)
    assert {letter["attempts"] for letter in replayed} == {2}  # the refused POST and the replay


def test_live_events_are_delivered_between_the_batches_of_a_replay(hub: Hub, receiver: Receiver) -> None:
    subscription = hub.subscribe(receiver.url)
    letters = dead_letters_of(hub, receiver, orders=5, patches=0)

    hub.replay(subscription=subscription["id"])
    live = hub.create_order(description="created during the replay")
    hub.worker(threads=1, batch=2).run_until_idle()

    arrivals = [r.event["correlationId"] for r in receiver.accepted]
    assert arrivals.index(live) < len(letters)  # not after the whole replay
    replayed = [r.event["eventId"] for r in receiver.accepted if r.event["correlationId"] != live]
    assert replayed == [letter["eventId"] for letter in letters]


def test_a_replay_to_a_failing_subscriber_backs_off_and_goes_on_in_order_when_it_answers(
    hub: Hub, receiver: Receiver
) -> None:
    subscription = hub.subscribe(receiver.url)
    letters = dead_letters_of(hub, receiver, orders=1, patches=2)
    worker = hub.worker()
    receiver.answers.extend([204, 503, 503])  # the first goes through, then the subscriber fails

    hub.replay(subscription=subscription["id"])
    worker.run_until_idle()
    assert len(receiver.accepted) == 1
    for _ in range(3):
        hub.clock.advance(seconds=10)
        worker.run_until_idle()

    # Each exactly once, in order: the one delivered before the failure is not sent again.
    assert [r.event["eventId"] for r in receiver.accepted] == [letter["eventId"] for letter in letters]
    assert [letter["attempts"] for letter in hub.dead_letters()] == [2, 4, 2]  # 422, then 503s and 204s
    assert all(letter["deliveredAt"] for letter in hub.dead_letters())


def test_a_replay_that_fails_for_the_whole_horizon_leaves_the_letters_dead_and_replayable(
    hub: Hub, receiver: Receiver
) -> None:
    subscription = hub.subscribe(receiver.url)
    dead_letters_of(hub, receiver, orders=2, patches=0)
    receiver.default = 503
    worker = hub.worker()

    hub.replay(subscription=subscription["id"])
    for _ in range(26 * 2):
        worker.run_until_idle()
        hub.clock.advance(minutes=30)
    worker.run_until_idle()

    letters = hub.dead_letters()
    assert [(letter["replayedAt"], letter["deliveredAt"]) for letter in letters] == [(None, None)] * 2
    assert "not replayed within the retry horizon" in letters[0]["lastError"]
    assert "503" in letters[0]["lastError"]
    assert letters[1]["attempts"] == 1  # never sent during the replay: its predecessor never got through
    assert hub.store.pending_jobs(kind="events.redeliver") == []

    receiver.default = 200
    assert hub.replay(subscription=subscription["id"]) == [letter["id"] for letter in letters]
    worker.run_until_idle()
    assert receiver.event_types() == [EventType.ORDER_CREATE] * 2


def test_a_replay_parked_behind_a_failing_subscriber_goes_as_soon_as_a_delivery_to_it_succeeds(
    hub: Hub, receiver: Receiver
) -> None:
    subscription = hub.subscribe(receiver.url)
    letters = dead_letters_of(hub, receiver, orders=2, patches=0)
    worker = hub.worker(threads=1)
    receiver.answers.append(503)
    live = hub.create_order(description="fails once, pausing the subscriber")
    worker.run_until_idle()

    hub.replay(subscription=subscription["id"])
    worker.run_until_idle()  # the subscriber is paused: the replay parks, for up to 10 minutes
    assert [
        j["due_at"] > "2026-11-27T09:05:00.000Z" for j in hub.store.pending_jobs(kind="events.redeliver")
    ] == [True]
    hub.clock.advance(seconds=5)  # the live stream's backoff is over: it is delivered, and wakes the replay
    worker.run_until_idle()

    first, *replayed = receiver.accepted
    assert first.event["correlationId"] == live
    assert [r.event["eventId"] for r in replayed] == [letter["eventId"] for letter in letters]
