"""Use cases of the provisioning engine: plan an order, start it, follow its activities, handle fallout.

Each function is one transaction: the order, its plan, the audit rows and the jobs it schedules are
committed together. Nothing here talks to the network: the engine's handlers do, between use cases.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple, TypeVar

from provtrack.domain import plan as planning
from provtrack.domain.activities import (
    OPEN,
    Activity,
    ActivityState,
    activity_of_request,
    resource_order_request,
)
from provtrack.domain.catalog import ActivityKind, Catalog, Progress, fill_template
from provtrack.domain.clock import parse_datetime
from provtrack.domain.jobs import JobRequest, Lease
from provtrack.domain.model import Change, ServiceOrder
from provtrack.domain.partners import DISPATCH_JOB as PARTNER_DISPATCH_JOB
from provtrack.domain.partners import hub_subscription_of, partner_order_request
from provtrack.domain.plan import OrderNotFeasible, Plan
from provtrack.domain.plan_building import template_values
from provtrack.domain.query import Condition, Query, SortKey, Value
from provtrack.domain.states import OrderState
from provtrack.domain.tasks import open_task
from provtrack.services.orders import PLAN_ORDER_JOB
from provtrack.services.ports import ActivityNotFound, Context, Store, Transaction
from provtrack.services.unit_of_work import change_order, plan_order_change

PLAN_JOB = PLAN_ORDER_JOB  # key: order id; scheduled by create_order
START_JOB = "provisioning.start"  # key: order id, due at requestedStartDate
DISPATCH_JOB = "provisioning.dispatch"  # key: activity id
POLL_JOB = "provisioning.poll"  # key: activity id
SUBSCRIBE_JOB = "provisioning.subscribe"  # key: system name
UNSUBSCRIBE_JOB = "provisioning.unsubscribe"  # key: system name, no longer notifying us by its hub
INVENTORY_JOB = "provisioning.inventory"  # key: <order id>/<item id>; TMF638 after an item completes
# key: activity id of a cancellation's withdrawal step (engine/cancellation.py sends it to the
# system or partner of the activity it stops)
WITHDRAW_JOB = "cancellation.withdraw"
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class DispatchRequest:
    """What the engine sends for one attempt of a resource-order activity."""

    activity_id: str
    order_id: str
    attempt: int
    system: str
    body: dict[str, Any]

    @property
    def external_id(self) -> str:
        """What the system knows this attempt by (`Activity.request_id`)."""
        return str(self.body["externalId"])


class Planned(NamedTuple):
    """What planning did (for the log), and the resource orders to send now (see `hand_out`)."""

    outcome: str
    dispatch_now: list[DispatchRequest]


# --- planning and starting ---------------------------------------------------------------------


def plan_order(
    store: Store, order_id: str, catalog: Catalog, *, ctx: Context, lease: Lease | None = None
) -> Planned:
    """Check the order against the catalog: reject it, or build its plan and start it (or schedule
    the start at requestedStartDate). With a `lease`, the resource orders of the activities started
    are the caller's to send at once (`hand_out`)."""

    def build(tx: Transaction, order: ServiceOrder, existing: Plan | None) -> tuple[Plan | None, Planned]:
        if order.state != OrderState.ACKNOWLEDGED or existing is not None:
            return None, Planned("nothing to do", [])
        try:
            plan = planning.build_plan(order, catalog, now=ctx.now, new_id=ctx.new_id)
        except OrderNotFeasible as exc:
            planning.reject(order, exc.problems, now=ctx.now, actor=ctx.actor)
            return None, Planned("rejected", [])
        _take_defined_hours(tx, plan)
        start_at = planning.requested_start(order)
        if start_at is not None and parse_datetime(start_at) > parse_datetime(ctx.now):
            planning.update_expected_completion(plan, order, now=ctx.now, actor=ctx.actor, start_at=start_at)
            tx.schedule_job(JobRequest(START_JOB, order.id, parse_datetime(start_at)), now=_now(ctx))
            outcome = f"planned, starts at {start_at}"
            started: list[Activity] = []
        else:
            started = planning.start(plan, order, now=ctx.now, actor=ctx.actor)
            outcome = "planned and started"
        dispatch_now = hand_out(tx, order, plan, started, ctx, lease=lease)
        _update_inventory(tx, order, {}, catalog, ctx)
        return plan, Planned(outcome, dispatch_now)

    return plan_order_change(store, order_id, build, ctx=ctx)


def plan_stranded_orders(store: Store, *, ctx: Context, batch: int = 500) -> list[str]:
    """Orders accepted while no catalog could plan them (still `acknowledged`, no plan, their planning
    job given up): planning is asked again, now that there is a catalog. Returns their ids."""
    acknowledged = (Condition(("state",), "eq", (Value("text", OrderState.ACKNOWLEDGED.value),)),)
    stranded: list[str] = []
    offset = 0
    with store.transaction(write=False) as tx:
        while True:
            page = tx.list_orders(Query(acknowledged, (SortKey(("orderDate",), False),), offset, batch))
            ids = [json.loads(document)["id"] for document in page.documents]
            stranded += [order_id for order_id in ids if tx.plans.get(order_id) is None]
            offset += batch
            if offset >= page.total or not ids:
                break
    if stranded:
        now = _now(ctx)
        with store.transaction(write=True) as tx:
            for order_id in stranded:
                tx.schedule_job(JobRequest(PLAN_JOB, order_id, now), now=now)
    return stranded


def start_order(store: Store, order_id: str, *, ctx: Context, catalog: Catalog | None = None) -> None:
    """The order's requested start has come: it goes inProgress and its first activities start."""

    def change(tx: Transaction, order: ServiceOrder, plan: Plan) -> None:
        if plan.started:
            return
        hand_out(tx, order, plan, planning.start(plan, order, now=ctx.now, actor=ctx.actor), ctx)

    change_plan(store, order_id, change, catalog=catalog, ctx=ctx)


# --- resource orders ---------------------------------------------------------------------------


def dispatch_request(
    store: Store, activity_id: str, payload: dict[str, Any] | None = None
) -> DispatchRequest | None:
    """The request to send for the activity, or None when it is not (or no longer) to be sent.

    The dispatch job's payload carries the body built when the activity started; a job without one
    (scheduled by an older provtrack) has it built here from the order."""
    payload = payload or {}
    with store.transaction(write=False) as tx:
        activity = tx.plans.get_activity(activity_id)
        if activity is None or not _awaits_dispatch(activity):
            return None
        body = payload.get("body") if payload.get("attempt") == activity.attempt else None
        if not isinstance(body, dict):
            order = tx.get_order(activity.order_id)
            if order is None:
                return None
            body = resource_order_request(activity, order.attributes)
        return DispatchRequest(activity.id, activity.order_id, activity.attempt, activity.owner, body)


def still_to_send(store: Store, request: DispatchRequest) -> bool:
    """Whether a resource order handed out earlier is still to be sent: its activity still waits
    for it, in the same attempt (an operator may have skipped, failed or retried it meanwhile)."""
    with store.transaction(write=False) as tx:
        activity = tx.plans.get_activity(request.activity_id)
    return activity is not None and _awaits_dispatch(activity) and activity.attempt == request.attempt


def _awaits_dispatch(activity: Activity) -> bool:
    """A resource-order activity started and not sent yet."""
    return (
        activity.kind is ActivityKind.RESOURCE_ORDER
        and activity.state == ActivityState.IN_PROGRESS
        and activity.external_id is None
    )


def release_dispatch(
    store: Store,
    activity_id: str,
    *,
    owner: str,
    due_at: datetime | None = None,
    error: str = "",
    failed: datetime | None = None,
) -> None:
    """The caller holding an activity's dispatch job (`hand_out`) does not send it: the workers
    run it, at once, or at `due_at` as after a failed run of the job (or never, `failed`)."""
    with store.transaction(write=True) as tx:
        tx.release_job(DISPATCH_JOB, activity_id, owner=owner, due_at=due_at, error=error, failed=failed)


def record_resource_order(
    store: Store,
    activity_id: str,
    attempt: int,
    resource_order: dict[str, Any],
    catalog: Catalog,
    *,
    ctx: Context,
    order_id: str | None = None,
    lease: Lease | None = None,
) -> list[DispatchRequest]:
    """The downstream system accepted our POST: keep its id, apply its state and any notification
    that arrived before the POST returned, and keep following it. The dispatch job is done. Returns
    the resource orders the caller is to send now (with a `lease`, see `hand_out`)."""

    def change(tx: Transaction, order: ServiceOrder, plan: Plan) -> list[DispatchRequest]:
        activity = plan.activity(activity_id)
        if activity.attempt != attempt:
            return []  # an operator retried meanwhile: this answer belongs to an older attempt
        tx.cancel_job(DISPATCH_JOB, activity_id)
        followed = activity.external_id is not None  # a poll job may exist only once the id is known
        if activity.external_id is None:
            activity.external_id = str(resource_order.get("id") or "")
            plan.changes.append(_change(activity, "externalId", None, activity.external_id, ctx))
        reason = _reason(resource_order)
        started = _apply_state(plan, order, activity, str(resource_order.get("state") or ""), reason, ctx=ctx)
        system = catalog.systems.get(activity.owner)
        if system is None or system.progress is Progress.HUB:  # only a hub notification can be parked
            for state, parked_reason in tx.plans.take_parked_notifications(
                activity.owner, activity.external_id
            ):
                started += _apply_state(plan, order, activity, state, parked_reason, ctx=ctx)
        dispatch_now = hand_out(tx, order, plan, started, ctx, lease=lease)
        _follow(tx, activity, catalog, ctx, followed=followed)
        read_now_if_subscribed_since(tx, activity, POLL_JOB, catalog, ctx)
        return dispatch_now

    return change_plan(store, order_id or order_of(store, activity_id), change, catalog=catalog, ctx=ctx)


def record_refusal(
    store: Store,
    activity_id: str,
    attempt: int,
    status: int,
    body: Any,
    *,
    ctx: Context,
    order_id: str | None = None,
) -> None:
    """The downstream system refused our POST (4xx): the activity falls out with the answer kept."""

    def change(tx: Transaction, order: ServiceOrder, plan: Plan) -> None:
        activity = plan.activity(activity_id)
        if activity.attempt != attempt or activity.state != ActivityState.IN_PROGRESS:
            return
        tx.cancel_job(DISPATCH_JOB, activity_id)
        activity.error = {"status": status, "body": body}
        message = body.get("message") or body.get("reason") if isinstance(body, dict) else None
        activity.reason = f"{activity.owner} refused the resource order with HTTP {status}" + (
            f": {message}" if message else ""
        )
        hand_out(
            tx,
            order,
            plan,
            planning.finish_move(plan, order, activity, ActivityState.FALLOUT, now=ctx.now, actor=ctx.actor),
            ctx,
        )

    change_plan(store, order_id or order_of(store, activity_id), change, ctx=ctx)


def record_notification(
    store: Store, system: str, resource_order: dict[str, Any], catalog: Catalog, *, ctx: Context
) -> str:
    """A resource order's state, as a notification or a poll reported it. Returns how it was used:
    `applied`, `stale` (an older attempt, or not ours) or `parked` (its POST has not returned yet)."""
    external_id = str(resource_order.get("id") or "")
    state = str(resource_order.get("state") or "")
    if not external_id or not state:
        return "stale"
    reason = _reason(resource_order)
    match = activity_of_request(resource_order.get("externalId"), resource_order.get("externalReference"))
    order_id: str | None = None
    activity_id: str | None = None
    if match is not None:
        activity_id = match[0]
        with store.transaction(write=False) as read:
            order_id = read.plans.order_of_activity(activity_id)
    if order_id is None:
        with store.transaction(write=True) as tx:
            found = tx.plans.activity_by_external_id(system, external_id)
            if found is None:
                tx.plans.park_notification(system, external_id, state, reason, ctx.now)
                return "parked"
        activity_id, order_id = found
    outcome = "stale"

    def change(tx: Transaction, order: ServiceOrder, plan: Plan) -> None:
        nonlocal outcome
        assert activity_id is not None
        activity = plan.activity(activity_id)
        if activity.owner != system:
            return
        if activity.external_id is None:
            if match is None or match[1] not in (0, activity.attempt):
                return
            activity.external_id = external_id
            plan.changes.append(_change(activity, "externalId", None, external_id, ctx))
        elif activity.external_id != external_id:
            return
        outcome = "applied"
        hand_out(tx, order, plan, _apply_state(plan, order, activity, state, reason, ctx=ctx), ctx)
        _follow(tx, activity, catalog, ctx, followed=True)

    change_plan(store, order_id, change, catalog=catalog, ctx=ctx)
    return outcome


def poll_target(store: Store, activity_id: str) -> tuple[str, str] | None:
    """(system, downstream id) to look at, or None when the activity is no longer waiting."""
    with store.transaction(write=False) as tx:
        activity = tx.plans.get_activity(activity_id)
    if activity is None or activity.state not in OPEN or activity.external_id is None:
        return None
    return activity.owner, activity.external_id


# --- helpers -----------------------------------------------------------------------------------


def change_plan(
    store: Store,
    order_id: str,
    change: Callable[[Transaction, ServiceOrder, Plan], T],
    *,
    ctx: Context,
    catalog: Catalog | None = None,
    optimistic: bool = True,
) -> T:
    """An engine change of an order and its plan (optimistic unless told, see `change_order`), and
    with a catalog the TMF638 inventory jobs of the items it completes."""

    def change_and_follow_items(tx: Transaction, order: ServiceOrder, plan: Plan | None) -> T:
        assert plan is not None  # changes_plan: the unit of work raised PlanNotFound
        before = {i.id: i.state for i in order.all_items()}
        result = change(tx, order, plan)
        if catalog is not None:
            _update_inventory(tx, order, before, catalog, ctx)
        return result

    return change_order(
        store, order_id, change_and_follow_items, ctx=ctx, changes_plan=True, optimistic=optimistic
    )


def order_of(store: Store, activity_id: str) -> str:
    with store.transaction(write=False) as tx:
        order_id = tx.plans.order_of_activity(activity_id)
    if order_id is None:
        raise ActivityNotFound(activity_id)
    return order_id


def _apply_state(
    plan: Plan, order: ServiceOrder, activity: Activity, state: str, reason: str | None, *, ctx: Context
) -> list[Activity]:
    return planning.record_downstream_state(
        plan, order, activity, state, reason=reason, now=ctx.now, actor=ctx.actor
    )


def hand_out(
    tx: Transaction,
    order: ServiceOrder,
    plan: Plan,
    started: list[Activity],
    ctx: Context,
    *,
    lease: Lease | None = None,
) -> list[DispatchRequest]:
    """Dispatch the activities that just started: a job per resource order, in this transaction,
    carrying the request to send (built now, from the order at hand: the dispatch reads no order).

    With a `lease` the jobs are scheduled held by the caller, who sends them at once after the
    commit (returned here): no claim, no wake-up in between. Should the caller die first, another
    worker runs them when the lease expires.

    A manual task opens a task in its work group's queue; a partner order gets a job that sends it
    to the partner (docs/coordination.md). Characteristics taken from an earlier task's checklist
    are filled now, from the item as it is.
    """
    now = _now(ctx)
    dispatch_now = []
    for activity in started:
        if activity.deferred_characteristics:
            values = template_values(order, order.item(activity.item_id))
            for name, template in activity.deferred_characteristics.items():
                activity.characteristics[name] = fill_template(template, values)
            activity.deferred_characteristics = {}
        if activity.withdraws is not None:  # a cancellation's step: cancelResourceOrder/cancelServiceOrder
            tx.schedule_job(JobRequest(WITHDRAW_JOB, activity.id, now), now=now)
        elif activity.kind is ActivityKind.RESOURCE_ORDER:
            body = resource_order_request(activity, order.attributes)
            payload = {"attempt": activity.attempt, "body": body}
            tx.schedule_job(JobRequest(DISPATCH_JOB, activity.id, now, payload, lease), now=now)
            if lease is not None:
                dispatch_now.append(
                    DispatchRequest(activity.id, activity.order_id, activity.attempt, activity.owner, body)
                )
        elif activity.kind is ActivityKind.MANUAL_TASK:
            task = open_task(activity, order, task_id=ctx.new_id(), now=ctx.now, actor=ctx.actor)
            activity.external_id = task.id  # the work it was handed out as
            tx.tasks.add(task)
        else:
            payload = {"attempt": activity.attempt, "body": partner_order_request(activity, order)}
            tx.schedule_job(JobRequest(PARTNER_DISPATCH_JOB, activity.id, now, payload), now=now)
    return dispatch_now


def _take_defined_hours(tx: Transaction, plan: Plan) -> None:
    """A work group redefined through the work API gives its manual tasks its working hours."""
    for activity in plan.activities:
        if activity.kind is ActivityKind.MANUAL_TASK:
            defined = tx.tasks.work_group(activity.owner)
            if defined is not None:
                activity.working_hours = None if defined.hours.always else defined.hours


def _follow(tx: Transaction, activity: Activity, catalog: Catalog, ctx: Context, *, followed: bool) -> None:
    """Keep a poll job for an activity that still waits on its system (the safety poll with a hub);
    drop it once the activity no longer waits (`followed`: a poll job may exist)."""
    if activity.state not in OPEN or activity.external_id is None:
        if followed:
            tx.cancel_job(POLL_JOB, activity.id)
        return
    system = catalog.systems.get(activity.owner)
    interval = system.poll_interval if system is not None else timedelta(minutes=1)
    now = _now(ctx)
    tx.schedule_job(JobRequest(POLL_JOB, activity.id, now + interval), now=now)


def read_now_if_subscribed_since(
    tx: Transaction, activity: Activity, poll_job: str, catalog: Catalog, ctx: Context
) -> None:
    """The answer to an activity's send is recorded: if our hub subscription at its owner was made
    after the activity started, the owner may have notified before it (to nobody), and the read that
    followed the subscription came before the activity had its downstream id: its `poll_job` runs
    now. The store decides in commit order with the subscription's own transaction (one of the two
    sees the other); a subscription not made yet will read the activity itself."""
    subscription = hub_subscription_of(activity, catalog)
    if subscription is None or activity.actual_start is None:
        return
    if activity.state in OPEN and activity.external_id:
        now = _now(ctx)
        tx.run_job_if_subscribed_since(subscription, activity.actual_start, poll_job, activity.id, now=now)


def _reason(resource_order: dict[str, Any]) -> str | None:
    """Why a resource order is where it is: TMF652 v4 has no reason field, so the last note says."""
    for key in ("stateReason", "cancellationReason"):
        if resource_order.get(key):
            return str(resource_order[key])
    notes = resource_order.get("note") or []
    return (
        str(notes[-1].get("text"))
        if notes and isinstance(notes[-1], dict) and notes[-1].get("text")
        else None
    )


def _change(activity: Activity, attribute: str, old: Any, new: Any, ctx: Context) -> Change:
    return Change(activity.subject, attribute, old, new, ctx.now, ctx.actor)


def _update_inventory(
    tx: Transaction,
    order: ServiceOrder,
    before: dict[str, OrderState],
    catalog: Catalog,
    ctx: Context,
) -> None:
    """A job per item that has just completed, when a TMF638 inventory is configured."""
    if not catalog.inventory_url:
        return
    now = _now(ctx)
    for item in order.all_items():
        if item.state == OrderState.COMPLETED and before.get(item.id) != OrderState.COMPLETED:
            tx.schedule_job(JobRequest(INVENTORY_JOB, f"{order.id}/{item.id}", now), now=now)


def _now(ctx: Context) -> datetime:
    return parse_datetime(ctx.now)
