"""Jeopardy monitoring and escalation: one refresh after every change of an order, and exact timers.

`refresh_jeopardy` runs inside the transaction that changed the order, as the after-change hook
of `JeopardyMonitor` that the assembly gives the store (services/unit_of_work.py), and in the jobs
it schedules. It assesses the plan against the commitment, appends a
jeopardyAlert when the level changes, keeps `expectedCompletionDate` on the projection, evaluates the
policy's rules, takes the escalation steps that are due, and schedules ONE `jeopardy.check` job at the
next instant anything can change if nothing else happens. There is no sweep over open orders.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from provtrack.domain.activities import ACTIVITY_TERMINAL, Activity, ActivityState
from provtrack.domain.clock import format_datetime, parse_datetime
from provtrack.domain.escalation import next_flip, order_facts
from provtrack.domain.jeopardy import (
    ActivityTiming,
    Assessment,
    JeopardyLevel,
    assess,
)
from provtrack.domain.jobs import JobRequest
from provtrack.domain.model import Change, EventType, OrderEvent, ServiceOrder
from provtrack.domain.plan import Plan
from provtrack.domain.policy import Policy, Rule
from provtrack.domain.states import OrderState
from provtrack.services.escalation import (
    STEP_JOB,
    EscalationRun,
    add_note,
    clear,
    escalate,
    subject,
)
from provtrack.services.ports import (
    Context,
    FinishedActivity,
    JeopardyRecords,
    OrderNotFound,
    Store,
    Transaction,
)
from provtrack.services.unit_of_work import change_order

CHECK_JOB = "jeopardy.check"  # key: order id; due when the level or a time-based rule can next change
AUTO_CANCEL_JOB = "escalation.autoCancel"  # key: order id; due pendingAutoCancel after entering pending
ACTOR = "provtrack-jeopardy"
ALERT_NAMES = {
    JeopardyLevel.ON_TRACK.value: "back on track",
    JeopardyLevel.AT_RISK.value: "at risk",
    JeopardyLevel.IN_JEOPARDY.value: "in jeopardy",
    JeopardyLevel.LATE.value: "late",
}


@dataclass(frozen=True, slots=True)
class JeopardyMonitor:
    """Jeopardy monitoring as a feature: the policy in force, and the after-change hook the assembly
    gives the store, so that every change of an order re-projects it in its own transaction."""

    policy: Callable[[], Policy]
    email: bool = False  # SMTP is configured

    def after_change(self, tx: Transaction, order: ServiceOrder, plan: Plan | None, ctx: Context) -> None:
        refresh_jeopardy(tx, order, plan, self.policy(), parse_datetime(ctx.now), email=self.email)


class EscalationNotFound(LookupError):
    """The order has no active escalation by that rule."""

    def __init__(self, order_id: str, rule: str) -> None:
        super().__init__(f"service order {order_id!r} has no active escalation by rule {rule!r}")


# --- the refresh ------------------------------------------------------------------------------


def refresh_jeopardy(
    tx: Transaction,
    order: ServiceOrder,
    plan: Plan | None,
    policy: Policy,
    now: datetime,
    *,
    actor: str = ACTOR,
    email: bool = False,
) -> Assessment | None:
    """Assess, alert, escalate and schedule the next check, in the caller's transaction."""
    stamp = format_datetime(now)
    if plan is not None:
        tx.jeopardy.record_durations(_finished_now(order, plan, stamp))
    run = EscalationRun(tx, policy, now, actor, email)
    if order.is_terminal or order.deleted or (plan is not None and plan.cancellation is not None):
        _stop(run, order)  # finished, or being cancelled: its commitment no longer stands
        return None
    # Without rules only the auto-cancel needs it, and only on a state change: spare the query.
    needed = bool(policy.rules) or _state_changed(order)
    state_since = _state_since(order, tx.jeopardy) if needed else parse_datetime(order.order_date)
    _schedule_auto_cancel(tx, order, policy, state_since, now)
    assessment = _assess(run, order, plan, state_since)
    for _ in range(3 if policy.rules else 0):
        # A step that moves the order (hold) changes the facts the rules see: evaluate again.
        state = order.state
        escalate(run, order, order_facts(order, level=order.jeopardy_level, now=now, state_since=state_since))
        if order.state == state:
            break
        state_since = now
    if order.is_terminal:
        _stop(run, order)
    else:
        _schedule_check(run, order, assessment, state_since)
    return assessment


def _assess(
    run: EscalationRun, order: ServiceOrder, plan: Plan | None, state_since: datetime
) -> Assessment | None:
    """The projection against the commitment, recorded on the order: a jeopardyAlert when the level
    changes, and `expectedCompletionDate`. A plan waiting for its requested start is assessed when
    it starts (the engine refreshes then)."""
    if plan is None or not plan.started or not plan.activities:
        return None
    facts = order_facts(order, level=order.jeopardy_level, now=run.now, state_since=state_since)
    assessment = assess(
        _timings(order, plan, run.policy, run.tx.jeopardy, run.now),
        now=run.now,
        commitment=commitment_of(order, run.policy, facts),
        thresholds=run.policy.thresholds,
    )
    level = assessment.level.value
    order.record_jeopardy(
        level, name=f"order {ALERT_NAMES[level]}", message=assessment.reason, now=run.stamp, actor=run.actor
    )
    order.set_expected_completion(format_datetime(assessment.projection), now=run.stamp, actor=run.actor)
    return assessment


def _schedule_check(
    run: EscalationRun, order: ServiceOrder, assessment: Assessment | None, state_since: datetime
) -> None:
    """ONE check job, at the next instant the level or a time-based rule can change; none if never."""
    candidates = [
        assessment.next_change if assessment else None,
        next_flip(
            run.policy.rules,
            order_facts(order, level=order.jeopardy_level, now=run.now, state_since=state_since),
            now=run.now,
            state_since=state_since,
            order_date=parse_datetime(order.order_date),
        ),
    ]
    due = min((c for c in candidates if c is not None), default=None)
    if due is None:
        run.tx.cancel_job(CHECK_JOB, order.id)
    else:
        run.tx.schedule_job(JobRequest(CHECK_JOB, order.id, due), now=run.now)


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
    order: ServiceOrder, plan: Plan, policy: Policy, records: JeopardyRecords, now: datetime
) -> list[ActivityTiming]:
    unfinished = [a for a in plan.activities if a.state not in ACTIVITY_TERMINAL]
    expected: dict[tuple[str, str], timedelta] = {}
    timings = []
    for a in unfinished:
        key = (_specification(order, a.item_id), a.name)
        if key not in expected:
            learned = records.learned_seconds(
                *key, percentile=policy.learned_percentile, min_samples=policy.learned_min_samples
            )
            expected[key] = timedelta(seconds=a.expected_seconds if learned is None else learned)
        timings.append(
            ActivityTiming(
                a.id, a.name, _on_the_clock(a, expected[key], now), tuple(a.predecessors), _started(a)
            )
        )
    return timings


def _on_the_clock(activity: Activity, work: timedelta, now: datetime) -> timedelta:
    """How long the activity takes on the clock from its start (or its planned start): its group's
    working hours, its appointment and its partner's own date stretch the work (docs/coordination.md)."""
    a = activity
    if a.working_hours is None and a.earliest_start is None and a.owner_expected_end is None:
        return work
    started = _started(a)
    if started is not None:
        begin = parse_datetime(a.work_started or a.actual_start or format_datetime(started))
    else:
        started = begin = parse_datetime(a.planned_start) if a.planned_start else now
    return max(timedelta(0), a.finish_after(begin, work.total_seconds()) - started)


def _started(activity: Activity) -> datetime | None:
    if activity.state == ActivityState.PLANNED or activity.actual_start is None:
        return None
    return parse_datetime(activity.actual_start)


def _schedule_auto_cancel(
    tx: Transaction, order: ServiceOrder, policy: Policy, state_since: datetime, now: datetime
) -> None:
    if not _state_changed(order):
        return  # the job follows state changes only: scheduled on entering pending, dropped on leaving
    if order.state == OrderState.PENDING and policy.pending_auto_cancel is not None:
        due = state_since + policy.pending_auto_cancel
        payload = {"pendingSince": format_datetime(state_since)}
        tx.schedule_job(JobRequest(AUTO_CANCEL_JOB, order.id, due, payload), now=now)
    else:
        tx.cancel_job(AUTO_CANCEL_JOB, order.id)


def _stop(run: EscalationRun, order: ServiceOrder) -> None:
    """The order is finished: no more checks, ladders or auto-cancel."""
    run.tx.cancel_job(CHECK_JOB, order.id)
    run.tx.cancel_job(AUTO_CANCEL_JOB, order.id)
    for escalation in run.tx.jeopardy.escalations(order.id):
        clear(run, order, escalation, why=f"the order is {order.state}")


# --- jobs and operators -----------------------------------------------------------------------


def check(store: Store, order_id: str, *, ctx: Context) -> None:
    """The timer came due (a jeopardy check or an escalation step): time is the change, and the
    after-change hook refreshes the order."""
    change_order(store, order_id, lambda _tx, _order, _plan: None, ctx=ctx)


def auto_cancel(store: Store, order_id: str, *, pending_since: str, ctx: Context) -> bool:
    """Cancel the order if it is still pending since `pending_since`; True if it was cancelled."""

    def change(tx: Transaction, order: ServiceOrder, _plan: Plan | None) -> bool:
        since = _state_since(order, tx.jeopardy)
        if order.state != OrderState.PENDING or since != parse_datetime(pending_since):
            return False
        add_note(
            order,
            f"Cancelled by provtrack: the information asked for on {pending_since} never came",
            now=ctx.now,
            actor=ctx.actor,
        )
        order.move_to(OrderState.CANCELLED, now=ctx.now, actor=ctx.actor)
        return True

    return change_order(store, order_id, change, ctx=ctx)


def acknowledge(
    store: Store, monitor: JeopardyMonitor, order_id: str, rule: str, *, ctx: Context
) -> dict[str, Any]:
    """An operator has taken the escalation: its ladder stops climbing."""

    def change(tx: Transaction, order: ServiceOrder, _plan: Plan | None) -> dict[str, Any]:
        escalation = next((e for e in tx.jeopardy.escalations(order_id) if e.rule == rule), None)
        if escalation is None:
            raise EscalationNotFound(order_id, rule)
        if not escalation.acknowledged:
            escalation.acknowledged_at = ctx.now
            escalation.acknowledged_by = ctx.actor
            tx.jeopardy.save_escalation(escalation)
            tx.cancel_job(STEP_JOB, f"{order_id}:{rule}")
            order.changes.append(Change(subject(rule), "acknowledged", None, ctx.actor, ctx.now, ctx.actor))
            order.events.append(OrderEvent(EventType.ORDER_JEOPARDY, ctx.now))
        return escalation.to_document(_rule(monitor.policy(), rule))

    return change_order(store, order_id, change, ctx=ctx)


def jeopardy_view(store: Store, monitor: JeopardyMonitor, order_id: str, *, now: datetime) -> dict[str, Any]:
    """Level, projection, commitment, alerts and active escalations of an order."""
    policy = monitor.policy()
    with store.transaction(write=False) as tx:
        order = tx.get_order(order_id)
        if order is None:
            raise OrderNotFound(order_id)
        escalations = tx.jeopardy.escalations(order_id)
        since = _state_since(order, tx.jeopardy)
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
