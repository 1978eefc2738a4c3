"""The escalation policy: commitments by default, jeopardy thresholds, and rules with ladders.

A policy file (YAML, `docs/policy.md`) is read into a `Policy`; every problem is reported with its
line. A rule matches an order by a safe expression over the order's facts; once it matches, its
ladder's steps fire one after another, each `after` a duration since the rule matched, until the
condition clears or an operator acknowledges the escalation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from provtrack.domain.durations import InvalidDuration, parse_duration
from provtrack.domain.expressions import Evaluator, InvalidExpression, compile_expression
from provtrack.domain.jeopardy import Thresholds

VARIABLES = frozenset({"order"})
ACTIONS = ("notify", "raisePriority", "assign", "note", "hold")


@dataclass(frozen=True, slots=True)
class Problem:
    line: int | None
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}" if self.line else self.message


class InvalidPolicy(ValueError):
    """A policy file with problems; each names its line."""

    def __init__(self, source: str, problems: Sequence[Problem]) -> None:
        self.source = source
        self.problems = sorted(problems, key=lambda p: (p.line is None, p.line or 0))
        super().__init__("\n".join(f"{source}: {p}" for p in self.problems))


@dataclass(frozen=True, slots=True)
class Contact:
    name: str
    webhook: str | None = None
    email: str | None = None


@dataclass(frozen=True, slots=True)
class Action:
    kind: str  # one of ACTIONS
    value: Any  # contact name, priority, {workGroup|person}, note text, hold reason

    def describe(self) -> str:
        return f"{self.kind} {self.value}"


@dataclass(frozen=True, slots=True)
class Step:
    after: timedelta
    actions: tuple[Action, ...]
    line: int | None = None


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    when: str
    matches: Evaluator = field(compare=False)
    ladder: tuple[Step, ...]
    line: int | None = None

    def step_due(self, *, matched_at: datetime, fired: int) -> datetime | None:
        """When the next step fires, or None when the ladder is climbed."""
        if fired >= len(self.ladder):
            return None
        return matched_at + self.ladder[fired].after


@dataclass(frozen=True, slots=True)
class CommitmentDefault:
    within: timedelta
    when: str | None = None
    matches: Evaluator | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Policy:
    rules: tuple[Rule, ...] = ()
    contacts: Mapping[str, Contact] = field(default_factory=dict)
    commitments: tuple[CommitmentDefault, ...] = (CommitmentDefault(within=timedelta(days=10)),)
    thresholds: Thresholds = field(default_factory=Thresholds)
    learned_percentile: float = 80.0
    learned_min_samples: int = 20
    pending_auto_cancel: timedelta | None = None

    def commitment_for(self, facts: Mapping[str, Any], *, order_date: datetime) -> datetime:
        env = {"order": facts}
        for default in self.commitments:
            if default.matches is None or default.matches(env):
                return order_date + default.within
        return order_date + timedelta(days=10)

    def matching_rules(self, facts: Mapping[str, Any]) -> list[Rule]:
        env = {"order": facts}
        return [rule for rule in self.rules if rule.matches(env)]


def read_policy(document: Any, *, source: str) -> Policy:
    """Validate a parsed policy document (mappings may carry `.line`/`.key_lines` for messages)."""
    problems: list[Problem] = []
    if document is None:
        document = {}
    if not isinstance(document, Mapping):
        raise InvalidPolicy(source, [Problem(_line(document), "the policy must be a mapping")])
    _unknown_keys(document, {"defaults", "contacts", "rules"}, problems)
    contacts = _contacts(document.get("contacts") or {}, problems)
    defaults = document.get("defaults") or {}
    rules = _rules(document.get("rules") or [], contacts, problems)
    policy = _defaults(defaults, problems, rules=rules, contacts=contacts)
    if problems:
        raise InvalidPolicy(source, problems)
    return policy


def _defaults(
    defaults: Any, problems: list[Problem], *, rules: tuple[Rule, ...], contacts: dict[str, Contact]
) -> Policy:
    if not isinstance(defaults, Mapping):
        problems.append(Problem(_line(defaults), "defaults must be a mapping"))
        return Policy(rules=rules, contacts=contacts)
    _unknown_keys(
        defaults,
        {"commitment", "overrunThreshold", "margin", "learnedDurations", "pendingAutoCancel"},
        problems,
    )
    commitments = _commitment_defaults(defaults, problems)
    overrun = defaults.get("overrunThreshold", 0.25)
    if not isinstance(overrun, (int, float)) or isinstance(overrun, bool) or overrun < 0:
        problems.append(
            Problem(
                _key_line(defaults, "overrunThreshold"), "overrunThreshold must be a number >= 0, e.g. 0.25"
            )
        )
        overrun = 0.25
    margin = _duration(defaults, "margin", problems) if "margin" in defaults else timedelta(0)
    percentile, min_samples = _learned_durations(defaults, problems)
    auto_cancel = (
        _duration(defaults, "pendingAutoCancel", problems) if "pendingAutoCancel" in defaults else None
    )
    return Policy(
        rules=rules,
        contacts=contacts,
        commitments=tuple(commitments),
        thresholds=Thresholds(overrun=float(overrun), margin=margin or timedelta(0)),
        learned_percentile=float(percentile),
        learned_min_samples=min_samples,
        pending_auto_cancel=auto_cancel,
    )


def _commitment_defaults(defaults: Mapping[str, Any], problems: list[Problem]) -> list[CommitmentDefault]:
    """`defaults.commitment`, in order, ending with one that applies to every order (P10D if none)."""
    commitments: list[CommitmentDefault] = []
    for index, entry in enumerate(defaults.get("commitment") or []):
        line = _item_line(defaults.get("commitment"), index)
        if not isinstance(entry, Mapping) or "within" not in entry:
            problems.append(Problem(line, "a commitment default needs `within` (and an optional `when`)"))
            continue
        within = _duration(entry, "within", problems)
        when = entry.get("when")
        matches = _expression(when, _key_line(entry, "when"), problems) if when is not None else None
        if within is not None:
            commitments.append(CommitmentDefault(within, when, matches))
    if not commitments or commitments[-1].when is not None:
        commitments.append(CommitmentDefault(within=timedelta(days=10)))
    return commitments


def _learned_durations(defaults: Mapping[str, Any], problems: list[Problem]) -> tuple[float, int]:
    """`defaults.learnedDurations`: (percentile, minSamples), 80 and 20 when absent or wrong."""
    learned = defaults.get("learnedDurations") or {}
    percentile = learned.get("percentile", 80) if isinstance(learned, Mapping) else 80
    min_samples = learned.get("minSamples", 20) if isinstance(learned, Mapping) else 20
    if not isinstance(percentile, (int, float)) or not 0 < percentile <= 100:
        problems.append(
            Problem(
                _key_line(defaults, "learnedDurations"), "learnedDurations.percentile must be in (0, 100]"
            )
        )
        percentile = 80
    if not isinstance(min_samples, int) or min_samples < 1:
        problems.append(
            Problem(
                _key_line(defaults, "learnedDurations"),
                "learnedDurations.minSamples must be a whole number >= 1",
            )
        )
        min_samples = 20
    return float(percentile), min_samples


def _contacts(contacts: Any, problems: list[Problem]) -> dict[str, Contact]:
    if not isinstance(contacts, Mapping):
        problems.append(Problem(_line(contacts), "contacts must be a mapping of name to {webhook, email}"))
        return {}
    result = {}
    for name, value in contacts.items():
        line = _key_line(contacts, name)
        if not isinstance(value, Mapping) or not (value.get("webhook") or value.get("email")):
            problems.append(Problem(line, f"contact {name!r} needs a webhook URL or an email address"))
            continue
        _unknown_keys(value, {"webhook", "email"}, problems)
        webhook = value.get("webhook")
        if webhook is not None and not str(webhook).startswith(("http://", "https://")):
            problems.append(
                Problem(_key_line(value, "webhook"), f"contact {name!r}: webhook must be an http(s) URL")
            )
        result[str(name)] = Contact(str(name), webhook, value.get("email"))
    return result


def _rules(rules: Any, contacts: Mapping[str, Contact], problems: list[Problem]) -> tuple[Rule, ...]:
    if not isinstance(rules, list):
        problems.append(Problem(_line(rules), "rules must be a list"))
        return ()
    result = []
    names: set[str] = set()
    for index, rule in enumerate(rules):
        line = _item_line(rules, index)
        if not isinstance(rule, Mapping):
            problems.append(Problem(line, "a rule must be a mapping with name, when and ladder"))
            continue
        _unknown_keys(rule, {"name", "when", "ladder"}, problems)
        name = rule.get("name")
        if not name:
            problems.append(Problem(line, "a rule needs a name"))
            name = f"rule {index + 1}"
        elif name in names:
            problems.append(Problem(_key_line(rule, "name"), f"rule name {name!r} is used twice"))
        names.add(str(name))
        when = rule.get("when")
        matches = _expression(when, _key_line(rule, "when") or line, problems)
        ladder = _ladder(rule.get("ladder"), _key_line(rule, "ladder") or line, contacts, problems)
        if matches is not None:
            result.append(Rule(str(name), str(when), matches, ladder, line))
    return tuple(result)


def _ladder(
    ladder: Any, line: int | None, contacts: Mapping[str, Contact], problems: list[Problem]
) -> tuple[Step, ...]:
    if not isinstance(ladder, list) or not ladder:
        problems.append(Problem(line, "a rule needs a ladder: a list of steps with `after` and `actions`"))
        return ()
    steps: list[Step] = []
    for index, step in enumerate(ladder):
        step_line = _item_line(ladder, index)
        if not isinstance(step, Mapping):
            problems.append(Problem(step_line, "a step is a mapping with `after` and `actions`"))
            continue
        _unknown_keys(step, {"after", "actions"}, problems)
        after = _duration(step, "after", problems) if "after" in step else timedelta(0)
        if after is None:
            continue
        if steps and after < steps[-1].after:
            problems.append(
                Problem(step_line, "steps must come in order: `after` is earlier than the step before")
            )
        actions = _actions(step.get("actions"), _key_line(step, "actions") or step_line, contacts, problems)
        steps.append(Step(after, actions, step_line))
    return tuple(steps)


def _actions(
    actions: Any, line: int | None, contacts: Mapping[str, Contact], problems: list[Problem]
) -> tuple[Action, ...]:
    if not isinstance(actions, list) or not actions:
        problems.append(Problem(line, f"a step needs actions: a list of {', '.join(ACTIONS)}"))
        return ()
    result = []
    for index, action in enumerate(actions):
        action_line = _item_line(actions, index)
        if not isinstance(action, Mapping) or len(action) != 1:
            problems.append(
                Problem(action_line, f"an action is one of {', '.join(ACTIONS)}, e.g. `- notify: noc`")
            )
            continue
        [(kind, value)] = action.items()
        if kind not in ACTIONS:
            problems.append(Problem(action_line, f"unknown action {kind!r}; use one of {', '.join(ACTIONS)}"))
            continue
        if kind == "notify" and value not in contacts:
            problems.append(
                Problem(action_line, f"notify: unknown contact {value!r}; declare it under contacts")
            )
            continue
        if kind == "raisePriority" and (
            not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 9
        ):
            problems.append(Problem(action_line, "raisePriority takes the new priority, 0 (highest) to 9"))
            continue
        if kind == "assign" and not (
            isinstance(value, Mapping) and set(value) <= {"workGroup", "person"} and len(value) == 1
        ):
            problems.append(Problem(action_line, "assign takes {workGroup: NAME} or {person: NAME}"))
            continue
        if kind in ("note", "hold") and (not isinstance(value, str) or not value.strip()):
            problems.append(Problem(action_line, f"{kind} takes a text"))
            continue
        result.append(Action(str(kind), dict(value) if isinstance(value, Mapping) else value))
    return tuple(result)


def _expression(text: Any, line: int | None, problems: list[Problem]) -> Evaluator | None:
    if not isinstance(text, str):
        problems.append(Problem(line, '`when` must be an expression, e.g. order.level == "inJeopardy"'))
        return None
    try:
        return compile_expression(text, variables=VARIABLES)
    except InvalidExpression as exc:
        problems.append(Problem(line, f"when: {exc}"))
        return None


def _duration(mapping: Mapping[str, Any], key: str, problems: list[Problem]) -> timedelta | None:
    try:
        return parse_duration(mapping.get(key))
    except InvalidDuration as exc:
        problems.append(Problem(_key_line(mapping, key), f"{key}: {exc}"))
        return None


def _unknown_keys(mapping: Mapping[str, Any], known: set[str], problems: list[Problem]) -> None:
    for key in mapping:
        if key not in known:
            problems.append(
                Problem(
                    _key_line(mapping, key),
                    f"unknown key {key!r}; expected one of {', '.join(sorted(known))}",
                )
            )


def _line(node: Any) -> int | None:
    line = getattr(node, "line", None)
    return line if isinstance(line, int) else None


def _key_line(mapping: Any, key: Any) -> int | None:
    lines = getattr(mapping, "key_lines", None)
    return lines.get(str(key), _line(mapping)) if isinstance(lines, Mapping) else _line(mapping)


def _item_line(sequence: Any, index: int) -> int | None:
    lines = getattr(sequence, "item_lines", None)
    return lines[index] if isinstance(lines, list) and index < len(lines) else _line(sequence)
