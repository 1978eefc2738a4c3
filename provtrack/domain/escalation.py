"""Escalation: the facts a policy rule sees of an order, the state of a rule's ladder on an order,
and the instants at which a time-based rule can start or stop matching.

A rule such as `order.state == "held" && order.timeInState > duration("PT4H")` flips at a
computable instant (entered + 4 h), so the engine schedules one exact check for it instead of
sweeping open orders.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from provtrack.domain.clock import format_datetime, parse_datetime
from provtrack.domain.durations import InvalidDuration, parse_duration
from provtrack.domain.jeopardy import TICK
from provtrack.domain.model import ServiceOrder
from provtrack.domain.policy import Action, Rule

_DURATION_LITERAL = re.compile(r"""duration\(\s*["']([^"']+)["']\s*\)""")


@dataclass(slots=True)
class Escalation:
    """Where one rule's ladder stands on one order."""

    order_id: str
    rule: str
    matched_at: datetime
    fired: int = 0  # steps taken so far
    acknowledged_at: str | None = None
    acknowledged_by: str | None = None

    @property
    def acknowledged(self) -> bool:
        return self.acknowledged_at is not None

    def to_document(self, rule: Rule | None) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "rule": self.rule,
            "matchedAt": format_datetime(self.matched_at),
            "stepsFired": self.fired,
            "steps": len(rule.ladder) if rule else None,
        }
        if rule is not None and not self.acknowledged:
            due = rule.step_due(matched_at=self.matched_at, fired=self.fired)
            if due is not None:
                doc["nextStepAt"] = format_datetime(due)
        if self.acknowledged:
            doc["acknowledgedAt"] = self.acknowledged_at
            doc["acknowledgedBy"] = self.acknowledged_by
        return doc


def order_facts(order: ServiceOrder, *, level: str, now: datetime, state_since: datetime) -> dict[str, Any]:
    """What `order.<fact>` means in a rule (docs/policy.md lists them)."""
    attrs = order.attributes
    facts: dict[str, Any] = {
        "id": order.id,
        "state": order.state.value,
        "level": level,
        "timeInState": (now - state_since).total_seconds(),
        "age": (now - parse_datetime(order.order_date)).total_seconds(),
        "relatedParty": _parties(attrs.get("relatedParty")),
        "characteristic": {},
        "serviceSpecification": [],
    }
    for name in ("externalId", "priority", "category"):
        if attrs.get(name) is not None:
            facts[name] = str(attrs[name])
    for item in order.all_items():
        service = item.attributes.get("service") or {}
        if not isinstance(service, dict):
            continue
        spec = service.get("serviceSpecification")
        if isinstance(spec, dict) and spec.get("id"):
            facts["serviceSpecification"].append(str(spec["id"]))
        for characteristic in service.get("serviceCharacteristic") or []:
            if isinstance(characteristic, dict) and "name" in characteristic:
                facts["characteristic"][str(characteristic["name"])] = characteristic.get("value")
    return facts


def _parties(parties: Any) -> dict[str, str]:
    result: dict[str, str] = {}
    for party in parties or []:
        if isinstance(party, dict) and party.get("role"):
            name = party.get("name") or party.get("id")
            if name is not None:
                result.setdefault(str(party["role"]), str(name))
    return result


def rule_matches(rule: Rule, facts: Mapping[str, Any]) -> bool:
    """Whether the rule matches; a rule that cannot be evaluated on these facts (comparing a text
    with a number, say) does not match."""
    try:
        return bool(rule.matches({"order": facts}))
    except (TypeError, ValueError, ArithmeticError):
        return False


def duration_literals(rule: Rule) -> list[timedelta]:
    found = []
    for text in _DURATION_LITERAL.findall(rule.when):
        try:
            found.append(parse_duration(text))
        except InvalidDuration:
            continue
    return found


def next_flip(
    rules: Iterable[Rule],
    facts: Mapping[str, Any],
    *,
    now: datetime,
    state_since: datetime,
    order_date: datetime,
) -> datetime | None:
    """The earliest future instant at which a rule's match changes by the clock alone.

    Candidates are where `timeInState` or `age` crosses one of the rule's duration literals (one tick
    after, for `>`); the first candidate at which the rule's answer differs from now's is the flip.
    """
    flips = []
    for rule in rules:
        literals = duration_literals(rule)
        if not literals:
            continue
        current = rule_matches(rule, facts)
        candidates = sorted(
            c
            for d in literals
            for start in (state_since, order_date)
            for c in (start + d, start + d + TICK)
            if c > now
        )
        for candidate in candidates:
            ahead = (candidate - now).total_seconds()
            later = {**facts, "timeInState": facts["timeInState"] + ahead, "age": facts["age"] + ahead}
            if rule_matches(rule, later) != current:
                flips.append(candidate)
                break
    return min(flips) if flips else None


def describe_actions(actions: Iterable[Action]) -> str:
    return ", ".join(a.describe() for a in actions)
