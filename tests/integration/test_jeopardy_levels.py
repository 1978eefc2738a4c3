"""Jeopardy levels on real orders with an injected clock: each alert lands at its exact instant."""

from __future__ import annotations

from provtrack.domain.clock import format_datetime
from provtrack.domain.jobs import JobRequest
from provtrack.services import jeopardy
from tests.integration.jeopardy_harness import Harness, harness, hours

__all__ = ["harness"]

MS = hours(1 / 3_600_000)


def test_an_activity_overrun_raises_at_risk_at_the_exact_threshold_instant(harness: Harness) -> None:
    h = harness
    order_id = h.create(requestedCompletionDate=format_datetime(h.t0 + hours(240)))
    assert h.level(order_id) == "onTrack"
    threshold = h.t0 + hours(1.25)  # reserve-port expected 1 h, overrun threshold 25 %
    [check] = h.jobs("jeopardy.check")
    assert check["due_at"] == format_datetime(threshold)

    h.at(threshold - MS)
    assert h.level(order_id) == "onTrack"
    h.at(threshold)

    [alert] = h.order(order_id).jeopardy_alerts
    assert alert["jeopardyType"] == "atRisk"
    assert alert["alertDate"] == format_datetime(threshold)
    assert "reserve-port" in alert["message"]
    assert "ServiceOrderJeopardyEvent" in h.events(order_id)


def test_a_projection_past_the_commitment_raises_in_jeopardy_before_the_due_date_then_late(
    harness: Harness,
) -> None:
    h = harness
    due = h.t0 + hours(4)  # the plan needs 3 h: on track, until reserve-port overruns by an hour
    order_id = h.create(requestedCompletionDate=format_datetime(due))
    assert h.order(order_id).expected_completion_date == format_datetime(h.t0 + hours(3))

    h.at(h.t0 + hours(1.25))
    assert h.level(order_id) == "atRisk"
    crossing = h.t0 + hours(2) + MS  # reserve-port "finishes any moment" + 2 h > due from here on
    h.at(crossing - MS)
    assert h.level(order_id) == "atRisk"
    h.at(crossing)
    alert = h.order(order_id).jeopardy_alerts[-1]
    assert (alert["jeopardyType"], alert["alertDate"]) == ("inJeopardy", format_datetime(crossing))
    assert "committed" in alert["message"] or "commitment 2026-11-27 13:00 UTC" in alert["message"]
    assert h.order(order_id).expected_completion_date == format_datetime(crossing + hours(2))

    h.at(due - MS)
    assert h.level(order_id) == "inJeopardy"
    h.at(due)
    alert = h.order(order_id).jeopardy_alerts[-1]
    assert (alert["jeopardyType"], alert["alertDate"]) == ("late", format_datetime(due))
    assert h.jobs("jeopardy.check") == []  # late is the top: nothing left to wait for


def test_an_order_back_on_track_is_recorded_and_finished_orders_are_not_watched(harness: Harness) -> None:
    h = harness
    order_id = h.create(requestedCompletionDate=format_datetime(h.t0 + hours(240)))
    h.at(h.t0 + hours(1.25))
    assert h.level(order_id) == "atRisk"

    h.clock.advance(minutes=15)
    h.complete(order_id, "reserve-port")

    alerts = h.order(order_id).jeopardy_alerts
    assert [a["jeopardyType"] for a in alerts] == ["atRisk", "onTrack"]
    assert alerts[-1]["name"] == "order back on track"
    assert h.order(order_id).expected_completion_date == format_datetime(h.t0 + hours(3.5))

    h.clock.advance(hours=1)
    h.complete(order_id, "activate-line")
    assert h.order(order_id).state.value == "completed"
    assert h.jobs("jeopardy.check") == []


def test_a_check_that_comes_after_the_order_completed_keeps_its_expected_completion_on_the_completion(
    harness: Harness,
) -> None:
    h = harness
    order_id = h.create(requestedCompletionDate=format_datetime(h.t0 + hours(240)))
    h.clock.advance(hours=1.5)
    h.complete(order_id, "reserve-port")
    h.clock.advance(hours=2.5)  # activate-line took half an hour longer than the 2 h projected
    h.complete(order_id, "activate-line")
    completed = h.order(order_id)
    assert completed.state.value == "completed"
    assert completed.expected_completion_date == completed.completion_date == format_datetime(h.clock.now)

    # A check job that comes due after the order completed (scheduled before the completion landed).
    with h.store.transaction(write=True) as tx:
        tx.schedule_job(JobRequest(jeopardy.CHECK_JOB, order_id, h.clock.now), now=h.clock.now)
    assert h.at(h.clock.now + hours(1 / 60)) == 1

    assert h.order(order_id).expected_completion_date == completed.completion_date


def test_learned_durations_replace_catalog_durations_after_enough_history(harness: Harness) -> None:
    h = harness
    first = h.create()
    assert h.order(first).expected_completion_date == format_datetime(h.t0 + hours(3))  # catalog
    for _ in range(3):  # minSamples: 3; each reserve-port takes 30 minutes
        order_id = h.create()
        h.clock.advance(minutes=30)
        h.complete(order_id, "reserve-port")
        h.clock.advance(minutes=1)
    learned = h.create()
    assert h.order(learned).expected_completion_date == format_datetime(h.clock.now + hours(2.5))
