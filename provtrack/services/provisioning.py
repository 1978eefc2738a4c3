"""Use cases of the provisioning engine: plan an order, start it, follow its activities, handle fallout.

Each function is one transaction: the order, its plan, the audit rows and the jobs it schedules are
committed together. Nothing here talks to the network: the engine's handlers do, between use cases.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple, Protocol, TypeVar

from provtrack.domain import inventory
from provtrack.domain import plan as planning
from provtrack.domain.activities import (
    OPEN,
    Activity,
    ActivityState,
    activity_of_request,
    resource_order_request,
)
from provtrack.domain.catalog import ActivityKind, Catalog, Progress
from provtrack.domain.clock import parse_datetime
from provtrack.domain.inventory import InventoryUpdate
from provtrack.domain.jobs import JobRequest, Lease
from provtrack.domain.model import Change, ServiceOrder
from provtrack.domain.plan import OrderNotFeasible, Plan
from provtrack.domain.states import OrderState
from provtrack.services import jeopardy
from provtrack.services.orders import PLAN_ORDER_JOB, Context, OrderNotFound
from provtrack.services.ports import ConcurrentUpdate, Transaction

PLAN_JOB = PLAN_ORDER_JOB  # key: order id; scheduled by create_order
START_JOB = "provisioning.start"  # key: order id, due at requestedStartDate
DISPATCH_JOB = "provisioning.dispatch"  # key: activity id
POLL_JOB = "provisioning.poll"  # key: activity id
SUBSCRIBE_JOB = "provisioning.subscribe"  # key: system name
INVENTORY_JOB = "provisioning.inventory"  # key: <order id>/<item id>; TMF638 after an item completes
SAVE_ATTEMPTS = 5
A = ActivityState
T = TypeVar("T")


class ProvisioningTransaction(Transaction, Protocol):
    def add_plan(self, plan: Plan) -> None: ...
    def get_plan(self, order_id: str) -> Plan | None: ...
    def save_plan(self, plan: Plan) -> None: ...
    def get_plan_json(self, order_id: str) -> dict[str, Any] | None: ...
    def get_activity(self, activity_id: str) -> Activity | None: ...
    def order_of_activity(self, activity_id: str) -> str | None: ...
    def activity_by_external_id(self, owner: str, external_id: str) -> tuple[str, str] | None: ...
    def park_notification(
        self, owner: str, external_id: str, state: str, reason: str | None, now: str
    ) -> None: ...
    def take_parked_notifications(self, owner: str, external_id: str) -> list[tuple[str, str | None]]: ...
    def expect_unchanged(self, order: ServiceOrder) -> None: ...
    def release_job(
        self,
        kind: str,
        key: str,
        *,
        owner: str,
        due_at: datetime | None = None,
        error: str = "",
        failed: datetime | None = None,
    ) -> None: ...


class ProvisioningStore(Protocol):
    def transaction(
        self, *, write: bool, optimistic_on: str | None = None
    ) -> AbstractContextManager[ProvisioningTransaction]: ...


class ActivityNotFound(LookupError):
    """No provisioning activity with that id."""

    def __init__(self, activity_id: str) -> None:
        super().__init__(f"no provisioning activity with id {activity_id!r}")


class PlanNotFound(LookupError):
    """The order has no provisioning plan (yet, or it was rejected)."""

    def __init__(self, order_id: str) -> None:
        super().__init__(
            f"service order {order_id!r} has no provisioning plan (not planned yet, or rejected)"
        )


@dataclass(frozen=True, slots=True)
class DispatchRequest:
    """What the engine sends for one attempt of a resource-order activity."""

    activity_id: str
    order_id: str
    attempt: int
    system: str
    body: dict[str, Any]


class Planned(NamedTuple):
    """What planning did (for the log), and the resource orders to send now (see `_hand_out`)."""

    outcome: str
    dispatch_now: list[DispatchRequest]


def subscribe_to_hubs(store: ProvisioningStore, catalog: Catalog, *, ctx: Context) -> None:
    """At start: a job per hub-notifying system registers our listener with its hub."""
    with store.transaction(write=True) as tx:
        for system in catalog.systems.values():
            if system.progress is Progress.HUB:
                tx.schedule_job(JobRequest(SUBSCRIBE_JOB, system.name, _now(ctx)), now=_now(ctx))


# --- planning and starting ---------------------------------------------------------------------


def plan_order(
    store: ProvisioningStore, order_id: str, catalog: Catalog, *, ctx: Context, lease: Lease | None = None
) -> Planned:
    """Check the order against the catalog: reject it, or build its plan and start it (or schedule
    the start at requestedStartDate). With a `lease`, the resource orders of the activities started
    are the caller's to send at once (`_hand_out`)."""
    for attempt in range(SAVE_ATTEMPTS):
        try:
            with store.transaction(write=True, optimistic_on=order_id) as tx:
                return _plan_order(store, tx, order_id, catalog, ctx, lease=lease)
        except ConcurrentUpdate:
            if attempt == SAVE_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def _plan_order(
    store: ProvisioningStore,
    tx: ProvisioningTransaction,
    order_id: str,
    catalog: Catalog,
    ctx: Context,
    *,
    lease: Lease | None,
) -> Planned:
    order = tx.get_order(order_id)
    if order is None or order.state != OrderState.ACKNOWLEDGED or tx.get_plan(order_id) is not None:
        return Planned("nothing to do", [])
    try:
        plan = planning.build_plan(order, catalog, now=ctx.now, new_id=ctx.new_id)
    except OrderNotFeasible as exc:
        planning.reject(order, exc.problems, now=ctx.now, actor=ctx.actor)
        tx.save_order(order)
        return Planned("rejected", [])
    start_at = planning.requested_start(order)
    if start_at is not None and parse_datetime(start_at) > parse_datetime(ctx.now):
        planning.update_expected_completion(plan, order, now=ctx.now, actor=ctx.actor, start_at=start_at)
        tx.schedule_job(JobRequest(START_JOB, order_id, parse_datetime(start_at)), now=_now(ctx))
        outcome = f"planned, starts at {start_at}"
        started: list[Activity] = []
    else:
        started = planning.start(plan, order, now=ctx.now, actor=ctx.actor)
        outcome = "planned and started"
    dispatch_now = _hand_out(tx, order, plan, started, ctx, lease=lease)
    _update_inventory(tx, order, {}, catalog, ctx)
    jeopardy.after_change(store, tx, order, plan, ctx)
    tx.add_plan(plan)
    tx.save_order(order)
    return Planned(outcome, dispatch_now)


def start_order(
    store: ProvisioningStore, order_id: str, *, ctx: Context, catalog: Catalog | None = None
) -> None:
    """The order's requested start has come: it goes inProgress and its first activities start."""

    def change(tx: ProvisioningTransaction, order: ServiceOrder, plan: Plan) -> None:
        if plan.started:
            return
        _hand_out(tx, order, plan, planning.start(plan, order, now=ctx.now, actor=ctx.actor), ctx)

    _change_plan(store, order_id, change, catalog=catalog, ctx=ctx)


# --- resource orders ---------------------------------------------------------------------------


def dispatch_request(
    store: ProvisioningStore, activity_id: str, payload: dict[str, Any] | None = None
) -> DispatchRequest | None:
    """The request to send for the activity, or None when it is not (or no longer) to be sent.

    The dispatch job's payload carries the body built when the activity started; a job without one
    (scheduled by an older provtrack) has it built here from the order."""
    payload = payload or {}
    with store.transaction(write=False) as tx:
        activity = tx.get_activity(activity_id)
        if activity is None or not _awaits_dispatch(activity):
            return None
        body = payload.get("body") if payload.get("attempt") == activity.attempt else None
        if not isinstance(body, dict):
            order = tx.get_order(activity.order_id)
            if order is None:
                return None
            body = resource_order_request(activity, order.attributes)
        return DispatchRequest(activity.id, activity.order_id, activity.attempt, activity.owner, body)


def still_to_send(store: ProvisioningStore, request: DispatchRequest) -> bool:
    """Whether a resource order handed out earlier is still to be sent: its activity still waits
    for it, in the same attempt (an operator may have skipped, failed or retried it meanwhile)."""
    with store.transaction(write=False) as tx:
        activity = tx.get_activity(request.activity_id)
    return activity is not None and _awaits_dispatch(activity) and activity.attempt == request.attempt


def _awaits_dispatch(activity: Activity) -> bool:
    """A resource-order activity started and not sent yet."""
    return (
        activity.kind is ActivityKind.RESOURCE_ORDER
        and activity.state == A.IN_PROGRESS
        and activity.external_id is None
    )


def release_dispatch(
    store: ProvisioningStore,
    activity_id: str,
    *,
    owner: str,
    due_at: datetime | None = None,
    error: str = "",
    failed: datetime | None = None,
) -> None:
    """The caller holding an activity's dispatch job (`_hand_out`) does not send it: the workers
    run it, at once, or at `due_at` as after a failed run of the job (or never, `failed`)."""
    with store.transaction(write=True) as tx:
        tx.release_job(DISPATCH_JOB, activity_id, owner=owner, due_at=due_at, error=error, failed=failed)


def record_resource_order(
    store: ProvisioningStore,
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
    the resource orders the caller is to send now (with a `lease`, see `_hand_out`)."""

    def change(tx: ProvisioningTransaction, order: ServiceOrder, plan: Plan) -> list[DispatchRequest]:
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
            for state, parked_reason in tx.take_parked_notifications(activity.owner, activity.external_id):
                started += _apply_state(plan, order, activity, state, parked_reason, ctx=ctx)
        dispatch_now = _hand_out(tx, order, plan, started, ctx, lease=lease)
        _follow(tx, activity, catalog, ctx, followed=followed)
        return dispatch_now

    return _change_plan(store, order_id or _order_of(store, activity_id), change, catalog=catalog, ctx=ctx)


def record_refusal(
    store: ProvisioningStore,
    activity_id: str,
    attempt: int,
    status: int,
    body: Any,
    *,
    ctx: Context,
    order_id: str | None = None,
) -> None:
    """The downstream system refused our POST (4xx): the activity falls out with the answer kept."""

    def change(tx: ProvisioningTransaction, order: ServiceOrder, plan: Plan) -> None:
        activity = plan.activity(activity_id)
        if activity.attempt != attempt or activity.state != A.IN_PROGRESS:
            return
        tx.cancel_job(DISPATCH_JOB, activity_id)
        activity.error = {"status": status, "body": body}
        message = body.get("message") or body.get("reason") if isinstance(body, dict) else None
        activity.reason = f"{activity.owner} refused the resource order with HTTP {status}" + (
            f": {message}" if message else ""
        )
        _hand_out(
            tx,
            order,
            plan,
            planning.finish_move(plan, order, activity, A.FALLOUT, now=ctx.now, actor=ctx.actor),
            ctx,
        )

    _change_plan(store, order_id or _order_of(store, activity_id), change, ctx=ctx)


def record_notification(
    store: ProvisioningStore, system: str, resource_order: dict[str, Any], catalog: Catalog, *, ctx: Context
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
            order_id = read.order_of_activity(activity_id)
    if order_id is None:
        with store.transaction(write=True) as tx:
            found = tx.activity_by_external_id(system, external_id)
            if found is None:
                tx.park_notification(system, external_id, state, reason, ctx.now)
                return "parked"
        activity_id, order_id = found
    outcome = "stale"

    def change(tx: ProvisioningTransaction, order: ServiceOrder, plan: Plan) -> None:
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
        _hand_out(tx, order, plan, _apply_state(plan, order, activity, state, reason, ctx=ctx), ctx)
        _follow(tx, activity, catalog, ctx, followed=True)

    _change_plan(store, order_id, change, catalog=catalog, ctx=ctx)
    return outcome


def poll_target(store: ProvisioningStore, activity_id: str) -> tuple[str, str] | None:
    """(system, downstream id) to look at, or None when the activity is no longer waiting."""
    with store.transaction(write=False) as tx:
        activity = tx.get_activity(activity_id)
    if activity is None or activity.state not in OPEN or activity.external_id is None:
        return None
    return activity.owner, activity.external_id


def inventory_update(store: ProvisioningStore, order_id: str, item_id: str) -> InventoryUpdate | None:
    """The TMF638 call a completed item needs, or None (not completed, or nothing to write)."""
    with store.transaction(write=False) as tx:
        order = tx.get_order(order_id)
    if order is None or order.item(item_id).state != OrderState.COMPLETED:
        return None
    return inventory.inventory_update(order, item_id)


def record_inventory(
    store: ProvisioningStore, order_id: str, item_id: str, service: dict[str, Any], *, ctx: Context
) -> None:
    """The inventory holds the item's service: the item's `service` gets its id and href."""
    for attempt in range(SAVE_ATTEMPTS):
        try:
            with store.transaction(write=True) as tx:
                order = tx.get_order(order_id)
                if order is None:
                    return
                href = service.get("href")
                inventory.record_inventory_service(
                    order,
                    item_id,
                    str(service["id"]),
                    str(href) if href else None,
                    now=ctx.now,
                    actor=ctx.actor,
                )
                if order.changes or order.events:
                    tx.save_order(order)
                return
        except ConcurrentUpdate:
            if attempt == SAVE_ATTEMPTS - 1:
                raise


# --- operators ---------------------------------------------------------------------------------


def retry_activity(
    store: ProvisioningStore, activity_id: str, *, ctx: Context, catalog: Catalog | None = None
) -> dict[str, Any]:
    return _operate(
        store,
        activity_id,
        lambda p, o, a: planning.retry(p, o, a, now=ctx.now, actor=ctx.actor),
        ctx,
        catalog,
    )


def skip_activity(
    store: ProvisioningStore, activity_id: str, *, reason: str, ctx: Context, catalog: Catalog | None = None
) -> dict[str, Any]:
    return _operate(
        store,
        activity_id,
        lambda p, o, a: planning.skip(p, o, a, reason=reason, now=ctx.now, actor=ctx.actor),
        ctx,
        catalog,
    )


def fail_activity(
    store: ProvisioningStore,
    activity_id: str,
    *,
    reason: str | None = None,
    ctx: Context,
    catalog: Catalog | None = None,
) -> dict[str, Any]:
    return _operate(
        store,
        activity_id,
        lambda p, o, a: planning.fail(p, o, a, reason=reason, now=ctx.now, actor=ctx.actor),
        ctx,
        catalog,
    )


def get_plan(store: ProvisioningStore, order_id: str) -> dict[str, Any]:
    with store.transaction(write=False) as tx:
        document = tx.get_plan_json(order_id)
        if document is None:
            if tx.get_order_json(order_id) is None:
                raise OrderNotFound(order_id)
            raise PlanNotFound(order_id)
        return document


def get_activity(store: ProvisioningStore, activity_id: str) -> dict[str, Any]:
    with store.transaction(write=False) as tx:
        activity = tx.get_activity(activity_id)
    if activity is None:
        raise ActivityNotFound(activity_id)
    return activity.to_document()


# --- helpers -----------------------------------------------------------------------------------

Operation = Callable[[Plan, ServiceOrder, Activity], list[Activity]]


def _operate(
    store: ProvisioningStore,
    activity_id: str,
    operation: Operation,
    ctx: Context,
    catalog: Catalog | None = None,
) -> dict[str, Any]:
    def change(tx: ProvisioningTransaction, order: ServiceOrder, plan: Plan) -> dict[str, Any]:
        activity = plan.activity(activity_id)
        _hand_out(tx, order, plan, operation(plan, order, activity), ctx)
        return activity.to_document()

    return _change_plan(store, _order_of(store, activity_id), change, catalog=catalog, ctx=ctx)


def _order_of(store: ProvisioningStore, activity_id: str) -> str:
    with store.transaction(write=False) as tx:
        order_id = tx.order_of_activity(activity_id)
    if order_id is None:
        raise ActivityNotFound(activity_id)
    return order_id


def _change_plan(
    store: ProvisioningStore,
    order_id: str,
    change: Callable[[ProvisioningTransaction, ServiceOrder, Plan], T],
    *,
    catalog: Catalog | None = None,
    ctx: Context | None = None,
) -> T:
    """Load order and plan, change them, save both; reload and reapply on a concurrent update.

    Optimistic: on SQLite the change is decided without the writer lock, which is held only to
    write it (SqlStore.transaction); a concurrent change of the order or plan makes it start over."""
    for attempt in range(SAVE_ATTEMPTS):
        try:
            with store.transaction(write=True, optimistic_on=order_id) as tx:
                order = tx.get_order(order_id)
                plan = tx.get_plan(order_id)
                if order is None:
                    raise OrderNotFound(order_id)
                if plan is None:
                    raise PlanNotFound(order_id)
                before = {i.id: i.state for i in order.all_items()}
                result = change(tx, order, plan)
                if catalog is not None and ctx is not None:
                    _update_inventory(tx, order, before, catalog, ctx)
                jeopardy.after_change(store, tx, order, plan, ctx)
                tx.save_plan(plan)
                if order.changes or order.events:
                    tx.save_order(order)
                else:
                    tx.expect_unchanged(order)  # the change was decided on this version of it
                return result
        except ConcurrentUpdate:
            if attempt == SAVE_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def _apply_state(
    plan: Plan, order: ServiceOrder, activity: Activity, state: str, reason: str | None, *, ctx: Context
) -> list[Activity]:
    return planning.record_downstream_state(
        plan, order, activity, state, reason=reason, now=ctx.now, actor=ctx.actor
    )


def _hand_out(
    tx: ProvisioningTransaction,
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

    Manual tasks and partner orders have no executor yet (the coordination issue adds them): they
    wait, blocked and saying so, for an operator to skip them when the work is done.
    """
    now = _now(ctx)
    dispatch_now = []
    for activity in started:
        if activity.kind is ActivityKind.RESOURCE_ORDER:
            body = resource_order_request(activity, order.attributes)
            payload = {"attempt": activity.attempt, "body": body}
            tx.schedule_job(JobRequest(DISPATCH_JOB, activity.id, now, payload, lease), now=now)
            if lease is not None:
                dispatch_now.append(
                    DispatchRequest(activity.id, activity.order_id, activity.attempt, activity.owner, body)
                )
        else:
            activity.reason = f"{activity.kind.value} activities are not executed yet: skip it when {activity.owner} is done"
            activity.move(A.BLOCKED, now=ctx.now, actor=ctx.actor, changes=plan.changes)
    return dispatch_now


def _follow(
    tx: ProvisioningTransaction, activity: Activity, catalog: Catalog, ctx: Context, *, followed: bool
) -> None:
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
    tx: ProvisioningTransaction,
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
