"""Escalation ladders: rules matched against an order's facts, steps taken when due, and the dry run.

Called by `refresh_jeopardy` inside the transaction that changed the order: a new match starts a
ladder, each step fires `after` its delay as a job (`escalation.step`), and the ladder stops when the
rule no longer matches or an operator acknowledges it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from provtrack.domain.clock import format_datetime
from provtrack.domain.escalation import Escalation, order_facts, rule_matches
from provtrack.domain.jobs import JobRequest
from provtrack.domain.model import Change, EventType, OrderEvent, ServiceOrder
from provtrack.domain.policy import Action, Contact, Policy, Rule
from provtrack.domain.states import IllegalTransition, OrderState
from provtrack.services.ports import Transaction

STEP_JOB = "escalation.step"  # key: <order id>:<rule>; due when the ladder's next step is
NOTIFY_JOB = "escalation.notify"  # key: <order id>:<rule>:<step>:<contact>; one webhook POST
EMAIL_JOB = "escalation.email"  # same key; one email, when SMTP is configured


@dataclass(frozen=True, slots=True)
class EscalationRun:
    """One refresh: the transaction, the policy in force and the instant, as the helpers need them."""

    tx: Transaction
    policy: Policy
    now: datetime
    actor: str
    email: bool = False  # SMTP is configured: contacts with an email get one

    @property
    def stamp(self) -> str:
        return format_datetime(self.now)


# --- escalation -------------------------------------------------------------------------------


def escalate(run: EscalationRun, order: ServiceOrder, facts: Mapping[str, Any]) -> None:
    existing = {e.rule: e for e in run.tx.jeopardy.escalations(order.id)}
    rules = {r.name: r for r in run.policy.rules}
    for name, gone in existing.items():
        if name not in rules:
            clear(run, order, gone, why="the rule is no longer in the policy")
    for rule in run.policy.rules:
        escalation = existing.get(rule.name)
        if not rule_matches(rule, facts):
            if escalation is not None:
                clear(run, order, escalation, why="the condition cleared")
            continue
        if escalation is None:
            escalation = Escalation(order.id, rule.name, run.now)
            run.tx.jeopardy.add_escalation(escalation)
            order.changes.append(Change(subject(rule.name), "matched", None, rule.when, run.stamp, run.actor))
        _climb(run, order, rule, escalation)


def _climb(run: EscalationRun, order: ServiceOrder, rule: Rule, escalation: Escalation) -> None:
    """Take every step that is due, then schedule the next one (nothing after an acknowledgement)."""
    if escalation.acknowledged:
        return
    fired = escalation.fired
    while (due := rule.step_due(matched_at=escalation.matched_at, fired=escalation.fired)) is not None:
        if due > run.now:
            break
        _take_step(run, order, rule, escalation.fired)
        escalation.fired += 1
    if escalation.fired != fired:
        run.tx.jeopardy.save_escalation(escalation)
    key = f"{order.id}:{rule.name}"
    if due is None:
        run.tx.cancel_job(STEP_JOB, key)
    else:
        run.tx.schedule_job(JobRequest(STEP_JOB, key, due), now=run.now)


def clear(run: EscalationRun, order: ServiceOrder, escalation: Escalation, *, why: str) -> None:
    run.tx.jeopardy.delete_escalation(order.id, escalation.rule)
    run.tx.cancel_job(STEP_JOB, f"{order.id}:{escalation.rule}")
    order.changes.append(Change(subject(escalation.rule), "cleared", None, why, run.stamp, run.actor))


def subject(rule: str) -> str:
    return f"escalation[{rule}]"


def _take_step(run: EscalationRun, order: ServiceOrder, rule: Rule, index: int) -> None:
    """One rung of the ladder: its actions, one timeline entry and one event."""
    done = [_act(run, order, rule, index, action) for action in rule.ladder[index].actions]
    record = {"step": index + 1, "of": len(rule.ladder), "actions": done}
    order.changes.append(Change(subject(rule.name), "step", None, record, run.stamp, run.actor))
    order.events.append(OrderEvent(EventType.ORDER_JEOPARDY, run.stamp))


def _act(run: EscalationRun, order: ServiceOrder, rule: Rule, index: int, action: Action) -> str:
    """Take one action; returns what was done, for the timeline."""
    stamp, actor = run.stamp, run.actor
    if action.kind == "notify":
        return _notify(run, order, rule, index, run.policy.contacts[str(action.value)])
    if action.kind == "raisePriority":
        current = order.attributes.get("priority")
        wanted = int(action.value)
        if current is not None and str(current).isdigit() and int(str(current)) <= wanted:
            return f"priority already {current}"
        order.set_attribute("priority", str(wanted), now=stamp, actor=actor)
        return f"priority raised to {wanted}"
    if action.kind == "assign":
        [(role, name)] = dict(action.value).items()
        order.changes.append(Change(subject(rule.name), "assignedTo", None, {role: name}, stamp, actor))
        return f"assigned to {role} {name}"
    if action.kind == "note":
        add_note(order, str(action.value), now=stamp, actor=actor)
        return "note added"
    if action.kind == "hold":
        if order.state == OrderState.HELD:
            return "already held"
        try:
            order.move_to(OrderState.HELD, now=stamp, actor=actor)
        except IllegalTransition as exc:
            return f"hold not possible: {exc}"
        add_note(order, str(action.value), now=stamp, actor=actor)
        return "order held"
    raise AssertionError(f"unknown action {action.kind}")  # the policy reader admits only ACTIONS


def _notify(run: EscalationRun, order: ServiceOrder, rule: Rule, index: int, contact: Contact) -> str:
    """A webhook job, and an email job when SMTP is configured; each retried on its own."""
    body = notification(order, rule, index, run.stamp)
    key = f"{order.id}:{rule.name}:{index + 1}:{contact.name}"
    done = []
    if contact.webhook:
        payload = {"url": contact.webhook, "contact": contact.name, "body": body}
        run.tx.schedule_job(JobRequest(NOTIFY_JOB, key, run.now, payload), now=run.now, replace=False)
        done.append("webhook queued")
    if contact.email and run.email:
        mail = {"to": contact.email, "subject": email_subject(body), "text": email_text(body)}
        run.tx.schedule_job(JobRequest(EMAIL_JOB, key, run.now, mail), now=run.now, replace=False)
        done.append("email queued")
    elif contact.email:
        done.append("email not sent: SMTP is not configured")
    return f"notify {contact.name} ({'; '.join(done) or 'nothing declared'})"


def email_subject(body: Mapping[str, Any]) -> str:
    order = body["serviceOrder"]
    return (
        f"[provtrack] {body['rule']} step {body['step']}/{body['steps']}: service order "
        f"{order.get('externalId') or order['id']} is {order['jeopardyLevel']}"
    )


def email_text(body: Mapping[str, Any]) -> str:
    order = body["serviceOrder"]
    alert = (order.get("jeopardyAlert") or [{}])[-1]
    lines = [
        f"Service order {order['id']} (external id {order.get('externalId')}) is {order['state']}, "
        f"jeopardy level {order['jeopardyLevel']}.",
        f"Why: {alert.get('message', 'no jeopardy alert')}",
        f"Expected completion: {order.get('expectedCompletionDate')}",
        f"Escalation rule {body['rule']} ({body['when']}), step {body['step']} of {body['steps']}: "
        + ", ".join(body["actions"]),
    ]
    return "\n".join(lines) + "\n"


def add_note(order: ServiceOrder, text: str, *, now: str, actor: str) -> None:
    notes = list(order.attributes.get("note") or [])
    notes.append({"author": actor, "date": now, "text": text, "@type": "Note"})
    order.set_attribute("note", notes, now=now, actor=actor)


def notification(order: ServiceOrder, rule: Rule, index: int, stamp: str) -> dict[str, Any]:
    """The body of an escalation webhook: which order, which rule and step, the order's standing."""
    return {
        "eventType": "ProvtrackEscalationEvent",
        "eventTime": stamp,
        "serviceOrder": {
            "id": order.id,
            "externalId": order.attributes.get("externalId"),
            "state": order.state.value,
            "priority": order.attributes.get("priority"),
            "category": order.attributes.get("category"),
            "expectedCompletionDate": order.expected_completion_date,
            "jeopardyLevel": order.jeopardy_level,
            "jeopardyAlert": order.jeopardy_alerts[-1:] or None,
        },
        "rule": rule.name,
        "when": rule.when,
        "step": index + 1,
        "steps": len(rule.ladder),
        "actions": [a.describe() for a in rule.ladder[index].actions],
    }


# --- dry run ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OrderSnapshot:
    """What a dry run knows of one live order."""

    order: ServiceOrder
    state_since: datetime
    escalations: Sequence[Escalation]


@dataclass(frozen=True, slots=True)
class Firing:
    """A step that would fire now."""

    order_id: str
    rule: str
    step: int
    actions: tuple[str, ...]
    recipients: tuple[str, ...]  # contacts notified (webhook/email)


def simulate(
    policy: Policy, batches: Iterable[Sequence[OrderSnapshot]], *, now: datetime
) -> Iterator[Firing]:
    """For each live order, the steps the policy would take now, without taking them."""
    for batch in batches:
        for snapshot in batch:
            order = snapshot.order
            facts = order_facts(order, level=order.jeopardy_level, now=now, state_since=snapshot.state_since)
            existing = {e.rule: e for e in snapshot.escalations}
            for rule in policy.rules:
                if not rule_matches(rule, facts):
                    continue
                escalation = existing.get(rule.name) or Escalation(order.id, rule.name, now)
                if escalation.acknowledged:
                    continue
                index = escalation.fired
                while (
                    due := rule.step_due(matched_at=escalation.matched_at, fired=index)
                ) is not None and due <= now:
                    step = rule.ladder[index]
                    recipients = tuple(
                        _recipient(policy, str(a.value)) for a in step.actions if a.kind == "notify"
                    )
                    yield Firing(
                        order.id, rule.name, index + 1, tuple(a.describe() for a in step.actions), recipients
                    )
                    index += 1


def _recipient(policy: Policy, name: str) -> str:
    contact = policy.contacts.get(name)
    if contact is None:
        return name
    where = [w for w in (contact.webhook, contact.email) if w]
    return f"{name} ({', '.join(where)})" if where else name
