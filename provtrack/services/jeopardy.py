"""Jeopardy monitoring and escalation: one refresh after every change of an order, and exact timers.

`refresh_jeopardy` runs inside the transaction that changed the order (the engine's `_change_plan`,
a PATCH) and in the jobs it schedules. It assesses the plan against the commitment, appends a
jeopardyAlert when the level changes, keeps `expectedCompletionDate` on the projection, evaluates the
policy's rules, takes the escalation steps that are due, and schedules ONE `jeopardy.check` job at the
next instant anything can change if nothing else happens. There is no sweep over open orders.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from provtrack.domain.activities import ACTIVITY_TERMINAL, Activity, ActivityState
from provtrack.domain.clock import format_datetime, parse_datetime
from provtrack.domain.escalation import Escalation, next_flip, order_facts, rule_matches
from provtrack.domain.jeopardy import (
    ActivityTiming,
    Assessment,
    JeopardyLevel,
    assess,
    learned_duration,
)
from provtrack.domain.jobs import Job, JobRequest
from provtrack.domain.model import Change, EventType, OrderEvent, ServiceOrder
from provtrack.domain.plan import Plan
from provtrack.domain.policy import Action, Policy, Rule
from provtrack.domain.states import IllegalTransition, OrderState
from provtrack.services.orders import Context, OrderNotFound
from provtrack.services.ports import ConcurrentUpdate

CHECK_JOB = "jeopardy.check"  # key: order id; due when the level or a time-based rule can next change
STEP_JOB = "escalation.step"  # key: <order id>:<rule>; due when the ladder's next step is
AUTO_CANCEL_JOB = "escalation.autoCancel"  # key: order id; due pendingAutoCancel after entering pending
NOTIFY_JOB = "escalation.notify"  # key: <order id>:<rule>:<step>:<contact>; one webhook POST
ACTOR = "provtrack-jeopardy"
Handler = Callable[[Job, datetime], None]
SAVE_ATTEMPTS = 5
ALERT_NAMES = {
    JeopardyLevel.ON_TRACK.value: "back on track",
    JeopardyLevel.AT_RISK.value: "at risk",
    JeopardyLevel.IN_JEOPARDY.value: "in jeopardy",
    JeopardyLevel.LATE.value: "late",
}
S = OrderState


@dataclass(frozen=True, slots=True)
class FinishedActivity:
    """How long one activity really took: a sample for learned durations."""

    activity_id: str
    specification: str
    name: str
    seconds: float
    finished_at: str


class JeopardyRecords(Protocol):
    def escalations(self, order_id: str) -> list[Escalation]: ...
    def add_escalation(self, item: Escalation) -> None: ...
    def save_escalation(self, item: Escalation) -> None: ...
    def delete_escalation(self, order_id: str, rule: str) -> None: ...
    def record_durations(self, finished: Sequence[FinishedActivity]) -> None: ...
    def durations(self, specification: str, name: str) -> list[float]: ...
    def state_since(self, order_id: str) -> str | None: ...


class JeopardyTransaction(Protocol):
    def get_order(self, order_id: str) -> ServiceOrder | None: ...
    def get_plan(self, order_id: str) -> Plan | None: ...
    def save_order(self, order: ServiceOrder) -> None: ...
    def schedule_job(self, request: JobRequest, *, now: datetime, replace: bool = True) -> None: ...
    def cancel_job(self, kind: str, key: str) -> None: ...


class JeopardyStore(Protocol):
    def transaction(self, *, write: bool) -> AbstractContextManager[Any]: ...


@dataclass(frozen=True, slots=True)
class Monitor:
    """What jeopardy needs besides the transaction: the policy in force, and its records."""

    policy: Callable[[], Policy]
    records: Callable[[Any], JeopardyRecords]  # the records of a transaction, on its connection


_monitors: weakref.WeakKeyDictionary[Any, Monitor] = weakref.WeakKeyDictionary()


def watch(store: object, monitor: Monitor) -> None:
    """Monitor the orders of this store (bootstrap calls it once per store)."""
    _monitors[store] = monitor


def monitor_of(store: object) -> Monitor:
    monitor = _monitors.get(store)
    if monitor is None:
        raise JeopardyNotMonitored("jeopardy monitoring is not set up for this store (see bootstrap)")
    return monitor


class JeopardyNotMonitored(RuntimeError):
    """No policy and records are installed for the store."""


class EscalationNotFound(LookupError):
    """The order has no active escalation by that rule."""

    def __init__(self, order_id: str, rule: str) -> None:
        super().__init__(f"service order {order_id!r} has no active escalation by rule {rule!r}")


def after_change(store: object, tx: Any, order: ServiceOrder, plan: Plan | None, ctx: Context | None) -> None:
    """The hook the use cases call after changing an order, in their transaction (no-op when the
    store is not monitored)."""
    monitor = _monitors.get(store)
    if monitor is None or ctx is None:
        return
    refresh_jeopardy(tx, order, plan, monitor.policy(), parse_datetime(ctx.now), records=monitor.records(tx))


def after_order_change(store: object, tx: Any, order: ServiceOrder, ctx: Context) -> None:
    """The hook for use cases that change an order without its plan (a PATCH to pending or held)."""
    if store in _monitors:
        get_plan = getattr(tx, "get_plan", None)
        after_change(store, tx, order, get_plan(order.id) if get_plan else None, ctx)


# --- the refresh ------------------------------------------------------------------------------


def refresh_jeopardy(
    tx: JeopardyTransaction,
    order: ServiceOrder,
    plan: Plan | None,
    policy: Policy,
    now: datetime,
    *,
    records: JeopardyRecords,
    actor: str = ACTOR,
) -> Assessment | None:
    """Assess, alert, escalate and schedule the next check, in the caller's transaction."""
    stamp = format_datetime(now)
    if plan is not None:
        records.record_durations(_finished_now(order, plan, stamp))
    run = _Run(tx, policy, records, now, actor)
    if order.is_terminal:
        _stop(run, order)
        return None
    # Without rules only the auto-cancel needs it, and only on a state change: spare the query.
    needed = bool(policy.rules) or _state_changed(order)
    state_since = _state_since(order, records) if needed else parse_datetime(order.order_date)
    _schedule_auto_cancel(tx, order, policy, state_since, now)
    assessment: Assessment | None = None
    facts = order_facts(order, level=order.jeopardy_level, now=now, state_since=state_since)
    # A plan waiting for its requested start is assessed when it starts (the engine refreshes then).
    if plan is not None and plan.started and plan.activities:
        commitment = commitment_of(order, policy, facts)
        assessment = assess(
            _timings(order, plan, policy, records),
            now=now,
            commitment=commitment,
            thresholds=policy.thresholds,
        )
        level = assessment.level.value
        order.record_jeopardy(
            level, name=f"order {ALERT_NAMES[level]}", message=assessment.reason, now=stamp, actor=actor
        )
        order.set_expected_completion(format_datetime(assessment.projection), now=stamp, actor=actor)
    for _ in range(3 if policy.rules else 0):
        # A step that moves the order (hold) changes the facts the rules see: evaluate again.
        state = order.state
        facts = order_facts(order, level=order.jeopardy_level, now=now, state_since=state_since)
        _escalate(run, order, facts)
        if order.state == state:
            break
        state_since = now
    if order.is_terminal:
        _stop(run, order)
        return assessment
    candidates = [
        assessment.next_change if assessment else None,
        next_flip(
            policy.rules,
            order_facts(order, level=order.jeopardy_level, now=now, state_since=state_since),
            now=now,
            state_since=state_since,
            order_date=parse_datetime(order.order_date),
        ),
    ]
    due = min((c for c in candidates if c is not None), default=None)
    if due is None:
        tx.cancel_job(CHECK_JOB, order.id)
    else:
        tx.schedule_job(JobRequest(CHECK_JOB, order.id, due), now=now)
    return assessment


def commitment_of(order: ServiceOrder, policy: Policy, facts: Mapping[str, Any]) -> datetime:
    requested = order.attributes.get("requestedCompletionDate")
    if requested:
        return parse_datetime(str(requested))
    return policy.commitment_for(facts, order_date=parse_datetime(order.order_date))


def _state_since(order: ServiceOrder, records: JeopardyRecords) -> datetime:
    for change in reversed(order.changes):  # changed in this transaction, not saved yet
        if change.subject == "serviceOrder" and change.attribute == "state":
            return parse_datetime(change.at)
    stored = records.state_since(order.id)
    return parse_datetime(stored or order.order_date)


def _state_changed(order: ServiceOrder) -> bool:
    return any(c.subject == "serviceOrder" and c.attribute == "state" for c in order.changes)


def _specification(order: ServiceOrder, item_id: str) -> str:
    for item in order.all_items():
        if item.id == item_id:
            spec = (item.attributes.get("service") or {}).get("serviceSpecification") or {}
            return str(spec.get("id") or "") if isinstance(spec, dict) else ""
    return ""


def _finished_now(order: ServiceOrder, plan: Plan, stamp: str) -> list[FinishedActivity]:
    """Activities delivered in this transaction: how long each took is history for learned durations."""
    return [
        FinishedActivity(
            a.id,
            _specification(order, a.item_id),
            a.name,
            (parse_datetime(stamp) - parse_datetime(a.actual_start)).total_seconds(),
            stamp,
        )
        for a in plan.activities
        if a.state == ActivityState.DONE and a.actual_end == stamp and a.actual_start is not None
    ]


def _timings(
    order: ServiceOrder, plan: Plan, policy: Policy, records: JeopardyRecords
) -> list[ActivityTiming]:
    unfinished = [a for a in plan.activities if a.state not in ACTIVITY_TERMINAL]
    expected: dict[tuple[str, str], timedelta] = {}
    timings = []
    for a in unfinished:
        key = (_specification(order, a.item_id), a.name)
        catalog = timedelta(seconds=a.expected_seconds)
        if key not in expected:
            expected[key] = learned_duration(
                (timedelta(seconds=s) for s in records.durations(*key)),
                percentile=policy.learned_percentile,
                min_samples=policy.learned_min_samples,
                fallback=catalog,
            )
        timings.append(
            ActivityTiming(
                a.id,
                a.name,
                expected[key],
                tuple(a.predecessors),
                _started(a),
            )
        )
    return timings


def _started(activity: Activity) -> datetime | None:
    if activity.state == ActivityState.PLANNED or activity.actual_start is None:
        return None
    return parse_datetime(activity.actual_start)


def _schedule_auto_cancel(
    tx: JeopardyTransaction, order: ServiceOrder, policy: Policy, state_since: datetime, now: datetime
) -> None:
    if not _state_changed(order):
        return  # the job follows state changes only: scheduled on entering pending, dropped on leaving
    if order.state == S.PENDING and policy.pending_auto_cancel is not None:
        due = state_since + policy.pending_auto_cancel
        payload = {"pendingSince": format_datetime(state_since)}
        tx.schedule_job(JobRequest(AUTO_CANCEL_JOB, order.id, due, payload), now=now)
    else:
        tx.cancel_job(AUTO_CANCEL_JOB, order.id)


@dataclass(frozen=True, slots=True)
class _Run:
    """One refresh: the transaction, the policy in force and the instant, as the helpers need them."""

    tx: JeopardyTransaction
    policy: Policy
    records: JeopardyRecords
    now: datetime
    actor: str

    @property
    def stamp(self) -> str:
        return format_datetime(self.now)


def _stop(run: _Run, order: ServiceOrder) -> None:
    """The order is finished: no more checks, ladders or auto-cancel."""
    run.tx.cancel_job(CHECK_JOB, order.id)
    run.tx.cancel_job(AUTO_CANCEL_JOB, order.id)
    for escalation in run.records.escalations(order.id):
        _clear(run, order, escalation, why=f"the order is {order.state}")


# --- escalation -------------------------------------------------------------------------------


def _escalate(run: _Run, order: ServiceOrder, facts: Mapping[str, Any]) -> None:
    existing = {e.rule: e for e in run.records.escalations(order.id)}
    rules = {r.name: r for r in run.policy.rules}
    for name, gone in existing.items():
        if name not in rules:
            _clear(run, order, gone, why="the rule is no longer in the policy")
    for rule in run.policy.rules:
        escalation = existing.get(rule.name)
        if not rule_matches(rule, facts):
            if escalation is not None:
                _clear(run, order, escalation, why="the condition cleared")
            continue
        if escalation is None:
            escalation = Escalation(order.id, rule.name, run.now)
            run.records.add_escalation(escalation)
            order.changes.append(
                Change(_subject(rule.name), "matched", None, rule.when, run.stamp, run.actor)
            )
        _climb(run, order, rule, escalation)


def _climb(run: _Run, order: ServiceOrder, rule: Rule, escalation: Escalation) -> None:
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
        run.records.save_escalation(escalation)
    key = f"{order.id}:{rule.name}"
    if due is None:
        run.tx.cancel_job(STEP_JOB, key)
    else:
        run.tx.schedule_job(JobRequest(STEP_JOB, key, due), now=run.now)


def _clear(run: _Run, order: ServiceOrder, escalation: Escalation, *, why: str) -> None:
    run.records.delete_escalation(order.id, escalation.rule)
    run.tx.cancel_job(STEP_JOB, f"{order.id}:{escalation.rule}")
    order.changes.append(Change(_subject(escalation.rule), "cleared", None, why, run.stamp, run.actor))


def _subject(rule: str) -> str:
    return f"escalation[{rule}]"


def _take_step(run: _Run, order: ServiceOrder, rule: Rule, index: int) -> None:
    """One rung of the ladder: its actions, one timeline entry and one event."""
    done = [_act(run, order, rule, index, action) for action in rule.ladder[index].actions]
    record = {"step": index + 1, "of": len(rule.ladder), "actions": done}
    order.changes.append(Change(_subject(rule.name), "step", None, record, run.stamp, run.actor))
    order.events.append(OrderEvent(EventType.ORDER_JEOPARDY, run.stamp))


def _act(run: _Run, order: ServiceOrder, rule: Rule, index: int, action: Action) -> str:
    """Take one action; returns what was done, for the timeline."""
    stamp, actor = run.stamp, run.actor
    if action.kind == "notify":
        contact = run.policy.contacts[str(action.value)]
        if not contact.webhook:
            return f"notify {contact.name}: no webhook declared (email needs SMTP, not configured)"
        body = notification(order, rule, index, stamp)
        key = f"{order.id}:{rule.name}:{index + 1}:{contact.name}"
        payload = {"url": contact.webhook, "contact": contact.name, "body": body}
        run.tx.schedule_job(JobRequest(NOTIFY_JOB, key, run.now, payload), now=run.now, replace=False)
        return f"notify {contact.name} (webhook queued)"
    if action.kind == "raisePriority":
        current = order.attributes.get("priority")
        wanted = int(action.value)
        if current is not None and str(current).isdigit() and int(str(current)) <= wanted:
            return f"priority already {current}"
        order.set_attribute("priority", str(wanted), now=stamp, actor=actor)
        return f"priority raised to {wanted}"
    if action.kind == "assign":
        [(role, name)] = dict(action.value).items()
        order.changes.append(Change(_subject(rule.name), "assignedTo", None, {role: name}, stamp, actor))
        return f"assigned to {role} {name}"
    if action.kind == "note":
        add_note(order, str(action.value), now=stamp, actor=actor)
        return "note added"
    if action.kind == "hold":
        if order.state == S.HELD:
            return "already held"
        try:
            order.move_to(S.HELD, now=stamp, actor=actor)
        except IllegalTransition as exc:
            return f"hold not possible: {exc}"
        add_note(order, str(action.value), now=stamp, actor=actor)
        return "order held"
    raise AssertionError(f"unknown action {action.kind}")  # the policy reader admits only ACTIONS


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


# --- jobs and operators -----------------------------------------------------------------------


def check(store: JeopardyStore, order_id: str, *, now: datetime) -> None:
    """The timer came due (a jeopardy check or an escalation step): refresh the order."""
    monitor = monitor_of(store)
    _with_order(
        store,
        order_id,
        lambda tx, order, plan, records: refresh_jeopardy(
            tx, order, plan, monitor.policy(), now, records=records
        ),
    )


def auto_cancel(store: JeopardyStore, order_id: str, *, pending_since: str, now: datetime) -> bool:
    """Cancel the order if it is still pending since `pending_since`; True if it was cancelled."""
    monitor = monitor_of(store)
    cancelled = False

    def change(tx: Any, order: ServiceOrder, plan: Plan | None, records: JeopardyRecords) -> None:
        nonlocal cancelled
        if order.state != S.PENDING or _state_since(order, records) != parse_datetime(pending_since):
            return
        stamp = format_datetime(now)
        add_note(
            order,
            f"Cancelled by provtrack: the information asked for on {pending_since} never came",
            now=stamp,
            actor=ACTOR,
        )
        order.move_to(S.CANCELLED, now=stamp, actor=ACTOR)
        cancelled = True
        refresh_jeopardy(tx, order, plan, monitor.policy(), now, records=records)

    _with_order(store, order_id, change)
    return cancelled


def acknowledge(store: JeopardyStore, order_id: str, rule: str, *, ctx: Context) -> dict[str, Any]:
    """An operator has taken the escalation: its ladder stops climbing."""
    monitor = monitor_of(store)
    result: dict[str, Any] = {}

    def change(tx: Any, order: ServiceOrder, plan: Plan | None, records: JeopardyRecords) -> None:
        escalation = next((e for e in records.escalations(order_id) if e.rule == rule), None)
        if escalation is None:
            raise EscalationNotFound(order_id, rule)
        if not escalation.acknowledged:
            escalation.acknowledged_at = ctx.now
            escalation.acknowledged_by = ctx.actor
            records.save_escalation(escalation)
            tx.cancel_job(STEP_JOB, f"{order_id}:{rule}")
            order.changes.append(Change(_subject(rule), "acknowledged", None, ctx.actor, ctx.now, ctx.actor))
            order.events.append(OrderEvent(EventType.ORDER_JEOPARDY, ctx.now))
        result.update(escalation.to_document(_rule(monitor.policy(), rule)))

    _with_order(store, order_id, change)
    return result


def jeopardy_view(store: JeopardyStore, order_id: str, *, now: datetime) -> dict[str, Any]:
    """Level, projection, commitment, alerts and active escalations of an order."""
    monitor = monitor_of(store)
    policy = monitor.policy()
    with store.transaction(write=False) as tx:
        order = tx.get_order(order_id)
        if order is None:
            raise OrderNotFound(order_id)
        records = monitor.records(tx)
        escalations = records.escalations(order_id)
        since = _state_since(order, records)
    facts = order_facts(order, level=order.jeopardy_level, now=now, state_since=since)
    return {
        "serviceOrderId": order.id,
        "state": order.state.value,
        "level": order.jeopardy_level,
        "projectedCompletionDate": order.expected_completion_date,
        "commitment": format_datetime(commitment_of(order, policy, facts)),
        "jeopardyAlert": order.jeopardy_alerts,
        "escalation": [e.to_document(_rule(policy, e.rule)) for e in escalations],
    }


def _rule(policy: Policy, name: str) -> Rule | None:
    return next((r for r in policy.rules if r.name == name), None)


def _with_order(
    store: JeopardyStore,
    order_id: str,
    change: Callable[[Any, ServiceOrder, Plan | None, JeopardyRecords], object],
) -> None:
    """Load the order (and its plan), change it, save it; reapply on a concurrent update."""
    monitor = monitor_of(store)
    for attempt in range(SAVE_ATTEMPTS):
        try:
            with store.transaction(write=True) as tx:
                order = tx.get_order(order_id)
                if order is None:
                    raise OrderNotFound(order_id)
                plan = tx.get_plan(order_id) if hasattr(tx, "get_plan") else None
                change(tx, order, plan, monitor.records(tx))
                if order.changes or order.events:
                    tx.save_order(order)
                return
        except ConcurrentUpdate:
            if attempt == SAVE_ATTEMPTS - 1:
                raise


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
