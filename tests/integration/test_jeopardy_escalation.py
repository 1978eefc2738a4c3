"""Escalation ladders and status escalation with an injected clock: steps at their exact instants."""

from __future__ import annotations

import orjson

from provtrack.adapters.policy_file import parse_policy_text
from provtrack.domain.clock import format_datetime
from provtrack.services import orders
from tests.integration.jeopardy_harness import Harness, harness, hours

__all__ = ["harness"]

MS = hours(1 / 3_600_000)
LADDER = "jeopardy-ladder"


def steps(h: Harness, order_id: str, rule: str = LADDER) -> list[int]:
    return [c.new["step"] for c in h.timeline(order_id) if c.attribute == "step" and rule in c.subject]


def test_a_three_level_ladder_fires_in_order_and_stops_on_acknowledge(harness: Harness) -> None:
    h = harness
    # A business order is committed within 4 h; its plan needs 3 h, so an hour of overrun is jeopardy.
    order_id = h.create(category="business")
    crossing = h.t0 + hours(2) + MS
    h.at(crossing)
    assert h.level(order_id) == "inJeopardy"
    assert steps(h, order_id) == [1]
    assert h.order(order_id).attributes["note"][-1]["text"].startswith("Escalation level 1")

    h.at(crossing + hours(1) - MS)
    assert steps(h, order_id) == [1]
    h.at(crossing + hours(1))
    assert steps(h, order_id) == [1, 2]
    assert h.order(order_id).attributes["priority"] == "1"
    assigned = [c.new for c in h.timeline(order_id) if c.attribute == "assignedTo"]
    assert assigned == [{"workGroup": "provisioning-leads"}]

    view = h.api.get(f"/provtrack/v1/serviceOrder/{order_id}/jeopardy").json()
    assert view["level"] == "inJeopardy"
    assert view["commitment"] == format_datetime(h.t0 + hours(4))
    [active] = view["escalation"]
    assert active["stepsFired"] == 2
    assert active["nextStepAt"] == format_datetime(crossing + hours(2))

    acknowledged = h.api.post(
        f"/provtrack/v1/serviceOrder/{order_id}/escalation/{LADDER}/acknowledge",
        headers={"x-provtrack-user": "coordinator-ann"},
    )
    assert acknowledged.status_code == 200, acknowledged.text
    assert acknowledged.json()["acknowledgedBy"] == "test-admin:coordinator-ann"
    h.at(crossing + hours(5))
    assert steps(h, order_id) == [1, 2]
    assert h.level(order_id) == "late"  # jeopardy still climbs; the escalation does not
    assert h.sender.posts == []
    assert "acknowledged" in [c.attribute for c in h.timeline(order_id)]


def test_an_unacknowledged_ladder_reaches_its_last_step_and_notifies_the_contact(harness: Harness) -> None:
    h = harness
    order_id = h.create(category="business")
    crossing = h.t0 + hours(2) + MS
    h.at(crossing)
    h.at(crossing + hours(1))
    h.at(crossing + hours(2))
    assert steps(h, order_id) == [1, 2, 3]
    [(url, body, _headers)] = h.sender.posts
    assert url == "http://127.0.0.1:9/hooks/desk"
    sent = orjson.loads(body)
    assert (sent["rule"], sent["step"], sent["serviceOrder"]["id"]) == (LADDER, 3, order_id)
    [(to, subject, text)] = h.mailer.sent
    assert to == "desk@example.net"
    assert subject == "[provtrack] jeopardy-ladder step 3/3: service order BSS-7 is late"
    assert "the commitment 2026-11-27 13:00 UTC has passed" in text
    assert h.events(order_id).count("ServiceOrderJeopardyEvent") >= 4  # two alerts, three steps


def test_a_ladder_stops_when_its_condition_clears(harness: Harness) -> None:
    h = harness
    order_id = h.create(category="business", requestedCompletionDate=format_datetime(h.t0 + hours(4)))
    h.at(h.t0 + hours(2) + MS)
    assert steps(h, order_id) == [1]
    patched = {"requestedCompletionDate": format_datetime(h.t0 + hours(48))}
    orders.patch_order(h.store, order_id, patched, json_patch=False, ctx=h.ctx())
    h.run()
    h.complete(order_id, "reserve-port")  # any change of the plan refreshes jeopardy
    assert h.level(order_id) == "onTrack"
    assert [c.attribute for c in h.timeline(order_id)][-1] == "cleared"
    assert h.jobs("escalation.step") == []


def test_a_pending_order_asks_for_information_escalates_after_three_days_and_is_auto_cancelled(
    harness: Harness,
) -> None:
    h = harness
    order_id = h.create()
    orders.patch_order(h.store, order_id, {"state": "pending"}, json_patch=False, ctx=h.ctx("coordinator"))
    assert "ServiceOrderInformationRequiredEvent" in h.events(order_id)
    h.run()

    three_days = h.t0 + hours(72)
    h.at(three_days)
    assert steps(h, order_id, "pending-too-long") == []
    h.at(three_days + MS)  # timeInState > P3D from one tick after three days
    assert steps(h, order_id, "pending-too-long") == [1]

    limit = h.t0 + hours(14 * 24)
    h.at(limit - MS)
    assert h.order(order_id).state.value == "pending"
    h.at(limit)
    order = h.order(order_id)
    assert order.state.value == "cancelled"
    assert "never came" in order.attributes["note"][-1]["text"]
    assert h.jobs("escalation.autoCancel") == []
    assert h.jobs("jeopardy.check") == []


def test_an_order_that_leaves_pending_is_not_auto_cancelled(harness: Harness) -> None:
    h = harness
    order_id = h.create()
    orders.patch_order(h.store, order_id, {"state": "pending"}, json_patch=False, ctx=h.ctx())
    h.clock.advance(hours=1)
    orders.patch_order(h.store, order_id, {"state": "inProgress"}, json_patch=False, ctx=h.ctx())
    assert h.jobs("escalation.autoCancel") == []
    h.at(h.t0 + hours(15 * 24))
    assert h.order(order_id).state.value != "cancelled"


def test_acknowledging_an_escalation_that_is_not_active_is_a_404(harness: Harness) -> None:
    h = harness
    order_id = h.create()
    response = h.api.post(f"/provtrack/v1/serviceOrder/{order_id}/escalation/{LADDER}/acknowledge")
    assert response.status_code == 404
    assert response.json()["code"] == "NOT_FOUND"


def test_a_hold_step_puts_the_order_on_hold_and_a_held_too_long_rule_takes_over(harness: Harness) -> None:
    h = harness
    h.policy = parse_policy_text(
        """
rules:
  - name: hold-when-late
    when: order.level == "late"
    ladder:
      - actions: [{hold: "Held for a management decision"}]
  - name: held-too-long
    when: order.state == "held" && order.timeInState > duration("PT4H")
    ladder:
      - actions: [{raisePriority: 0}]
""",
        source="hold.yaml",
    )
    due = h.t0 + hours(4)
    order_id = h.create(requestedCompletionDate=format_datetime(due))
    h.at(due)
    order = h.order(order_id)
    assert (order.jeopardy_level, order.state.value) == ("late", "held")
    assert order.attributes["note"][-1]["text"] == "Held for a management decision"
    h.at(due + hours(4))
    assert "priority" not in h.order(order_id).attributes or h.order(order_id).attributes["priority"] != "0"
    h.at(due + hours(4) + MS)
    assert h.order(order_id).attributes["priority"] == "0"
