"""Cancelling an order whose work is with people or partners, over real HTTP: an open manual task
leaves its work queue; a partner order under way is cancelled at the partner (TMF641
cancelServiceOrder), followed like the partner order itself, never sent twice blindly, and a partner
that refuses holds the order for an operator. Each time the preview is what then happens."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.cancellation_harness import assert_outcome_matches
from tests.integration.coordination_harness import (
    Coordination,
    coordination,
    item,
    order,
    partner_behaviour,
)

__all__ = ["coordination", "partner_behaviour"]
DAY = 86400.0
OPEN_TASKS = "queued,assigned,inProgress,waitingForInformation"
ASKED = {"informationRequired": [{"name": "accessCode", "description": "the building's door code"}]}
# The actions that bring a new task to each open state.
BEFORE: dict[str, list[tuple[str, dict[str, Any]]]] = {
    "queued": [],
    "assigned": [("claim", {})],
    "inProgress": [("claim", {}), ("start", {})],
    "waitingForInformation": [("claim", {}), ("start", {}), ("requestInformation", ASKED)],
}


def _withdrawal(c: Coordination, order_id: str) -> dict[str, Any]:
    [step] = [a for a in c.plan(order_id)["activity"] if "withdraws" in a]
    return step


def _access_under_way(c: Coordination) -> str:
    """An off-net access ordered from wholesale-access (which notifies by its hub), acknowledged
    there and under way for days."""
    c.partners.behaviour.day_seconds = DAY
    order_id = c.create(order(item("access")))
    c.worker.run_until_idle()  # planned, sent
    c.run_until(lambda: "externalId" in c.activity(order_id, "access"))
    return order_id


def _port_in_under_way(c: Coordination) -> str:
    """A port-in ordered from donor, which does not notify: provtrack polls it every 10 minutes."""
    c.partners.behaviour.day_seconds = DAY
    order_id = c.create(order(item("port-in", characteristics={"msisdn": "+33612345678"})))
    c.worker.run_until_idle()  # planned, sent
    c.run_until(lambda: "externalId" in c.activity(order_id, "port-in"))
    return order_id


# --- manual tasks ----------------------------------------------------------------------------------


@pytest.mark.parametrize("state", BEFORE)
def test_an_open_task_leaves_its_queue_when_its_order_is_cancelled(
    coordination: Coordination, state: str
) -> None:
    c = coordination
    order_id = c.create(order(item("visit")))
    c.run_until(lambda: len(c.tasks(serviceOrderId=order_id)) == 1)
    task_id = c.task_of(order_id)["id"]
    for action, body in BEFORE[state]:
        assert c.act(task_id, action, **body).status_code == 200
    assert c.api.get(f"/provtrack/v1/task/{task_id}").json()["state"] == state
    preview = c.impact(order_id)

    cancelled = c.cancel(order_id)

    assert [(e["name"], e["how"]) for e in preview["stop"]] == [("install", "withdraw")]
    assert cancelled["state"] == "done"
    assert c.state(order_id) == "cancelled"
    assert c.api.get(f"/provtrack/v1/task/{task_id}").json()["state"] == "withdrawn"
    assert c.api.get("/provtrack/v1/workGroup/techs/queue").json() == []
    assert c.tasks(workGroup="techs", state=OPEN_TASKS) == []
    late = c.act(task_id, "complete", checklist={"ontSerial": "SN-1"})
    assert late.status_code == 409, late.text
    assert c.activity(order_id, "install")["state"] == "cancelled"
    assert_outcome_matches(preview, c.plan(order_id))


def test_a_task_done_at_the_point_of_no_return_denies_the_cancellation(coordination: Coordination) -> None:
    c = coordination
    order_id = c.create(order(item("fitting")))
    c.run_until(lambda: len(c.tasks(serviceOrderId=order_id)) == 1)
    c.work(c.task_of(order_id)["id"])  # fit: claimed, started, completed
    c.run_until(lambda: len(c.tasks(workGroup="noc")) == 1)
    [testing] = c.tasks(workGroup="noc")
    preview = c.impact(order_id)

    denied = c.cancel(order_id)

    assert (preview["cancellable"], preview["code"]) == (False, "POINT_OF_NO_RETURN")
    assert [e["name"] for e in preview["pointOfNoReturn"]] == ["fit"]
    assert (denied["state"], denied["errorMessage"]["code"]) == ("terminatedWithError", "POINT_OF_NO_RETURN")
    assert c.state(order_id) == "inProgress"
    assert c.api.get(f"/provtrack/v1/task/{testing['id']}").json()["state"] == "queued"


# --- partner orders --------------------------------------------------------------------------------


def test_a_partner_order_under_way_is_cancelled_at_the_partner(coordination: Coordination) -> None:
    c = coordination
    order_id = _access_under_way(c)
    preview = c.impact(order_id)

    task = c.cancel(order_id)
    c.run_until(lambda: c.state(order_id) == "cancelled")  # the clock never moves

    access = c.activity(order_id, "access")
    assert [(e["name"], e["how"], e["owner"]) for e in preview["stop"]] == [
        ("access", "cancelServiceOrder", "wholesale-access")
    ]
    [sent] = c.partners.cancellations.values()
    assert sent.document["serviceOrder"]["id"] == access["externalId"]
    assert sent.document["cancellationReason"].startswith(f"service order {order_id} is cancelled")
    [partner_order] = c.partners.orders.values()
    assert partner_order.cancelled_after is not None
    assert access["state"] == "cancelled"
    withdrawal = _withdrawal(c, order_id)
    assert (withdrawal["name"], withdrawal["kind"], withdrawal["owner"], withdrawal["state"]) == (
        "cancel-access",
        "partnerOrder",
        "wholesale-access",
        "done",
    )
    assert withdrawal["externalId"] == sent.document["id"]
    assert withdrawal["characteristics"] == {"serviceOrder": access["externalId"]}
    assert c.cancel_task(task["id"])["state"] == "done"
    assert_outcome_matches(preview, c.plan(order_id))


def test_a_cancellation_the_partner_carries_out_later_is_followed_by_its_notifications(
    coordination: Coordination,
) -> None:
    c = coordination
    order_id = _access_under_way(c)
    c.partners.behaviour.cancel_delay = 0.05  # the task answers acknowledged; done and announced later

    c.cancel(order_id)
    c.worker.run_until_idle()
    assert _withdrawal(c, order_id)["externalState"] == "acknowledged"
    c.run_until(lambda: c.state(order_id) == "cancelled")  # the clock never moves: no poll comes due

    assert _withdrawal(c, order_id)["state"] == "done"
    assert c.activity(order_id, "access")["state"] == "cancelled"
    assert c.partners.notifications_sent >= 2  # the order cancelled, the cancel task done


def test_a_cancellation_a_partner_does_not_announce_is_followed_by_polling(
    coordination: Coordination,
) -> None:
    c = coordination
    order_id = _port_in_under_way(c)
    c.partners.behaviour.cancel_delay = 60.0  # on the partner's clock

    c.cancel(order_id)
    c.worker.run_until_idle()
    assert c.state(order_id) == "pendingCancellation"
    c.partner_time[0] = 120.0  # done at the partner, which tells nobody
    c.clock.advance(minutes=9)
    c.worker.run_until_idle()
    assert c.state(order_id) == "pendingCancellation"
    c.run_until(lambda: c.state(order_id) == "cancelled", step_seconds=60)

    withdrawal = _withdrawal(c, order_id)
    assert withdrawal["state"] == "done"
    assert withdrawal["externalId"] == next(iter(c.partners.cancellations.values())).document["id"]


def test_a_cancel_whose_answer_was_lost_is_looked_up_at_the_partner_not_sent_again(
    coordination: Coordination,
) -> None:
    c = coordination
    order_id = _port_in_under_way(c)
    c.partners.behaviour.lose_cancel_answers = 1  # carried out, answered 500

    c.cancel(order_id)
    c.worker.run_until_idle()
    [withdraw] = c.store.pending_jobs(kind="cancellation.withdraw")
    assert "HTTP 500" in withdraw["last_error"]
    c.run_until(lambda: c.state(order_id) == "cancelled", step_seconds=5)

    assert c.partners.cancel_desk.posts_received == 1
    [sent] = c.partners.cancellations.values()
    assert _withdrawal(c, order_id)["externalId"] == sent.document["id"]


def test_a_partner_order_never_sent_is_looked_up_and_nothing_cancelled(coordination: Coordination) -> None:
    c = coordination
    c.partners.behaviour.day_seconds = DAY
    c.partners.behaviour.fail_posts = 1  # the first POST fails: its send waits for a retry
    order_id = c.create(order(item("access")))
    c.worker.run_until_idle()
    assert "externalId" not in c.activity(order_id, "access")

    c.cancel(order_id)
    c.run_until(lambda: c.state(order_id) == "cancelled")
    assert c.store.pending_jobs(kind="partners.dispatch") == []  # its send was dropped
    c.clock.advance(minutes=30)
    c.worker.run_until_idle()

    assert _withdrawal(c, order_id)["reason"] == "wholesale-access has no order for it: it was never sent"
    assert c.partners.created() == []
    assert c.partners.cancellations == {}


REFUSALS = {
    "its cancel task terminatedWithError": (
        {"refuse_cancel": ["wholesale-access"]},
        "wholesale-access could not cancel the partner order: wholesale-access cannot cancel service order",
    ),
    "HTTP 409": (
        {"refuse_cancel": ["wholesale-access"], "refuse_cancel_status": 409},
        "wholesale-access refused to cancel the partner order (HTTP 409): wholesale-access does not cancel",
    ),
    "terminatedWithError later, announced": (
        {"refuse_cancel": ["wholesale-access"], "cancel_delay": 0.05},
        "wholesale-access could not cancel the partner order: wholesale-access cannot cancel service order",
    ),
}


@pytest.mark.parametrize("refusal", REFUSALS)
def test_a_partner_that_refuses_to_cancel_holds_the_order_until_an_operator_skips_the_step(
    coordination: Coordination, refusal: str
) -> None:
    c = coordination
    order_id = _access_under_way(c)
    behaviour, reason = REFUSALS[refusal]
    for name, value in behaviour.items():
        setattr(c.partners.behaviour, name, value)
    preview = c.impact(order_id)

    task = c.cancel(order_id)
    c.run_until(lambda: c.state(order_id) == "held")  # the clock never moves: no poll comes due

    withdrawal = _withdrawal(c, order_id)
    assert withdrawal["state"] == "fallout"
    assert withdrawal["reason"].startswith(reason)
    held = c.cancel_task(task["id"])
    assert (held["state"], held["errorMessage"]["code"]) == ("inProgress", "CANCELLATION_HELD")
    assert f"/provtrack/v1/activity/{withdrawal['id']}" in held["errorMessage"]["message"]

    skipped = c.api.post(
        f"/provtrack/v1/activity/{withdrawal['id']}/skip",
        json={"reason": "cancelled by phone with the partner"},
    )
    assert skipped.status_code == 200, skipped.text
    c.run_until(lambda: c.state(order_id) == "cancelled")

    assert c.cancel_task(task["id"])["state"] == "done"
    assert c.activity(order_id, "access")["state"] == "cancelled"
    assert c.store.pending_jobs(kind="partners.poll") == []  # no longer followed
    [partner_order] = c.partners.orders.values()
    assert partner_order.cancelled_after is None  # stopped by other means: not provtrack's to say
    assert_outcome_matches(preview, c.plan(order_id))
