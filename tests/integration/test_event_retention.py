"""Delivered events leave the outbox after the retention; what is still owed stays, and `asOf` and the
timeline, which never read the outbox, keep answering."""

from __future__ import annotations

from datetime import timedelta

from provtrack.domain.clock import format_datetime
from provtrack.services import delivery
from tests.integration.events_harness import API, EXT, Hub, hub, receiver, settings
from tests.integration.receiver import Receiver, free_port

__all__ = ["hub", "receiver", "settings"]


def test_pruning_deletes_delivered_events_and_as_of_and_the_timeline_keep_working(
    hub: Hub, receiver: Receiver
) -> None:
    hub.subscribe(receiver.url)
    order_id = hub.create_order(description="first wording")
    created = format_datetime(hub.clock.now)
    hub.clock.advance(minutes=5)
    hub.patch(order_id, description="second wording")
    hub.clock.advance(minutes=5)
    hub.patch(order_id, description="third wording")
    worker = hub.worker()
    worker.run_until_idle()
    assert len(receiver.accepted) == 3

    hub.clock.advance(days=8)
    delivery.schedule_pruning(hub.store, now=hub.clock.now)
    worker.run_until_idle()

    assert hub.outbox_size() == 1  # the newest row stays: ids must keep growing
    as_of = hub.api.get(f"{API}/serviceOrder/{order_id}", params={"asOf": created}).json()
    assert as_of["description"] == "first wording"
    middle = hub.api.get(f"{API}/serviceOrder/{order_id}", params={"asOf": "2026-11-27T09:07:00Z"}).json()
    assert middle["description"] == "second wording"
    timeline = hub.api.get(f"{EXT}/serviceOrder/{order_id}/timeline").json()
    assert [t["newValue"] for t in timeline if t["attribute"] == "description"] == [
        "second wording",
        "third wording",
    ]


def test_pruning_keeps_events_a_stream_still_owes_and_those_of_dead_letters(hub: Hub) -> None:
    down = Receiver(free_port())  # nothing listens: the stream backs off, its event is owed
    refusing = Receiver(default=422).start()  # refuses: a dead letter, awaiting a replay
    try:
        hub.subscribe(down.url, query="event.serviceOrder.category=business")
        refused = hub.subscribe(refusing.url, query="event.serviceOrder.category=residential")
        hub.create_order(category="wholesale")  # nobody's: pruned
        owed = hub.create_order(category="business")
        dead = hub.create_order(category="residential")
        hub.create_order(category="wholesale")  # nobody's, but the newest row
        worker = hub.worker(horizon=timedelta(days=30))
        worker.run_until_idle()
        assert len(hub.dead_letters()) == 1

        hub.clock.advance(days=8)
        delivery.schedule_pruning(hub.store, now=hub.clock.now)
        worker.run_until_idle()
        assert hub.outbox_size() == 3

        refusing.default = 200
        hub.replay(subscription=refused["id"])
        down.start()
        hub.clock.advance(hours=2)
        worker.run_until_idle()
        assert [r.event["correlationId"] for r in refusing.accepted] == [dead]
        assert [r.event["correlationId"] for r in down.accepted] == [owed]
    finally:
        refusing.stop()
        down.stop()


def test_an_event_written_after_pruning_reaches_a_stream_that_passed_the_pruned_ones(
    hub: Hub, receiver: Receiver
) -> None:
    hub.subscribe(receiver.url)
    order_id = hub.create_order()
    hub.patch(order_id, description="delivered, then pruned")
    worker = hub.worker()
    worker.run_until_idle()
    hub.clock.advance(days=8)
    delivery.schedule_pruning(hub.store, now=hub.clock.now)
    worker.run_until_idle()

    hub.patch(order_id, description="written after the pruning")
    worker.run_until_idle()

    assert [r.event["event"]["serviceOrder"]["description"] for r in receiver.accepted][-1] == (
        "written after the pruning"
    )


def test_the_prune_job_works_in_batches_and_then_comes_back_after_its_interval(hub: Hub) -> None:
    for _ in range(5):
        hub.create_order()  # no subscriber: nothing is owed
    hub.clock.advance(days=8)
    delivery.schedule_pruning(hub.store, now=hub.clock.now)
    worker = hub.worker(prune_batch=2, prune_every=timedelta(minutes=30))

    worker.run_until_idle()

    assert hub.outbox_size() == 1
    [job] = hub.store.pending_jobs(kind="events.prune")
    assert job["due_at"] == format_datetime(hub.clock.now + timedelta(minutes=30))
    delivery.schedule_pruning(hub.store, now=hub.clock.now)  # a restart keeps the job as it is
    assert hub.store.pending_jobs(kind="events.prune")[0]["due_at"] == job["due_at"]
