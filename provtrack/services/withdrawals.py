"""Use cases of a cancellation's withdrawal steps: what to send to stop an activity's downstream order
(TMF652 cancelResourceOrder at a system, TMF641 cancelServiceOrder at a partner), and recording what
the owner answered or later reported.

A withdrawal is an activity of the plan (`withdraws` names the activity it stops); each answer is one
change of the order through the unit of work, after which the cancellation hook settles the
cancellation (services/cancellation.py). Nothing here talks to the network: engine/cancellation.py
does, between these use cases.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from provtrack.domain import plan as planning
from provtrack.domain.activities import OPEN, Activity, ActivityState
from provtrack.domain.cancellation_steps import TARGET
from provtrack.domain.catalog import ActivityKind, Catalog
from provtrack.domain.clock import parse_datetime
from provtrack.domain.jobs import JobRequest
from provtrack.domain.model import Change, ServiceOrder
from provtrack.domain.partners import POLL_JOB as PARTNER_POLL_JOB
from provtrack.domain.plan import Plan
from provtrack.services.ports import Context, Store, Transaction
from provtrack.services.provisioning import (
    POLL_JOB,
    change_plan,
    hand_out,
    order_of,
    read_now_if_subscribed_since,
)

FOLLOW_JOB = "cancellation.followWithdrawal"  # key: withdrawal step id; its cancel task, polled
DEFAULT_FOLLOW = timedelta(minutes=1)  # without the system or partner in the catalog
# TaskStateType of a cancel task (TMF652 cancelResourceOrder, TMF641 cancelServiceOrder alike).
CANCEL_DONE = "done"
CANCEL_REFUSED = "terminatedWithError"


@dataclass(frozen=True, slots=True)
class WithdrawalRequest:
    """What the engine needs to stop one activity's downstream order."""

    step_id: str
    order_id: str
    attempt: int
    kind: ActivityKind  # of the activity stopped: a resource order, or a partner order
    owner: str  # its system, or its partner
    resource_order_id: str | None  # None: not known yet (its POST may be on the way): look it up
    request_external_id: str  # the externalId the activity's order was sent with
    reason: str


@dataclass(frozen=True, slots=True)
class FollowTarget:
    """What to read at the system (or partner) about a withdrawal under way."""

    kind: ActivityKind
    owner: str
    cancellation_id: str | None  # the cancel task, once sent
    resource_order_id: str | None  # the order itself, when no activity follows it any more


def withdrawal_request(store: Store, step_id: str) -> WithdrawalRequest | None:
    """The request for a withdrawal that is still to be sent, or None."""
    with store.transaction(write=False) as tx:
        step = tx.plans.get_activity(step_id)
        if step is None or step.withdraws is None or step.state != ActivityState.IN_PROGRESS:
            return None
        if step.external_id is not None:
            return None  # sent already: followed by FOLLOW_JOB
        target = tx.plans.get_activity(step.withdraws)
        order = tx.get_order(step.order_id)
    if target is None or order is None:
        return None
    reason = order.attributes.get("cancellationReason") or "the customer cancelled"
    return WithdrawalRequest(
        step.id,
        step.order_id,
        step.attempt,
        target.kind,
        step.owner,
        target.external_id,
        target.request_id,
        f"service order {order.id} is cancelled: {reason}",
    )


def record_found_order(
    store: Store,
    request: WithdrawalRequest,
    resource_order: dict[str, Any],
    catalog: Catalog,
    *,
    ctx: Context,
) -> None:
    """The lookup found the order the stopped activity's POST created: the activity knows it now,
    and follows it until the withdrawal has stopped it."""

    def change(tx: Transaction, order: ServiceOrder, plan: Plan) -> None:
        step = plan.activity(request.step_id)
        target = plan.activity(step.withdraws or "")
        if target.external_id is not None:
            return
        target.external_id = str(resource_order.get("id") or "")
        plan.changes.append(_change(target, "externalId", None, target.external_id, ctx))
        state = str(resource_order.get("state") or "")
        started = planning.record_downstream_state(
            plan, order, target, state, reason=None, now=ctx.now, actor=ctx.actor
        )
        hand_out(tx, order, plan, started, ctx)
        if target.state in OPEN:
            poll = PARTNER_POLL_JOB if target.kind is ActivityKind.PARTNER_ORDER else POLL_JOB
            tx.schedule_job(
                JobRequest(poll, target.id, _now(ctx) + _interval(catalog, target)), now=_now(ctx)
            )

    change_plan(store, request.order_id, change, ctx=ctx)


def record_nothing_to_withdraw(store: Store, request: WithdrawalRequest, *, ctx: Context) -> None:
    """The system has no order from the stopped activity: it never reached it, nothing to cancel."""

    def change(tx: Transaction, order: ServiceOrder, plan: Plan) -> None:
        step = plan.activity(request.step_id)
        if step.attempt != request.attempt or step.state != ActivityState.IN_PROGRESS:
            return
        step.reason = f"{step.owner} has no order for it: it was never sent"
        hand_out(tx, order, plan, _move(plan, order, step, ActivityState.DONE, ctx), ctx)

    change_plan(store, request.order_id, change, ctx=ctx)


def record_waiting(store: Store, request: WithdrawalRequest, catalog: Catalog, *, ctx: Context) -> None:
    """The system cannot cancel: the withdrawal waits for the order to end (settled when it does)."""

    def change(tx: Transaction, order: ServiceOrder, plan: Plan) -> None:
        step = plan.activity(request.step_id)
        if step.attempt != request.attempt or step.state != ActivityState.IN_PROGRESS:
            return
        step.reason = f"{step.owner} cannot cancel it: waiting for it to end, to undo it if it can be"
        step.move(ActivityState.BLOCKED, now=ctx.now, actor=ctx.actor, changes=plan.changes)
        _follow(tx, plan, step, catalog, ctx)

    change_plan(store, request.order_id, change, ctx=ctx)


def record_withdrawal_sent(
    store: Store,
    request: WithdrawalRequest,
    resource_order_id: str,
    cancellation: dict[str, Any],
    catalog: Catalog,
    *,
    ctx: Context,
) -> None:
    """The owner took the cancel (or had it already): keep the cancel task's id and apply its state."""

    def change(tx: Transaction, order: ServiceOrder, plan: Plan) -> None:
        step = plan.activity(request.step_id)
        if step.attempt != request.attempt or step.state != ActivityState.IN_PROGRESS:
            return
        step.external_id = str(cancellation.get("id") or "")
        step.characteristics = {**step.characteristics, TARGET[step.kind]: resource_order_id}
        plan.changes.append(_change(step, "externalId", None, step.external_id, ctx))
        _apply_cancellation_state(tx, order, plan, step, cancellation, catalog=catalog, ctx=ctx)
        read_now_if_subscribed_since(tx, step, FOLLOW_JOB, catalog, ctx)  # a cancel sent as we subscribed

    change_plan(store, request.order_id, change, ctx=ctx)


def record_withdrawal_refused(
    store: Store, request: WithdrawalRequest, status: int, body: Any, *, ctx: Context
) -> None:
    """The owner refused the cancel (4xx): the step falls out, the order is held."""

    def change(tx: Transaction, order: ServiceOrder, plan: Plan) -> None:
        step = plan.activity(request.step_id)
        if step.attempt != request.attempt or step.state != ActivityState.IN_PROGRESS:
            return
        step.error = {"status": status, "body": body}
        message = (body.get("message") or body.get("reason")) if isinstance(body, dict) else None
        step.reason = f"{step.owner} refused to cancel the {_what(step)} (HTTP {status})" + (
            f": {message}" if message else ""
        )
        hand_out(tx, order, plan, _move(plan, order, step, ActivityState.FALLOUT, ctx), ctx)

    change_plan(store, request.order_id, change, ctx=ctx)


def record_cancellation_state(
    store: Store, system: str, cancellation: dict[str, Any], catalog: Catalog, *, ctx: Context
) -> str:
    """A cancel task's state, as a notification or a poll reported it: `applied` or `stale`. `system`
    is the owner: a system, or a partner (whose notifications only make provtrack read it)."""
    cancellation_id = str(cancellation.get("id") or "")
    with store.transaction(write=False) as tx:
        found = tx.plans.activity_by_external_id(system, cancellation_id) if cancellation_id else None
    if found is None:
        return "stale"
    step_id, order_id = found
    outcome = "stale"

    def change(tx: Transaction, order: ServiceOrder, plan: Plan) -> None:
        nonlocal outcome
        step = plan.activity(step_id)
        if step.withdraws is None or step.state not in OPEN:
            return
        outcome = "applied"
        _apply_cancellation_state(tx, order, plan, step, cancellation, catalog=catalog, ctx=ctx)

    change_plan(store, order_id, change, ctx=ctx)
    return outcome


def nudge_withdrawal(store: Store, partner: str, cancellation: dict[str, Any], *, now: datetime) -> str:
    """A partner's notification about one of its cancel tasks: read the task now (the withdrawal's
    follow job, due at once), whatever the notification claims. Returns `read` when the task is one
    of our withdrawals', `unknown` otherwise."""
    cancellation_id = str(cancellation.get("id") or "")
    with store.transaction(write=True) as tx:
        found = tx.plans.activity_by_external_id(partner, cancellation_id) if cancellation_id else None
        if found is None:
            return "unknown"
        tx.schedule_job(JobRequest(FOLLOW_JOB, found[0], now), now=now)
    return "read"


def follow_target(store: Store, step_id: str) -> FollowTarget | None:
    """What to read about a withdrawal still open: its cancel task, and its order when the activity
    that created it no longer follows it. None when there is nothing to follow."""
    with store.transaction(write=False) as tx:
        step = tx.plans.get_activity(step_id)
        if step is None or step.withdraws is None or step.state not in OPEN:
            return None
        target = tx.plans.get_activity(step.withdraws)
    if target is None:
        return None
    unfollowed = target.external_id if target.state not in OPEN else None
    if step.external_id is None and unfollowed is None:
        return None
    return FollowTarget(target.kind, step.owner, step.external_id, unfollowed)


def record_withdrawn_order(
    store: Store, step_id: str, resource_order: dict[str, Any], catalog: Catalog, *, ctx: Context
) -> None:
    """The state of an order no activity follows any more (it was stopped before its POST answered):
    stopped is what the withdrawal wanted; delivered anyway needs an operator."""

    def change(tx: Transaction, order: ServiceOrder, plan: Plan) -> None:
        step = plan.activity(step_id)
        if step.state not in OPEN:
            return
        state = str(resource_order.get("state") or "")
        if state in ("cancelled", "failed", "rejected"):
            step.reason = f"the {_what(step)} is {state}"
            hand_out(tx, order, plan, _move(plan, order, step, ActivityState.DONE, ctx), ctx)
        elif state in ("completed", "partial"):
            step.reason = f"the {_what(step)} was {state} before it could be cancelled"
            hand_out(tx, order, plan, _move(plan, order, step, ActivityState.FALLOUT, ctx), ctx)
        else:
            _follow(tx, plan, step, catalog, ctx)

    change_plan(store, order_of(store, step_id), change, ctx=ctx)


def _apply_cancellation_state(
    tx: Transaction,
    order: ServiceOrder,
    plan: Plan,
    step: Activity,
    cancellation: dict[str, Any],
    *,
    catalog: Catalog,
    ctx: Context,
) -> None:
    state = str(cancellation.get("state") or "")
    step.external_state = state
    if state == CANCEL_DONE:
        step.reason = None
        hand_out(tx, order, plan, _move(plan, order, step, ActivityState.DONE, ctx), ctx)
    elif state == CANCEL_REFUSED:
        detail = _detail(cancellation)
        step.reason = f"{step.owner} could not cancel the {_what(step)}" + (f": {detail}" if detail else "")
        hand_out(tx, order, plan, _move(plan, order, step, ActivityState.FALLOUT, ctx), ctx)
    else:
        _follow(tx, plan, step, catalog, ctx)


def _move(
    plan: Plan, order: ServiceOrder, step: Activity, target: ActivityState, ctx: Context
) -> list[Activity]:
    return planning.finish_move(plan, order, step, target, now=ctx.now, actor=ctx.actor)


def _follow(tx: Transaction, plan: Plan, step: Activity, catalog: Catalog, ctx: Context) -> None:
    """Read the withdrawal again after its owner's poll interval (a notification may come first)."""
    now = _now(ctx)
    tx.schedule_job(JobRequest(FOLLOW_JOB, step.id, now + _interval(catalog, step)), now=now)


def _interval(catalog: Catalog, activity: Activity) -> timedelta:
    owner = (
        catalog.partners.get(activity.owner)
        if activity.kind is ActivityKind.PARTNER_ORDER
        else catalog.systems.get(activity.owner)
    )
    return owner.poll_interval if owner is not None else DEFAULT_FOLLOW


def _what(step: Activity) -> str:
    return "partner order" if step.kind is ActivityKind.PARTNER_ORDER else "resource order"


def _detail(document: dict[str, Any]) -> str | None:
    for key in ("stateReason", "completionMessage", "message"):
        if document.get(key):
            return str(document[key])
    notes = document.get("note") or []
    if notes and isinstance(notes[-1], dict) and notes[-1].get("text"):
        return str(notes[-1]["text"])
    error = document.get("errorMessage")
    return str(error.get("message")) if isinstance(error, dict) and error.get("message") else None


def _change(activity: Activity, attribute: str, old: Any, new: Any, ctx: Context) -> Change:
    return Change(activity.subject, attribute, old, new, ctx.now, ctx.actor)


def _now(ctx: Context) -> datetime:
    return parse_datetime(ctx.now)
