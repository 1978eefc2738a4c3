"""Cancelling orders under way, against simulated TMF652 systems over real HTTP: before the start,
with a resource order in flight (a system that cancels it, one that refuses), after a compensable
activity (its undo runs), after the point of no return (denied), at a requested date. Each time the
impact preview is compared with what then happens."""

from __future__ import annotations

from typing import Any

from provtrack.domain.catalog import ActivityKind
from provtrack.domain.clock import format_datetime
from provtrack.services import hub_subscriptions
from provtrack.services.ports import DownstreamSubscription
from tests.integration.cancellation_harness import (
    Cancelling,
    assert_outcome_matches,
    cancelling,
    fibre_order,
    one_item,
)
from tests.integration.engine_harness import simulator
from tests.integration.tmf import assert_tmf_error

__all__ = ["cancelling", "simulator"]


def test_an_order_cancelled_before_its_start_cancels_every_activity(cancelling: Cancelling) -> None:
    later = format_datetime(cancelling.clock.now.replace(hour=18))
    order_id = cancelling.create(fibre_order(requestedStartDate=later))
    cancelling.worker.run_until_idle()  # planned, waiting for its start
    preview = cancelling.impact(order_id)

    task = cancelling.cancel(order_id, cancellationReason="changed my mind")

    assert preview["cancellable"] is True
    assert [e["name"] for e in preview["cancel"]] == ["reserve-port", "configure-port", "activate-line"]
    assert (preview["stop"], preview["undo"]) == ([], [])
    assert task["state"] == "done"
    order = cancelling.order(order_id)
    assert (order["state"], order["cancellationReason"]) == ("cancelled", "changed my mind")
    assert {a["state"] for a in cancelling.plan(order_id)["activity"]} == {"cancelled"}
    assert_outcome_matches(preview, cancelling.plan(order_id))
    cancelling.clock.advance(hours=12)
    cancelling.worker.run_until_idle()  # the start it was planned for never comes
    assert cancelling.simulator.created() == []


def test_a_resource_order_in_flight_is_cancelled_at_its_system(cancelling: Cancelling) -> None:
    cancelling.slow("olt-port")
    order_id = cancelling.create(fibre_order())
    cancelling.run_until(lambda: "externalId" in cancelling.activity(order_id, "reserve-port"))
    preview = cancelling.impact(order_id)

    task = cancelling.cancel(order_id, cancellationReason="moved house")
    assert task["state"] == "inProgress"
    assert cancelling.state(order_id) == "pendingCancellation"
    cancelling.run_until(lambda: cancelling.state(order_id) == "cancelled")

    assert [(e["name"], e["how"]) for e in preview["stop"]] == [("reserve-port", "cancelResourceOrder")]
    [sent] = cancelling.simulator.cancellations.values()
    reserve = cancelling.activity(order_id, "reserve-port")
    assert sent.document["resourceOrder"]["id"] == reserve["externalId"]
    assert reserve["state"] == "cancelled"
    [withdrawal] = cancelling.steps(order_id)
    assert (withdrawal["name"], withdrawal["state"]) == ("cancel-reserve-port", "done")
    done = cancelling.task(task["id"])
    assert done["state"] == "done"
    assert done["effectiveCancellationDate"] == cancelling.order(order_id)["cancellationDate"]
    assert_outcome_matches(preview, cancelling.plan(order_id))


def test_a_cancellation_a_hub_system_carries_out_later_is_followed_by_its_notifications(
    cancelling: Cancelling,
) -> None:
    cancelling.slow("iptv-entitlement")
    cancelling.simulator.behaviour.cancel_delay = 0.05  # the task answers acknowledged; done later
    order_id = cancelling.create(one_item("tv"))

    task = cancelling.cancel(order_id)
    cancelling.run_until(lambda: cancelling.state(order_id) == "cancelled")  # the clock never moves

    [sent] = cancelling.simulator.cancellations.values()
    assert sent.document["state"] == "acknowledged"
    [withdrawal] = cancelling.steps(order_id)
    assert withdrawal["state"] == "done"
    assert cancelling.activity(order_id, "entitle-tv")["externalState"] == "cancelled"
    assert cancelling.task(task["id"])["state"] == "done"


def test_a_cancellation_a_polled_system_carries_out_later_is_followed_by_polling(
    cancelling: Cancelling,
) -> None:
    cancelling.slow("olt-port")
    cancelling.simulator.behaviour.cancel_delay = 0.05
    order_id = cancelling.create(fibre_order())

    cancelling.cancel(order_id)
    cancelling.worker.run_until_idle()
    assert cancelling.state(order_id) == "pendingCancellation"
    cancelling.run_until(lambda: cancelling.state(order_id) == "cancelled", step_seconds=10)

    [withdrawal] = cancelling.steps(order_id)
    assert withdrawal["state"] == "done"
    assert withdrawal["externalId"] == next(iter(cancelling.simulator.cancellations.values())).document["id"]


def test_a_cancel_whose_answer_was_lost_is_looked_up_not_sent_again(cancelling: Cancelling) -> None:
    cancelling.slow("olt-port")
    cancelling.simulator.behaviour.lose_cancel_answers = 1
    order_id = cancelling.create(fibre_order())

    cancelling.cancel(order_id)
    cancelling.worker.run_until_idle()  # the cancel was carried out, its answer lost: retried later
    assert cancelling.state(order_id) == "pendingCancellation"
    cancelling.run_until(lambda: cancelling.state(order_id) == "cancelled", step_seconds=5)

    assert cancelling.simulator.cancel_desk.posts_received == 1
    assert len(cancelling.simulator.cancellations) == 1


def test_an_order_never_sent_is_looked_up_and_nothing_cancelled(cancelling: Cancelling) -> None:
    cancelling.simulator.behaviour.fail_posts = 1  # the first POST fails: its dispatch waits for a retry
    order_id = cancelling.create(fibre_order())
    assert "externalId" not in cancelling.activity(order_id, "reserve-port")

    cancelling.cancel(order_id)
    cancelling.run_until(lambda: cancelling.state(order_id) == "cancelled")
    cancelling.clock.advance(minutes=30)
    cancelling.worker.run_until_idle()  # the dispatch it waited for never goes out

    [withdrawal] = cancelling.steps(order_id)
    assert withdrawal["reason"] == "inventory has no order for it: it was never sent"
    assert cancelling.simulator.created() == []
    assert cancelling.simulator.cancellations == {}


def test_an_order_whose_creation_answer_was_lost_is_found_and_cancelled(cancelling: Cancelling) -> None:
    cancelling.slow("olt-port")
    cancelling.simulator.behaviour.lose_post_answers = 1  # created at the system, the answer lost
    order_id = cancelling.create(fibre_order())
    assert "externalId" not in cancelling.activity(order_id, "reserve-port")
    [created] = cancelling.simulator.created("inventory")

    cancelling.cancel(order_id)
    cancelling.run_until(lambda: cancelling.state(order_id) == "cancelled")

    reserve = cancelling.activity(order_id, "reserve-port")
    assert reserve["externalId"] == created["id"]
    [sent] = cancelling.simulator.cancellations.values()
    assert sent.document["resourceOrder"]["id"] == created["id"]
    cancelling.clock.advance(minutes=30)
    cancelling.worker.run_until_idle()
    assert len(cancelling.simulator.created()) == 1  # its POST is not repeated


def test_a_system_that_refuses_to_cancel_holds_the_order_for_an_operator(cancelling: Cancelling) -> None:
    cancelling.slow("olt-port")
    cancelling.simulator.behaviour.refuse_cancel = ["olt-port"]
    order_id = cancelling.create(fibre_order())
    cancelling.run_until(lambda: "externalId" in cancelling.activity(order_id, "reserve-port"))
    preview = cancelling.impact(order_id)

    task = cancelling.cancel(order_id)
    cancelling.run_until(lambda: cancelling.state(order_id) == "held")

    [withdrawal] = cancelling.steps(order_id)
    assert withdrawal["state"] == "fallout"
    assert (
        "inventory could not cancel the resource order: olt-port cannot be cancelled" in withdrawal["reason"]
    )
    held = cancelling.task(task["id"])
    assert held["state"] == "inProgress"
    assert held["errorMessage"]["code"] == "CANCELLATION_HELD"
    assert f"/provtrack/v1/activity/{withdrawal['id']}" in held["errorMessage"]["message"]
    assert (
        cancelling.api.patch(
            f"/tmf-api/serviceOrdering/v4/serviceOrder/{order_id}",
            json={"state": "inProgress"},
            headers={"Content-Type": "application/merge-patch+json"},
        ).status_code
        == 409
    )

    cancelling.simulator.behaviour.refuse_cancel = []
    retried = cancelling.api.post(f"/provtrack/v1/activity/{withdrawal['id']}/retry")
    assert retried.status_code == 200, retried.text
    cancelling.run_until(lambda: cancelling.state(order_id) == "cancelled")

    assert cancelling.task(task["id"])["state"] == "done"
    assert len(cancelling.simulator.cancellations) == 2  # the refused one, and the one retried
    assert_outcome_matches(preview, cancelling.plan(order_id))


def test_a_done_activity_is_undone_after_what_depends_on_it_is_stopped(cancelling: Cancelling) -> None:
    cancelling.slow("olt-port-config")
    order_id = cancelling.create(fibre_order())
    cancelling.run_until(
        lambda: "externalId" in cancelling.activity(order_id, "configure-port"), step_seconds=10
    )
    assert cancelling.activity(order_id, "reserve-port")["state"] == "done"
    preview = cancelling.impact(order_id)

    cancelling.cancel(order_id)
    cancelling.run_until(lambda: cancelling.state(order_id) == "cancelled", step_seconds=10)

    assert [(e["name"], e["undoActivity"]) for e in preview["undo"]] == [("reserve-port", "release-port")]
    release = next(a for a in cancelling.steps(order_id) if a["name"] == "release-port")
    assert release["state"] == "done"
    released = [
        o for o in cancelling.simulator.created("inventory") if o["orderItem"][0]["action"] == "delete"
    ]
    assert [o["externalId"] for o in released] == [f"{release['id']}.1"]
    [sent] = cancelling.simulator.cancellations.values()
    assert (
        sent.document["resourceOrder"]["id"] == cancelling.activity(order_id, "configure-port")["externalId"]
    )
    assert_outcome_matches(preview, cancelling.plan(order_id))


def test_an_order_that_completed_before_its_cancellation_reached_the_system_is_undone(
    cancelling: Cancelling,
) -> None:
    cancelling.slow("olt-port-config")
    order_id = cancelling.create(fibre_order())  # reserve-port completes at once; polled every 10 s
    assert cancelling.activity(order_id, "reserve-port")["state"] == "inProgress"
    preview = cancelling.impact(order_id)

    task = cancelling.cancel(order_id)
    cancelling.run_until(lambda: cancelling.state(order_id) == "held")
    assert cancelling.task(task["id"])["errorMessage"]["code"] == "CANCELLATION_HELD"
    cancelling.run_until(lambda: cancelling.state(order_id) == "cancelled", step_seconds=10)

    [withdrawal] = [a for a in cancelling.steps(order_id) if "withdraws" in a]
    assert withdrawal["state"] == "skipped"
    assert (
        withdrawal["skipReason"]
        == "reserve-port completed before it could be cancelled: it is undone instead"
    )
    release = next(a for a in cancelling.steps(order_id) if a["name"] == "release-port")
    assert release["state"] == "done"
    assert [e["name"] for e in preview["stop"]] == ["reserve-port"]
    assert cancelling.task(task["id"])["state"] == "done"


def test_after_the_point_of_no_return_the_cancellation_is_denied_and_the_order_goes_on(
    cancelling: Cancelling,
) -> None:
    cancelling.slow("broadband-profile")
    order_id = cancelling.create(fibre_order())
    cancelling.run_until(
        lambda: cancelling.activity(order_id, "configure-port")["state"] == "done", step_seconds=10
    )
    preview = cancelling.impact(order_id)

    task = cancelling.cancel(order_id)

    configure = cancelling.activity(order_id, "configure-port")
    assert preview["cancellable"] is False
    assert preview["code"] == "POINT_OF_NO_RETURN"
    assert [e["activity"] for e in preview["pointOfNoReturn"]] == [configure["id"]]
    assert task["state"] == "terminatedWithError"
    assert task["errorMessage"]["code"] == "POINT_OF_NO_RETURN"
    assert task["errorMessage"]["message"] == preview["reason"]
    assert f"activity configure-port ({configure['id']})" in task["errorMessage"]["message"]
    assert cancelling.state(order_id) == "inProgress"
    assert cancelling.steps(order_id) == []
    assert cancelling.simulator.cancellations == {}


def test_a_requested_cancellation_date_is_honoured_by_a_timer(cancelling: Cancelling) -> None:
    cancelling.slow("olt-port")
    order_id = cancelling.create(fibre_order())
    cancelling.run_until(lambda: "externalId" in cancelling.activity(order_id, "reserve-port"))
    when = format_datetime(cancelling.clock.now.replace(hour=17))
    before = cancelling.impact(order_id)

    task = cancelling.cancel(order_id, requestedCancellationDate=when)
    cancelling.worker.run_until_idle()

    assert task["state"] == "acknowledged"
    assert cancelling.state(order_id) == "inProgress"
    assert cancelling.simulator.cancellations == {}
    second = cancelling.cancel(order_id)
    assert second["errorMessage"]["code"] == "CANCELLATION_UNDER_WAY"
    preview = cancelling.impact(order_id)
    assert preview["code"] == "CANCELLATION_UNDER_WAY"

    cancelling.clock.advance(hours=8)
    cancelling.run_until(lambda: cancelling.state(order_id) == "cancelled")

    done = cancelling.task(task["id"])
    assert done["state"] == "done"
    assert done["effectiveCancellationDate"] == "2026-11-27T17:00:00.000Z"
    assert len(cancelling.simulator.cancellations) == 1
    assert_outcome_matches(before, cancelling.plan(order_id))  # nothing moved in between


def test_an_activity_at_a_system_that_cannot_cancel_is_left_to_finish(
    cancelling: Cancelling,
) -> None:
    cancelling.slow("copper-jumper")
    order_id = cancelling.create(one_item("copper"))
    cancelling.run_until(lambda: "externalId" in cancelling.activity(order_id, "jumper"))
    preview = cancelling.impact(order_id)

    cancelling.cancel(order_id)
    cancelling.worker.run_until_idle()

    assert [(e["name"], e["how"]) for e in preview["stop"]] == [("jumper", "letFinish")]
    [waiting] = cancelling.steps(order_id)
    assert waiting["state"] == "blocked"
    assert cancelling.simulator.cancellations == {}
    assert cancelling.state(order_id) == "pendingCancellation"


def test_a_forged_cancel_task_notification_is_read_back_at_the_system_and_changes_nothing(
    cancelling: Cancelling,
) -> None:
    cancelling.slow("iptv-entitlement")
    cancelling.simulator.behaviour.cancel_delay = 3600  # the system keeps its cancel task acknowledged
    order_id = cancelling.create(one_item("tv"))
    cancelling.cancel(order_id)
    cancelling.run_until(lambda: "externalId" in cancelling.steps(order_id)[0])
    [withdrawal] = cancelling.steps(order_id)
    with cancelling.store.transaction(write=False) as tx:
        token = tx.access.listener_token("tmf652:activation")
    url = f"/provtrack/v1/tmf652/activation/{token}/listener/cancelResourceOrderStateChangeEvent"

    def forged(task_id: str) -> dict[str, Any]:
        task = {"id": task_id, "state": "done"}
        return {"eventType": "CancelResourceOrderStateChangeEvent", "event": {"cancelResourceOrder": task}}

    assert cancelling.api.post(url, json=forged(withdrawal["externalId"])).status_code == 204
    assert_tmf_error(cancelling.api.post(url, json=forged("no-such-task")), 422, "NOT_CONFIRMED")

    cancelling.worker.run_until_idle()
    assert cancelling.state(order_id) == "pendingCancellation"
    assert cancelling.steps(order_id)[0]["state"] == "inProgress"


def test_a_cancel_task_that_ended_while_no_subscription_existed_is_read_once_one_is_made(
    cancelling: Cancelling,
) -> None:
    cancelling.slow("iptv-entitlement")
    cancelling.simulator.behaviour.cancel_delay = 3600
    order_id = cancelling.create(one_item("tv"))
    cancelling.cancel(order_id)
    cancelling.run_until(lambda: "externalId" in cancelling.steps(order_id)[0])
    cancelling.simulator.subscribers["activation"].clear()  # the system lost our subscription
    [task] = cancelling.simulator.cancellations.values()
    task.due = 0.0  # ... and then carried the cancellation out, telling nobody
    cancelling.simulator.orders[("activation", task.document["resourceOrder"]["id"])].cancelled_at = 0.0
    cancelling.worker.run_until_idle()
    assert cancelling.state(order_id) == "pendingCancellation"

    now = cancelling.clock()
    hub = DownstreamSubscription("activation", "hub-2", "http://provtrack.invalid/cb", "http://sim.invalid")
    kind = ActivityKind.RESOURCE_ORDER
    read_again = hub_subscriptions.record_subscription(
        cancelling.store, hub, owner="activation", kind=kind, poll_job="provisioning.poll", now=now
    )

    # Each read by its own job, due now: the withdrawal's cancel task, and the order it stops.
    [step] = cancelling.steps(order_id)
    stopped = cancelling.activity(order_id, "entitle-tv")
    due = format_datetime(now)
    [follow] = cancelling.store.pending_jobs(kind="cancellation.followWithdrawal")
    polls = cancelling.store.pending_jobs(kind="provisioning.poll")
    assert read_again == 2
    assert (follow["key"], follow["due_at"]) == (step["id"], due)
    assert [(p["key"], p["due_at"]) for p in polls] == [(stopped["id"], due)]
    cancelling.run_until(lambda: cancelling.state(order_id) == "cancelled")  # the clock stands still
    assert cancelling.steps(order_id)[0]["state"] == "done"
    assert cancelling.clock() == now
