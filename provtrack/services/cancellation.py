"""Use cases of cancellation (docs/cancellation.md): request it, preview it, start it at its requested
date, and the after-change hook that keeps every cancellation under way settled.

A cancel task is assessed and carried out in the transaction of its order, through the unit of work:
the same assessment (`assess_cancellation`) answers the preview and decides the cancellation. The
steps it adds to the plan run as activities; `CancellationBookkeeping.after_change`, given to the
store by the assembly, settles the cancellation after every change that moved one of them, whoever
made it (a downstream notification, a poll, an operator), and finishes the order and the task.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from provtrack.domain.cancellation import CancelServiceOrder, validate_cancel_request
from provtrack.domain.cancellation_impact import Refusal, assess_cancellation
from provtrack.domain.cancellation_steps import (
    HELD_CODE,
    Steps,
    check_state,
    decide,
    finish,
    held_message,
    settle,
)
from provtrack.domain.catalog import ActivityKind, Catalog
from provtrack.domain.clock import parse_datetime
from provtrack.domain.jobs import JobRequest
from provtrack.domain.model import ServiceOrder
from provtrack.domain.partners import DISPATCH_JOB as PARTNER_DISPATCH_JOB
from provtrack.domain.partners import POLL_JOB as PARTNER_POLL_JOB
from provtrack.domain.plan import Plan
from provtrack.domain.states import TaskState
from provtrack.services.ports import Context, Guard, OrderNotFound, Store, TaskNotFound, Then, Transaction
from provtrack.services.provisioning import DISPATCH_JOB, POLL_JOB, START_JOB, hand_out
from provtrack.services.unit_of_work import change_order

START_CANCELLATION_JOB = "cancellation.start"  # key: task id; due at its requestedCancellationDate


@dataclass(frozen=True, slots=True)
class CancellationBookkeeping:
    """Cancellation as a feature: the after-change hook the assembly gives the store. It needs the
    catalog for the undo of an activity that completed while it was being cancelled."""

    catalog: Catalog | None

    def after_change(self, tx: Transaction, order: ServiceOrder, plan: Plan | None, ctx: Context) -> None:
        """Settle the order's cancellation after a change that moved an activity of its plan, then
        check the order is in a state the cancellation allows (a PATCH may not resume it).

        Only a change that moved an activity is settled: such a change saves the plan (every
        activity move is one), so what settling adds to the plan is saved with it."""
        if plan is None or plan.cancellation is None:
            return
        if plan.changes:
            steps = settle(plan, order, catalog=self.catalog, now=ctx.now, actor=ctx.actor, new_id=ctx.new_id)
            follow_up(tx, order, plan, steps, ctx)
            _update_task(tx, order, plan, steps, ctx)
        check_state(order, plan)


def request_cancellation(
    store: Store,
    body: Any,
    *,
    ctx: Context,
    catalog: Catalog | None,
    guard: Guard | None = None,
    then: Then[CancelServiceOrder] | None = None,
) -> CancelServiceOrder:
    """POST /cancelServiceOrder: record the task and carry it out now, or at its requested date.
    `guard` sees the order first (who may cancel it); `then` runs in the same transaction (the
    Idempotency-Key's answer)."""
    checked = validate_cancel_request(body)
    task = CancelServiceOrder.accept(checked, task_id=ctx.new_id(), now=ctx.now, actor=ctx.actor)

    def change(tx: Transaction, order: ServiceOrder, plan: Plan | None) -> CancelServiceOrder:
        if guard is not None:
            guard(order)
        open_cancellation(tx, order, plan, task, catalog=catalog, ctx=ctx)
        if then is not None:
            then(tx, task)
        return task

    return change_order(store, task.service_order_id, change, ctx=ctx, changes_plan=True, plan_optional=True)


def open_cancellation(
    tx: Transaction,
    order: ServiceOrder,
    plan: Plan | None,
    task: CancelServiceOrder,
    *,
    catalog: Catalog | None,
    ctx: Context,
) -> None:
    """Record a new task in the change of its order (saving the plan) and carry it out now, or at
    its requested date: whether it is possible then is assessed then, unless the order is finished
    or already being cancelled, which is answered at once."""
    pending = tx.cancellations.open_task(order.id)
    tx.add_task(task, created_at=ctx.now)
    due = task.requested_date
    if due is not None and parse_datetime(due) > parse_datetime(ctx.now):
        impact = assess_cancellation(order, plan, catalog, pending=pending)
        if impact.refusal not in (Refusal.ORDER_FINISHED, Refusal.CANCELLATION_UNDER_WAY):
            tx.schedule_job(JobRequest(START_CANCELLATION_JOB, task.id, parse_datetime(due)), now=_now(ctx))
            return
    _carry_out(tx, order, plan, task, catalog=catalog, ctx=ctx, pending=pending)


def start_requested_cancellation(
    store: Store, task_id: str, *, ctx: Context, catalog: Catalog | None
) -> None:
    """The requested cancellation date has come: carry the task out (once: it must still wait)."""
    with store.transaction(write=False) as read:
        found = read.cancellations.task(task_id)
    if found is None:
        return

    def change(tx: Transaction, order: ServiceOrder, plan: Plan | None) -> None:
        task = tx.cancellations.task(task_id)
        if task is None or task.state != TaskState.ACKNOWLEDGED:
            return
        _carry_out(tx, order, plan, task, catalog=catalog, ctx=ctx)

    try:
        change_order(store, found.service_order_id, change, ctx=ctx, changes_plan=True, plan_optional=True)
    except OrderNotFound:
        return  # deleted meanwhile: nothing to cancel


def cancellation_impact(store: Store, order_id: str, catalog: Catalog | None) -> dict[str, Any]:
    """GET /provtrack/v1/serviceOrder/{id}/cancellationImpact: the assessment a cancellation would
    act on now, changing nothing."""
    with store.transaction(write=False) as tx:
        order = tx.get_order(order_id)
        if order is None:
            raise OrderNotFound(order_id)
        plan = tx.plans.get(order_id)
        pending = tx.cancellations.open_task(order_id)
    return assess_cancellation(order, plan, catalog, pending=pending).to_document()


def get_task(store: Store, task_id: str) -> CancelServiceOrder:
    with store.transaction(write=False) as tx:
        task = tx.cancellations.task(task_id)
    if task is None:
        raise TaskNotFound(task_id)
    return task


# --- carrying out ------------------------------------------------------------------------------


def _carry_out(
    tx: Transaction,
    order: ServiceOrder,
    plan: Plan | None,
    task: CancelServiceOrder,
    *,
    catalog: Catalog | None,
    ctx: Context,
    pending: CancelServiceOrder | None = None,
) -> None:
    """The task goes inProgress (announced with that state), then the assessment decides."""
    task.finish(TaskState.IN_PROGRESS, now=ctx.now, actor=ctx.actor)
    tx.cancellations.save_task(task)
    impact = assess_cancellation(order, plan, catalog, pending=pending)
    steps = decide(
        order, plan, task, impact, catalog=catalog, now=ctx.now, actor=ctx.actor, new_id=ctx.new_id
    )
    tx.cancellations.save_task(task)
    if steps is not None and plan is not None:
        follow_up(tx, order, plan, steps, ctx)
        if not plan.started:
            tx.cancel_job(START_JOB, order.id)


def follow_up(tx: Transaction, order: ServiceOrder, plan: Plan, steps: Steps, ctx: Context) -> None:
    """Send the steps that started; end the dispatch and polls of what was stopped."""
    hand_out(tx, order, plan, steps.started, ctx)
    for activity_id in steps.dropped:
        partner = plan.activity(activity_id).kind is ActivityKind.PARTNER_ORDER
        tx.cancel_job(PARTNER_DISPATCH_JOB if partner else DISPATCH_JOB, activity_id)
        tx.cancel_job(PARTNER_POLL_JOB if partner else POLL_JOB, activity_id)


def _update_task(tx: Transaction, order: ServiceOrder, plan: Plan, steps: Steps, ctx: Context) -> None:
    """What settling means for the task: done once the order is cancelled, told when it is held."""
    assert plan.cancellation is not None
    if not (steps.complete and not order.is_terminal) and steps.held is None and not steps.resumed:
        return
    task = tx.cancellations.task(plan.cancellation.task_id)
    if task is None:
        return
    if steps.complete and not order.is_terminal:
        finish(order, plan, task, now=ctx.now, actor=ctx.actor)
    elif steps.held is not None:
        task.require_information(HELD_CODE, held_message(steps.held), now=ctx.now, actor=ctx.actor)
    else:
        task.resume(now=ctx.now, actor=ctx.actor)
    tx.cancellations.save_task(task)


def _now(ctx: Context) -> datetime:
    return parse_datetime(ctx.now)
