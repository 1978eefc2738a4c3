"""Partner orders over TMF641: sent once, followed by the partner's notifications or, when its hub
cannot be reached, by polling; the partner's states, milestones, jeopardy and date on our order."""

from __future__ import annotations

from datetime import timedelta

import pytest

from provtrack.domain.clock import format_datetime
from tests.integration.coordination_harness import (
    Coordination,
    coordination,
    instant_partners,
    item,
    order,
    partner_behaviour,
)

__all__ = ["coordination", "partner_behaviour"]
DAY = 86400.0


def test_a_partner_order_is_followed_by_its_notifications(coordination: Coordination) -> None:
    """The clock never moves: the safety poll (every 10 minutes) never comes due."""
    c = coordination
    c.partners.behaviour.day_seconds = 0.01  # its steps come in real time; its GET shows what it announced
    order_id = c.create(order(item("access")))

    c.run_until(lambda: c.state(order_id) == "completed")

    [partner_order] = c.partners.created("wholesale-access")
    activity = c.activity(order_id, "access")
    assert activity["externalId"] == partner_order["id"]
    assert partner_order["externalId"] == f"{activity['id']}.1"
    assert c.partners.posts_received == 1
    assert c.partners.notifications_sent >= 3  # inProgress, milestones, completed
    milestones = [m["name"] for m in c.order(order_id)["milestone"]]
    assert milestones[:3] == ["access: orderAccepted", "access: circuitDesigned", "access: circuitHandedOver"]


def test_starting_again_keeps_the_one_subscription_at_the_partners_hub(coordination: Coordination) -> None:
    c = coordination
    first = dict(c.partners.subscribers["wholesale-access"])
    assert len(first) == 1
    for _ in range(3):  # what every start of serve or worker does
        c.assembly.start()
        c.worker.run_until_idle()
    assert c.partners.subscribers["wholesale-access"] == first

    c.partners.subscribers["wholesale-access"].clear()  # the partner lost it
    c.assembly.start()
    c.worker.run_until_idle()
    assert len(c.partners.subscribers["wholesale-access"]) == 1


@pytest.mark.parametrize("partner_behaviour", [instant_partners(hub_unreachable=True)], indirect=True)
def test_a_partner_order_is_followed_by_polling_when_the_partners_hub_is_unreachable(
    coordination: Coordination,
) -> None:
    c = coordination
    [subscription] = [
        j for j in c.store.pending_jobs(kind="partners.subscribe") if j["key"] == "wholesale-access"
    ]
    assert "HTTP 503" in subscription["last_error"]
    c.partners.behaviour.day_seconds = DAY
    order_id = c.create(order(item("access")))
    c.worker.run_until_idle()
    assert c.activity(order_id, "access")["externalState"] == "acknowledged"

    c.partner_time[0] = 11 * DAY  # done at the partner, which cannot tell anyone
    c.clock.advance(minutes=9)
    c.worker.run_until_idle()
    assert c.state(order_id) == "inProgress"
    c.run_until(lambda: c.state(order_id) == "completed", step_seconds=60)

    assert c.partners.notifications_sent == 0
    assert c.activity(order_id, "access")["externalState"] == "completed"


def test_the_partners_states_milestones_jeopardy_and_date_show_on_our_order(
    coordination: Coordination,
) -> None:
    c = coordination
    b = c.partners.behaviour
    b.day_seconds, b.hold_rate, b.jeopardy_rate, b.hub_unreachable = DAY, 1.0, 1.0, True  # read by polls
    start = c.clock.now
    order_id = c.create(order(item("access")))
    c.worker.run_until_idle()
    assert c.order(order_id)["expectedCompletionDate"] == format_datetime(start + timedelta(days=10))

    def at_partner_day(day: float) -> None:
        c.partner_time[0] = day * DAY
        c.clock.now = start + timedelta(days=day)
        c.worker.run_until_idle()

    at_partner_day(2.5)  # held for a site survey
    held = c.activity(order_id, "access")
    assert (held["state"], held["externalState"], held["reason"]) == (
        "blocked",
        "held",
        "waiting for a site survey",
    )

    at_partner_day(6.5)  # a jeopardy with a later date: ours follows
    resumed = c.order(order_id)
    assert c.activity(order_id, "access")["state"] == "inProgress"
    assert resumed["expectedCompletionDate"] == format_datetime(start + timedelta(days=13))
    jeopardy = next(m for m in resumed["milestone"] if m["status"].startswith("partnerJeopardy"))
    assert (jeopardy["name"], jeopardy["message"]) == ("access: civil works delayed", "civil works delayed")
    assert resumed["jeopardyAlert"][-1]["jeopardyType"] == "inJeopardy"  # committed within 10 days

    at_partner_day(13)
    assert c.state(order_id) == "completed"


@pytest.mark.parametrize("partner_behaviour", [instant_partners(failure_rate=1.0)], indirect=True)
def test_a_partner_order_that_fails_becomes_fallout_on_our_order(coordination: Coordination) -> None:
    c = coordination
    order_id = c.create(order(item("port-in", characteristics={"msisdn": "+33612345678"})))

    c.run_until(lambda: c.state(order_id) == "held")

    activity = c.activity(order_id, "port-in")
    assert activity["state"] == "fallout"
    assert activity["reason"] == "donor reports the partner order failed: the partner could not deliver"
    error = c.order(order_id)["errorMessage"][-1]
    assert error["code"] == "ACTIVITY_FAILED"
    assert "the partner could not deliver" in error["message"]
    [sent] = c.partners.created("donor")
    assert sent["serviceOrderItem"][0]["service"]["serviceCharacteristic"] == [
        {"name": "msisdn", "value": "+33612345678"}
    ]


def test_a_send_whose_outcome_is_unknown_is_looked_up_before_it_is_sent_again(
    coordination: Coordination,
) -> None:
    c = coordination
    c.partners.behaviour.fail_after_create = 1  # the first POST creates the order, then answers 503
    order_id = c.create(order(item("access")))
    c.worker.run_until_idle()
    [dispatch] = c.store.pending_jobs(kind="partners.dispatch")
    assert "HTTP 503" in dispatch["last_error"]

    c.run_until(lambda: c.activity(order_id, "access").get("externalId") is not None, step_seconds=5)

    [created] = c.partners.created("wholesale-access")
    assert c.activity(order_id, "access")["externalId"] == created["id"]
    assert c.partners.posts_received == 1
    assert c.partners.lookups == 2


def test_a_partner_that_wants_credentials_gets_them_from_the_environment(
    coordination: Coordination, monkeypatch: pytest.MonkeyPatch
) -> None:
    c = coordination
    monkeypatch.delenv("PROVTRACK_TEST_LOGISTICS_TOKEN")
    order_id = c.create(order(item("fibre")))
    c.worker.run_until_idle()
    [dispatch] = c.store.pending_jobs(kind="partners.dispatch")
    assert "PROVTRACK_TEST_LOGISTICS_TOKEN" in dispatch["last_error"]
    assert c.partners.posts_received == 0

    monkeypatch.setenv("PROVTRACK_TEST_LOGISTICS_TOKEN", "s3cret")
    c.run_until(lambda: bool(c.tasks(serviceOrderId=order_id)), step_seconds=5)
    assert c.partners.posts_received == 1


def test_partner_orders_are_read_at_once_when_a_new_subscription_is_made(coordination: Coordination) -> None:
    c = coordination
    c.partners.subscribers["wholesale-access"].clear()  # the partner lost our subscription
    c.partners.behaviour.day_seconds = DAY
    order_id = c.create(order(item("access")))
    c.worker.run_until_idle()
    assert c.activity(order_id, "access")["externalState"] == "acknowledged"
    c.partner_time[0] = 11 * DAY  # done at the partner, which tells nobody
    c.worker.run_until_idle()
    assert c.state(order_id) == "inProgress"

    c.assembly.start()  # as every start: the subscription is made again, and the order read at once
    c.run_until(lambda: c.state(order_id) == "completed")  # the clock stands still: no safety poll

    assert len(c.partners.subscribers["wholesale-access"]) == 1
