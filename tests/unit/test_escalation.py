"""Escalation in the domain: the facts rules see, exact flip instants, alerts on the aggregate,
and the dry run."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from provtrack.adapters.policy_file import parse_policy_text
from provtrack.domain.clock import parse_datetime
from provtrack.domain.escalation import Escalation, next_flip, order_facts, rule_matches
from provtrack.domain.jeopardy import TICK
from provtrack.domain.model import EventType, ServiceOrder
from provtrack.domain.states import OrderState as S
from provtrack.services.escalation import OrderSnapshot, simulate
from tests.unit.builders import ACTOR, PROPERTY, T0, accepted_order, at

NOW = parse_datetime(T0)

POLICY = parse_policy_text(
    """
contacts:
  desk: {webhook: "https://desk.example.net/hook", email: desk@example.net}
rules:
  - name: held-too-long
    when: order.state == "held" && order.timeInState > duration("PT4H")
    ladder:
      - after: PT0S
        actions: [{notify: desk}]
  - name: business-late
    when: order.level == "late" && order.category == "business"
    ladder:
      - after: PT0S
        actions: [{note: "late"}]
      - after: PT2H
        actions: [{raisePriority: 1}]
  - name: vip
    when: order.relatedParty.customer == "ACME" && order.characteristic.bandwidth >= 1000
    ladder:
      - actions: [{note: "vip"}]
""",
    source="test.yaml",
)
RULES = {r.name: r for r in POLICY.rules}


def business_order(**fields: object) -> ServiceOrder:
    return accepted_order(category="business", **fields)


def test_facts_name_the_parties_characteristics_and_specifications() -> None:
    order = accepted_order(
        relatedParty=[{"id": "c-1", "name": "ACME", "role": "customer"}],
        category="business",
        priority="4",
    )
    order.items[0].attributes["service"] = {
        "serviceSpecification": {"id": "fibre"},
        "serviceCharacteristic": [{"name": "bandwidth", "value": 1000}],
    }
    facts = order_facts(order, level="atRisk", now=NOW + timedelta(hours=1), state_since=NOW)
    assert facts["relatedParty"] == {"customer": "ACME"}
    assert facts["characteristic"] == {"bandwidth": 1000}
    assert facts["serviceSpecification"] == ["fibre"]
    assert (facts["timeInState"], facts["age"], facts["priority"]) == (3600.0, 3600.0, "4")
    assert rule_matches(RULES["vip"], facts)


def test_a_rule_about_a_missing_fact_does_not_match() -> None:
    facts = order_facts(accepted_order(), level="onTrack", now=NOW, state_since=NOW)
    assert not rule_matches(RULES["vip"], facts)


def test_a_held_too_long_rule_flips_one_tick_after_its_duration() -> None:
    order = accepted_order()
    order.move_to(S.IN_PROGRESS, now=T0, actor=ACTOR)
    order.move_to(S.HELD, now=T0, actor=ACTOR)
    facts = order_facts(order, level="onTrack", now=NOW, state_since=NOW)
    flip = next_flip(POLICY.rules, facts, now=NOW, state_since=NOW, order_date=NOW)
    assert flip == NOW + timedelta(hours=4) + TICK


def test_no_timer_for_a_time_rule_that_cannot_match_in_this_state() -> None:
    facts = order_facts(accepted_order(), level="onTrack", now=NOW, state_since=NOW)
    assert next_flip(POLICY.rules, facts, now=NOW, state_since=NOW, order_date=NOW) is None


@PROPERTY
@given(minutes=st.integers(min_value=0, max_value=24 * 60), held_for=st.integers(min_value=0, max_value=600))
def test_the_flip_is_exactly_when_the_rule_starts_matching(minutes: int, held_for: int) -> None:
    order = accepted_order()
    order.move_to(S.IN_PROGRESS, now=T0, actor=ACTOR)
    order.move_to(S.HELD, now=T0, actor=ACTOR)
    since = NOW + timedelta(minutes=minutes)
    now = since + timedelta(minutes=held_for)
    rule = RULES["held-too-long"]
    facts = order_facts(order, level="onTrack", now=now, state_since=since)
    flip = next_flip([rule], facts, now=now, state_since=since, order_date=NOW)
    if rule_matches(rule, facts):
        assert flip is None
        return
    assert flip is not None
    before = order_facts(order, level="onTrack", now=flip - TICK, state_since=since)
    after = order_facts(order, level="onTrack", now=flip, state_since=since)
    assert not rule_matches(rule, before)
    assert rule_matches(rule, after)


def test_a_level_change_appends_an_alert_with_its_event_and_the_same_level_does_not() -> None:
    order = accepted_order()
    assert order.jeopardy_level == "onTrack"
    assert order.record_jeopardy("atRisk", name="order at risk", message="why", now=at(1), actor=ACTOR)
    assert not order.record_jeopardy("atRisk", name="order at risk", message="why", now=at(2), actor=ACTOR)
    assert order.record_jeopardy("onTrack", name="back on track", message="ok", now=at(3), actor=ACTOR)
    assert [a["jeopardyType"] for a in order.jeopardy_alerts] == ["atRisk", "onTrack"]
    assert order.to_document()["jeopardyAlert"][0]["alertDate"] == at(1)
    jeopardy_events = [e for e in order.events if e.event_type == EventType.ORDER_JEOPARDY]
    assert len(jeopardy_events) == 2


def test_entering_pending_asks_for_information() -> None:
    order = accepted_order()
    order.move_to(S.IN_PROGRESS, now=at(1), actor=ACTOR)
    order.move_to(S.PENDING, now=at(2), actor=ACTOR)
    assert [e.event_type for e in order.events][-2:] == [
        EventType.ORDER_STATE_CHANGE,
        EventType.ORDER_INFORMATION_REQUIRED,
    ]


def test_simulate_lists_due_steps_and_who_is_told_without_touching_the_orders() -> None:
    late = business_order()
    late.record_jeopardy("late", name="late", message="", now=T0, actor=ACTOR)
    climbing = business_order()
    climbing.id = "so-2"
    climbing.record_jeopardy("late", name="late", message="", now=T0, actor=ACTOR)
    acknowledged = business_order()
    acknowledged.id = "so-3"
    acknowledged.record_jeopardy("late", name="late", message="", now=T0, actor=ACTOR)
    held = accepted_order()
    held.id = "so-4"
    now = NOW + timedelta(hours=5)
    snapshots = [
        OrderSnapshot(late, NOW, ()),
        OrderSnapshot(
            climbing, NOW, [Escalation("so-2", "business-late", NOW - timedelta(hours=3), fired=1)]
        ),
        OrderSnapshot(
            acknowledged,
            NOW,
            [Escalation("so-3", "business-late", NOW, fired=1, acknowledged_at=T0, acknowledged_by="ann")],
        ),
        OrderSnapshot(held, NOW, ()),
    ]
    held.state = S.HELD
    fired = [(f.order_id, f.rule, f.step) for f in simulate(POLICY, [snapshots], now=now)]
    assert fired == [
        ("so-1", "business-late", 1),  # a new match starts its ladder now: only the first step is due
        ("so-2", "business-late", 2),
        ("so-4", "held-too-long", 1),
    ]
    [notify] = [f for f in simulate(POLICY, [snapshots], now=now) if f.rule == "held-too-long"]
    assert notify.recipients == ("desk (https://desk.example.net/hook, desk@example.net)",)
    assert late.jeopardy_alerts[-1]["jeopardyType"] == "late"  # unchanged
