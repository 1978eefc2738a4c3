"""The provisioning plan of a service order: run as activities finish, acted on by operators,
scheduled on its critical path, and rolled up to the items and the order. What the catalog makes of
an order (the activities and their graph) is provtrack.domain.plan_building.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from provtrack.domain.activities import (
    ACTIVITY_TERMINAL,
    FINISHED,
    OPEN,
    Activity,
    ActivityState,
    OperatorAction,
)
from provtrack.domain.catalog import ActivityKind, Catalog
from provtrack.domain.clock import format_datetime, parse_datetime
from provtrack.domain.model import Change, EventType, OrderEvent, ServiceOrder
from provtrack.domain.plan_building import ItemProblem, draft_activities
from provtrack.domain.states import TERMINAL_STATES, TRANSITIONS, OrderState

# What a downstream resource order's state means for the activity that created it (TMF652 §7).
DOWNSTREAM_STATE: dict[str, ActivityState] = {
    "acknowledged": ActivityState.IN_PROGRESS,
    "inProgress": ActivityState.IN_PROGRESS,
    "completed": ActivityState.DONE,
    "failed": ActivityState.FALLOUT,
    "rejected": ActivityState.FALLOUT,
    "partial": ActivityState.FALLOUT,
    "cancelled": ActivityState.FALLOUT,
    "held": ActivityState.BLOCKED,
    "pending": ActivityState.BLOCKED,
    "assessingCancellation": ActivityState.BLOCKED,
    "pendingCancellation": ActivityState.BLOCKED,
}


@dataclass(slots=True)
class CancellationUnderWay:
    """The plan is carrying out an accepted cancellation (provtrack.domain.cancellation_steps): the
    order and its items follow the cancellation, not the roll-up."""

    task_id: str  # the CancelServiceOrder being carried out
    accepted_at: str
    holds_order: bool = False  # a step fell out: the order is held until an operator acts

    def to_document(self) -> dict[str, Any]:
        return {"taskId": self.task_id, "acceptedAt": self.accepted_at, "holdsOrder": self.holds_order}

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> CancellationUnderWay:
        return cls(doc["taskId"], doc["acceptedAt"], bool(doc.get("holdsOrder", False)))


@dataclass(eq=False, slots=True)
class Plan:
    order_id: str
    created_at: str
    activities: list[Activity]
    item_waits: dict[str, list[str]]  # items an item waits for (dependencies, nested items)
    critical_path: list[str] = field(default_factory=list)
    started: bool = False
    # The plan held the order for fallout: only such a hold is released when the fallout clears;
    # a hold by an operator, a PATCH or an escalation stays until it is lifted explicitly.
    holds_order: bool = False
    cancellation: CancellationUnderWay | None = None
    changes: list[Change] = field(default_factory=list)
    version: int = 0

    def activity(self, activity_id: str) -> Activity:
        for activity in self.activities:
            if activity.id == activity_id:
                return activity
        raise LookupError(f"plan of service order {self.order_id} has no activity {activity_id!r}")

    def of_item(self, item_id: str) -> list[Activity]:
        return [a for a in self.activities if a.item_id == item_id]

    def withdrawal_of(self, activity: Activity) -> Activity | None:
        """The open cancellation step that cancels this activity's downstream order, if any."""
        for step in self.activities:
            if step.withdraws == activity.id and step.state not in ACTIVITY_TERMINAL:
                return step
        return None

    def to_document(self) -> dict[str, Any]:
        doc = {
            "serviceOrderId": self.order_id,
            "createdAt": self.created_at,
            "started": self.started,
            "holdsOrder": self.holds_order,
            "itemWaits": self.item_waits,
            "criticalPath": self.critical_path,
            "activityOrder": [a.id for a in self.activities],
        }
        if self.cancellation is not None:
            doc["cancellation"] = self.cancellation.to_document()
        return doc

    @classmethod
    def from_document(cls, doc: dict[str, Any], activities: list[Activity], *, version: int = 0) -> Plan:
        return cls(
            order_id=doc["serviceOrderId"],
            created_at=doc["createdAt"],
            activities=activities,
            item_waits={k: list(v) for k, v in doc.get("itemWaits", {}).items()},
            critical_path=list(doc.get("criticalPath", [])),
            started=bool(doc.get("started", False)),
            holds_order=bool(doc.get("holdsOrder", False)),
            cancellation=(
                CancellationUnderWay.from_document(doc["cancellation"]) if doc.get("cancellation") else None
            ),
            version=version,
        )


# --- building ----------------------------------------------------------------------------------


class OrderNotFeasible(Exception):
    """The catalog cannot deliver the order: each problem names the item."""

    def __init__(self, problems: list[ItemProblem]) -> None:
        self.problems = problems
        super().__init__("; ".join(p.message for p in problems))


def build_plan(order: ServiceOrder, catalog: Catalog, *, now: str, new_id: Callable[[], str]) -> Plan:
    """One activity per catalog activity per item, wired into one dependency graph (drafted by
    provtrack.domain.plan_building); OrderNotFeasible when the catalog cannot deliver an item."""
    draft = draft_activities(order, catalog, new_id=new_id)
    if draft.problems:
        raise OrderNotFeasible(draft.problems)
    return Plan(order.id, now, draft.activities, draft.item_waits)


# --- rejection ---------------------------------------------------------------------------------


def reject(order: ServiceOrder, problems: list[ItemProblem], *, now: str, actor: str) -> None:
    """Record a TMF641 errorMessage per problem, on the order and on the item, and reject the order."""
    for problem in problems:
        message = {
            "code": problem.code,
            "reason": "Order cannot be provisioned",
            "message": problem.message,
            "status": "rejected",
            "timestamp": now,
            "@type": "ServiceOrderErrorMessage",
        }
        add_error(order, problem.item_id, message, now=now, actor=actor)
    order.move_to(OrderState.REJECTED, now=now, actor=actor)


def add_error(
    order: ServiceOrder, item_id: str | None, message: dict[str, Any], *, now: str, actor: str
) -> None:
    order_message = dict(message)
    if item_id is not None:
        order_message["serviceOrderItem"] = [{"itemId": item_id, "serviceOrderId": order.id}]
        item = order.item(item_id)
        item_message = {k: v for k, v in message.items() if k != "@type"}
        item_message["@type"] = "ServiceOrderItemErrorMessage"
        item.error_messages.append(item_message)
    order.error_messages.append(order_message)
    order.changes.append(Change("serviceOrder", "errorMessage", None, order_message, now, actor))
    order.events.append(OrderEvent(EventType.ORDER_ATTRIBUTE_VALUE_CHANGE, now))


# --- running -----------------------------------------------------------------------------------


def start(plan: Plan, order: ServiceOrder, *, now: str, actor: str) -> list[Activity]:
    """Start the order: it goes inProgress and the activities with no predecessors begin."""
    plan.started = True
    if order.state == OrderState.ACKNOWLEDGED:
        order.move_to(OrderState.IN_PROGRESS, now=now, actor=actor)
    return advance(plan, order, now=now, actor=actor)


def advance(plan: Plan, order: ServiceOrder, *, now: str, actor: str) -> list[Activity]:
    """Start every activity whose predecessors are finished, roll items and order up, reschedule.

    Returns the activities that started now (the caller dispatches them).
    """
    if not plan.started or order.is_terminal:
        return []
    by_id = {a.id: a for a in plan.activities}
    started: list[Activity] = []
    for activity in plan.activities:
        if activity.state == ActivityState.PLANNED and all(
            by_id[p].state in FINISHED for p in activity.predecessors
        ):
            activity.attempt += 1
            activity.move(ActivityState.IN_PROGRESS, now=now, actor=actor, changes=plan.changes)
            started.append(activity)
    _roll_up(plan, order, now=now, actor=actor)
    update_expected_completion(plan, order, now=now, actor=actor)
    return started


def record_downstream_state(
    plan: Plan,
    order: ServiceOrder,
    activity: Activity,
    downstream_state: str,
    *,
    reason: str | None,
    now: str,
    actor: str,
) -> list[Activity]:
    """Apply what the owner says about the activity; return activities that can start now.

    Downstream systems repeat themselves (a notification of `inProgress` twice, a poll after the
    notification it repeats): a state the activity is already in is nothing to do, and a state for
    an activity no longer waiting on its owner comes too late to matter."""
    activity.external_state = downstream_state
    target = DOWNSTREAM_STATE.get(downstream_state)
    if target is None or activity.state not in OPEN or target == activity.state:
        return []
    if target == ActivityState.FALLOUT and plan.withdrawal_of(activity) is not None:
        # Being cancelled downstream: an order that stopped (cancelled, failed) is what was asked for.
        target = ActivityState.CANCELLED
    if target == ActivityState.BLOCKED:
        activity.reason = reason or f"the downstream order is {downstream_state}"
    elif target == ActivityState.FALLOUT:
        detail = f": {reason}" if reason else ""
        what = "partner order" if activity.kind is ActivityKind.PARTNER_ORDER else "resource order"
        activity.reason = f"{activity.owner} reports the {what} {downstream_state}{detail}"
    else:
        activity.reason = None
    return finish_move(plan, order, activity, target, now=now, actor=actor)


def finish_move(
    plan: Plan, order: ServiceOrder, activity: Activity, target: ActivityState, *, now: str, actor: str
) -> list[Activity]:
    """Move an activity and carry the consequences: milestone, fallout message, successors, roll-up."""
    activity.move(target, now=now, actor=actor, changes=plan.changes)
    if target in FINISHED:
        _add_milestone(order, activity, now=now, actor=actor)
    elif target == ActivityState.FALLOUT:
        message = {
            "code": "ACTIVITY_FAILED",
            "reason": "Provisioning activity failed",
            "message": f"item {activity.item_id}: activity {activity.name} ({activity.id}) failed: "
            f"{activity.reason or 'no reason given'}; retry, skip or fail it at /provtrack/v1/activity/{activity.id}",
            "status": "held",
            "timestamp": now,
            "@type": "ServiceOrderErrorMessage",
        }
        add_error(order, activity.item_id, message, now=now, actor=actor)
    elif target == ActivityState.FAILED:
        _cancel_successors(plan, activity, now=now, actor=actor)
    return advance(plan, order, now=now, actor=actor)


# --- operator actions --------------------------------------------------------------------------
# Each checks OPERATOR_ACTIONS first (Activity.check_action): a refused action raises ActionRefused
# before it sets a reason, an attempt or a milestone, so nothing of it is recorded.


def retry(plan: Plan, order: ServiceOrder, activity: Activity, *, now: str, actor: str) -> list[Activity]:
    """Operator: send the fallen-out activity again, as a new attempt (a new downstream order)."""
    target = activity.check_action(OperatorAction.RETRY)
    activity.begin_new_attempt()
    return [activity, *finish_move(plan, order, activity, target, now=now, actor=actor)]


def skip(
    plan: Plan, order: ServiceOrder, activity: Activity, *, reason: str, now: str, actor: str
) -> list[Activity]:
    """Operator: the activity is not needed (done by hand, or elsewhere); successors go ahead."""
    target = activity.check_action(OperatorAction.SKIP)
    activity.skip_reason = reason
    return finish_move(plan, order, activity, target, now=now, actor=actor)


def fail(
    plan: Plan, order: ServiceOrder, activity: Activity, *, reason: str | None = None, now: str, actor: str
) -> list[Activity]:
    """Operator: give the activity up; its item fails and what depends on it never runs."""
    target = activity.check_action(OperatorAction.FAIL)
    if reason:
        activity.reason = reason
    return finish_move(plan, order, activity, target, now=now, actor=actor)


def _cancel_successors(plan: Plan, failed: Activity, *, now: str, actor: str) -> None:
    doomed = {failed.id}
    changed = True
    while changed:
        changed = False
        for activity in plan.activities:
            if activity.id not in doomed and doomed.intersection(activity.predecessors):
                doomed.add(activity.id)
                changed = True
                if activity.state == ActivityState.PLANNED:
                    activity.move(ActivityState.CANCELLED, now=now, actor=actor, changes=plan.changes)


def _add_milestone(order: ServiceOrder, activity: Activity, *, now: str, actor: str) -> None:
    status = "skipped" if activity.state == ActivityState.SKIPPED else "completed"
    milestone = {
        "id": activity.id,
        "name": activity.name,
        "description": activity.description or f"{activity.name} ({activity.owner})",
        "message": f"{activity.name} {status}"
        + (f": {activity.skip_reason}" if activity.skip_reason else ""),
        "milestoneDate": now,
        "status": status,
        "serviceOrderItem": [{"itemId": activity.item_id, "serviceOrderId": order.id}],
        "@type": "ServiceOrderMilestone",
    }
    order.milestones.append(milestone)
    order.changes.append(Change("serviceOrder", "milestone", None, milestone, now, actor))
    order.events.append(OrderEvent(EventType.ORDER_MILESTONE, now))


# --- roll-up -----------------------------------------------------------------------------------


def _item_target(plan: Plan, item_id: str, states: dict[str, OrderState]) -> OrderState | None:
    own = [a.state for a in plan.of_item(item_id)]
    waited = [states[i] for i in plan.item_waits.get(item_id, []) if i in states]
    if ActivityState.FALLOUT in own:
        return OrderState.HELD
    if all(s in ACTIVITY_TERMINAL for s in own) and all(s in TERMINAL_STATES for s in waited):
        if any(s in (ActivityState.FAILED, ActivityState.CANCELLED) for s in own):
            return OrderState.FAILED
        if own or not any(s != OrderState.COMPLETED for s in waited):
            return OrderState.COMPLETED
        return OrderState.FAILED
    if any(s != ActivityState.PLANNED for s in own):
        return OrderState.IN_PROGRESS
    return None


def _roll_up(plan: Plan, order: ServiceOrder, *, now: str, actor: str) -> None:
    if plan.cancellation is not None:
        return  # the order and its items follow the cancellation (cancellation_steps.settle)
    fallout = any(a.state == ActivityState.FALLOUT for a in plan.activities)
    if not fallout and plan.holds_order:
        plan.holds_order = False
        if order.state == OrderState.HELD:
            order.move_to(OrderState.IN_PROGRESS, now=now, actor=actor)
    if order.state not in (OrderState.IN_PROGRESS, OrderState.HELD):
        return  # pending or in a cancellation flow: items move on with the order's owner
    # Items are visited until nothing changes: an item waiting on others completes after them.
    changed = True
    while changed:
        changed = False
        states = {i.id: i.state for i in order.all_items()}
        for item in order.all_items():
            target = _item_target(plan, item.id, states)
            if target is None or target == item.state or item.state in TERMINAL_STATES:
                continue
            for step in _path(item.state, target):
                order.move_item(item.id, step, now=now, actor=actor)
            changed = True
            if order.is_terminal:
                return
    if fallout and order.state == OrderState.IN_PROGRESS:
        order.move_to(OrderState.HELD, now=now, actor=actor)
        plan.holds_order = True


_ITEM_STATES = frozenset(
    {
        OrderState.ACKNOWLEDGED,
        OrderState.IN_PROGRESS,
        OrderState.HELD,
        OrderState.COMPLETED,
        OrderState.FAILED,
    }
)


def _path(current: OrderState, target: OrderState) -> list[OrderState]:
    """The shortest walk along the TMF641 table (e.g. held -> inProgress -> failed)."""
    queue: deque[list[OrderState]] = deque([[current]])
    while queue:
        walk = queue.popleft()
        if walk[-1] == target:
            return walk[1:]
        for nxt in TRANSITIONS[walk[-1]] & _ITEM_STATES:
            if nxt not in walk:
                queue.append([*walk, nxt])
    return [target]


# --- scheduling --------------------------------------------------------------------------------


def schedule(plan: Plan, *, now: datetime, start_at: datetime | None = None) -> tuple[datetime, list[str]]:
    """Forward pass over the graph: planned start and end of every open activity, and the
    critical path (the chain of activities that ends last). Finished activities keep their dates.
    An activity ends as `Activity.finish_after` says: in its group's working hours, not before its
    appointment, or when its partner said."""
    by_id = {a.id: a for a in plan.activities}
    ends: dict[str, datetime] = {}
    via: dict[str, str | None] = {}
    floor = max(now, start_at) if start_at is not None else now
    for activity in _topological(plan.activities, by_id):
        preds = [(ends[p], p) for p in activity.predecessors if p in ends]
        latest = max(preds, default=(floor, None))
        via[activity.id] = latest[1]
        if activity.state in ACTIVITY_TERMINAL and activity.actual_end is not None:
            ends[activity.id] = parse_datetime(activity.actual_end)
            continue
        if activity.actual_start is not None and activity.state != ActivityState.PLANNED:
            begin = parse_datetime(activity.work_started or activity.actual_start)
            end = max(activity.finish_after(begin), now)
        else:
            begin = max(latest[0], floor)
            if activity.earliest_start is not None:
                begin = max(begin, parse_datetime(activity.earliest_start))
            end = activity.finish_after(begin)
            activity.planned_start = format_datetime(begin)
        activity.planned_end = format_datetime(end)
        ends[activity.id] = end
    if not ends:
        return floor, []
    last = max(ends, key=lambda k: (ends[k], k))
    path: list[str] = []
    cursor: str | None = last
    while cursor is not None:
        path.append(cursor)
        cursor = via.get(cursor)
    return ends[last], list(reversed(path))


def update_expected_completion(
    plan: Plan, order: ServiceOrder, *, now: str, actor: str, start_at: str | None = None
) -> None:
    finish, path = schedule(
        plan, now=parse_datetime(now), start_at=parse_datetime(start_at) if start_at else None
    )
    plan.critical_path = path
    if order.is_terminal:
        return
    expected = format_datetime(finish)
    if expected != order.expected_completion_date:
        old = order.expected_completion_date
        order.expected_completion_date = expected
        order.changes.append(Change("serviceOrder", "expectedCompletionDate", old, expected, now, actor))


def _topological(activities: Iterable[Activity], by_id: dict[str, Activity]) -> list[Activity]:
    ordered: list[Activity] = []
    seen: set[str] = set()

    def visit(activity: Activity) -> None:
        if activity.id in seen:
            return
        seen.add(activity.id)
        for p in activity.predecessors:
            if p in by_id:
                visit(by_id[p])
        ordered.append(activity)

    for activity in activities:
        visit(activity)
    return ordered


def requested_start(order: ServiceOrder) -> str | None:
    value = order.attributes.get("requestedStartDate")
    return str(value) if value else None
