"""Reading an escalation policy: what it means, and problems reported with their lines."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from provtrack.adapters.policy_file import load_policy, parse_policy_text
from provtrack.domain.policy import InvalidPolicy

ORDERED = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


def test_the_demo_policy_is_valid_and_reads_as_written() -> None:
    policy = load_policy("demo")
    assert [r.name for r in policy.rules] == [
        "business-order-in-jeopardy",
        "residential-order-late",
        "held-too-long",
        "pending-information",
    ]
    assert policy.thresholds.overrun == 0.25
    assert policy.thresholds.margin == timedelta(hours=4)
    assert policy.pending_auto_cancel == timedelta(days=14)
    ladder = policy.rules[0].ladder
    assert [s.after for s in ladder] == [timedelta(0), timedelta(hours=2), timedelta(hours=8)]
    assert [a.kind for a in ladder[1].actions] == ["notify", "raisePriority", "assign"]


def test_the_commitment_default_is_the_first_entry_that_matches() -> None:
    policy = load_policy("demo")
    urgent = {"priority": "1", "category": "business"}
    business = {"priority": "4", "category": "business"}
    residential = {"priority": "4", "category": "residential"}
    assert policy.commitment_for(urgent, order_date=ORDERED) == ORDERED + timedelta(days=2)
    assert policy.commitment_for(business, order_date=ORDERED) == ORDERED + timedelta(days=15)
    assert policy.commitment_for(residential, order_date=ORDERED) == ORDERED + timedelta(days=10)


def test_rules_match_on_level_category_state_and_time_in_state() -> None:
    policy = load_policy("demo")
    facts = {"level": "inJeopardy", "category": "business", "state": "held", "timeInState": 5 * 3600}
    assert [r.name for r in policy.matching_rules(facts)] == ["business-order-in-jeopardy", "held-too-long"]
    assert policy.matching_rules({"level": "onTrack", "state": "inProgress"}) == []


def test_the_next_step_of_a_ladder_is_due_its_delay_after_the_rule_matched() -> None:
    rule = load_policy("demo").rules[0]
    assert rule.step_due(matched_at=ORDERED, fired=0) == ORDERED
    assert rule.step_due(matched_at=ORDERED, fired=1) == ORDERED + timedelta(hours=2)
    assert rule.step_due(matched_at=ORDERED, fired=3) is None


BROKEN = """\
defaults:
  margin: two hours
  overrunThreshold: -1
contacts:
  desk: {}
rules:
  - name: jeopardy
    when: order.level = "late"
    ladder:
      - after: PT1H
        actions:
          - notify: nobody
      - after: PT30M
        actions:
          - explode: now
  - name: jeopardy
    when: order.state == "held"
    frequency: daily
"""


def test_every_problem_is_reported_with_its_line() -> None:
    with pytest.raises(InvalidPolicy) as caught:
        parse_policy_text(BROKEN, source="escalation.yaml")
    assert str(caught.value).splitlines() == [
        "escalation.yaml: line 2: margin: 'two hours' is not an ISO 8601 duration such as PT30M, P2D or P1DT4H",
        "escalation.yaml: line 3: overrunThreshold must be a number >= 0, e.g. 0.25",
        "escalation.yaml: line 5: contact 'desk' needs a webhook URL or an email address",
        "escalation.yaml: line 8: when: cannot parse 'order.level = \"late\"': invalid syntax (compare with ==) at column 13",
        "escalation.yaml: line 12: notify: unknown contact 'nobody'; declare it under contacts",
        "escalation.yaml: line 13: steps must come in order: `after` is earlier than the step before",
        "escalation.yaml: line 15: unknown action 'explode'; use one of notify, raisePriority, assign, note, hold",
        "escalation.yaml: line 16: rule name 'jeopardy' is used twice",
        "escalation.yaml: line 16: a rule needs a ladder: a list of steps with `after` and `actions`",
        "escalation.yaml: line 18: unknown key 'frequency'; expected one of ladder, name, when",
    ]


def test_invalid_yaml_is_reported_with_its_line() -> None:
    with pytest.raises(InvalidPolicy, match=r"line 3: not valid YAML"):
        parse_policy_text("rules:\n  - name: [unclosed\n", source="p.yaml")
