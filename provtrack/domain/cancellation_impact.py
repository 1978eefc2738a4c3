"""What cancelling an order would do now: accepted or refused (and why), what it stops, what it undoes.

`assess_cancellation` is the one assessment: the preview (`GET .../cancellationImpact`) shows it, and
the cancellation carries out exactly the impact it returns (provtrack.domain.cancellation_steps), so
the preview never disagrees with the outcome. It reads the order, its plan and the catalog; it
changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from provtrack.domain.activities import OPEN, Activity, ActivityState
from provtrack.domain.cancellation import CancelServiceOrder
from provtrack.domain.catalog import ActivityKind, ActivitySpec, Catalog
from provtrack.domain.model import ServiceOrder
from provtrack.domain.plan import Plan
from provtrack.domain.plan_building import spec_of_item
from provtrack.domain.states import OrderState

PASSED = frozenset({ActivityState.DONE, ActivityState.SKIPPED})  # the work happened (a skip: by hand)


class Refusal(StrEnum):
    """Why a cancellation is refused (the task's `errorMessage.code`)."""

    ORDER_FINISHED = "ORDER_FINISHED"  # the order is completed, failed, partial, cancelled or rejected
    CANCELLATION_UNDER_WAY = "CANCELLATION_UNDER_WAY"  # another cancellation is being carried out
    POINT_OF_NO_RETURN = "POINT_OF_NO_RETURN"  # an activity past which the order cannot be cancelled


class Stop(StrEnum):
    """How an activity under way is stopped."""

    CANCEL_AT_SYSTEM = "cancelResourceOrder"  # TMF652 cancelResourceOrder at its system
    CANCEL_AT_PARTNER = "cancelServiceOrder"  # a partner order: TMF641 cancelServiceOrder at the partner
    LET_FINISH = "letFinish"  # its system cannot cancel: wait for the end, then undo it if it can be
    WITHDRAW = "withdraw"  # a manual task: withdrawn from its work queue at once


@dataclass(frozen=True, slots=True)
class Affected:
    """One activity the cancellation touches, and how."""

    activity: Activity
    how: str | None = None  # Stop for `stop`; the catalog undo activity id for `undo`
    undo: ActivitySpec | None = None  # for `undo`: the catalog activity that undoes it
    note: str | None = None

    def to_document(self) -> dict[str, Any]:
        a = self.activity
        doc: dict[str, Any] = {
            "activity": a.id,
            "name": a.name,
            "serviceOrderItemId": a.item_id,
            "kind": a.kind.value,
            "owner": a.owner,
            "state": a.state.value,
        }
        if a.point_of_no_return:
            doc["pointOfNoReturn"] = True
        if self.how is not None:
            doc["how"] = self.how
        if self.undo is not None:
            doc["undoActivity"] = self.undo.id
            doc["undoOwner"] = self.undo.owner
        if self.note:
            doc["note"] = self.note
        return doc


@dataclass(frozen=True, slots=True)
class CancellationImpact:
    """The assessment: accepted (what it stops, cancels and undoes) or refused (why)."""

    order_id: str
    order_state: OrderState
    refusal: Refusal | None = None
    message: str | None = None
    too_late: tuple[Affected, ...] = ()  # the activities that make it too late
    cancel: tuple[Affected, ...] = ()  # not started (or fallen out): they will never run
    stop: tuple[Affected, ...] = ()  # under way: stopped
    undo: tuple[Affected, ...] = ()  # done, with an undo: compensated, in this order
    keep: tuple[Affected, ...] = ()  # done, nothing to undo: they stay as they are

    @property
    def accepted(self) -> bool:
        return self.refusal is None

    def to_document(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "serviceOrderId": self.order_id,
            "state": self.order_state.value,
            "cancellable": self.accepted,
        }
        if self.refusal is not None:
            doc["code"] = self.refusal.value
            doc["reason"] = self.message
        if self.too_late:
            doc["pointOfNoReturn"] = [a.to_document() for a in self.too_late]
        for name, entries in (
            ("cancel", self.cancel),
            ("stop", self.stop),
            ("undo", self.undo),
            ("keep", self.keep),
        ):
            doc[name] = [a.to_document() for a in entries]
        return doc


def assess_cancellation(
    order: ServiceOrder,
    plan: Plan | None,
    catalog: Catalog | None,
    *,
    pending: CancelServiceOrder | None = None,
) -> CancellationImpact:
    """Whether the order can be cancelled now and what the cancellation would do (module docstring).
    `pending` is a cancel task of the order still open (one waiting for its requested date)."""
    if order.is_terminal:
        message = f"service order {order.id} is {order.state}: there is nothing left to cancel"
        return CancellationImpact(order.id, order.state, Refusal.ORDER_FINISHED, message)
    if pending is not None:
        when = f" for {pending.requested_date}" if pending.requested_date else ""
        message = (
            f"service order {order.id} already has a cancellation requested{when}: "
            f"cancelServiceOrder {pending.id}"
        )
        return CancellationImpact(order.id, order.state, Refusal.CANCELLATION_UNDER_WAY, message)
    if order.state in (OrderState.ASSESSING_CANCELLATION, OrderState.PENDING_CANCELLATION) or (
        plan is not None and plan.cancellation is not None
    ):
        message = f"service order {order.id} is already being cancelled ({order.state})"
        return CancellationImpact(order.id, order.state, Refusal.CANCELLATION_UNDER_WAY, message)
    activities = delivery_activities(plan)
    too_late = tuple(
        Affected(a, note=_too_late_because(a))
        for a in activities
        if a.point_of_no_return and (a.state in PASSED or (a.state in OPEN and not _stoppable(a, catalog)))
    )
    if too_late:
        return CancellationImpact(
            order.id,
            order.state,
            Refusal.POINT_OF_NO_RETURN,
            _too_late_message(order, too_late),
            too_late=too_late,
        )
    cancel = tuple(
        Affected(a) for a in activities if a.state in (ActivityState.PLANNED, ActivityState.FALLOUT)
    )
    stop = tuple(Affected(a, _how_to_stop(a, catalog)) for a in activities if a.state in OPEN)
    done = [a for a in reverse_dependency_order(activities) if a.state in PASSED]
    undo, keep = [], []
    for a in done:
        definition = undo_definition(order, a, catalog)
        if definition is not None:
            undo.append(Affected(a, definition.id, definition))
        else:
            keep.append(Affected(a, note=_kept_because(a)))
    return CancellationImpact(
        order.id, order.state, cancel=cancel, stop=stop, undo=tuple(undo), keep=tuple(keep)
    )


def undo_definition(order: ServiceOrder, activity: Activity, catalog: Catalog | None) -> ActivitySpec | None:
    """The catalog activity that undoes a done activity; None when it has none (or was skipped: the
    work was not provtrack's to undo)."""
    if activity.state != ActivityState.DONE or activity.undo is None or catalog is None:
        return None
    spec = spec_of_item(order.item(activity.item_id), catalog)
    return None if spec is None else spec.undo.get(activity.undo)


def stoppable(activity: Activity, catalog: Catalog | None) -> bool:
    """Whether the owner can stop the activity while it is under way."""
    return _stoppable(activity, catalog)


def reverse_dependency_order(activities: Iterable[Activity]) -> list[Activity]:
    """Activities so that each comes before those it depends on: undo runs in this order."""
    listed = list(activities)
    by_id = {a.id: a for a in listed}
    ordered: list[Activity] = []
    seen: set[str] = set()

    def visit(activity: Activity) -> None:
        if activity.id in seen:
            return
        seen.add(activity.id)
        for predecessor in activity.predecessors:
            if predecessor in by_id:
                visit(by_id[predecessor])
        ordered.append(activity)

    for activity in listed:
        visit(activity)
    return list(reversed(ordered))


def delivery_activities(plan: Plan | None) -> list[Activity]:
    """The order's delivery activities: not the steps of a cancellation or a revision (withdrawals,
    undos), nor a done activity a revision has undone (its new values are done again)."""
    if plan is None:
        return []
    undone = {a.undoes for a in plan.activities if a.undoes is not None}
    return [a for a in plan.activities if a.withdraws is None and a.undoes is None and a.id not in undone]


def _stoppable(activity: Activity, catalog: Catalog | None) -> bool:
    if activity.kind is not ActivityKind.RESOURCE_ORDER:
        return True  # a task leaves its queue, a partner order is cancelled at the partner
    if catalog is None:
        return True
    system = catalog.systems.get(activity.owner)
    return system is not None and system.cancellable


def _how_to_stop(activity: Activity, catalog: Catalog | None) -> Stop:
    if activity.kind is ActivityKind.MANUAL_TASK:
        return Stop.WITHDRAW
    if activity.kind is ActivityKind.PARTNER_ORDER:
        return Stop.CANCEL_AT_PARTNER
    return Stop.CANCEL_AT_SYSTEM if _stoppable(activity, catalog) else Stop.LET_FINISH


def _too_late_because(activity: Activity) -> str:
    if activity.state in PASSED:
        return f"{activity.name} is {activity.state} and is the point of no return"
    return (
        f"{activity.name} is under way at {activity.owner}, which cannot cancel it, and is the point "
        "of no return"
    )


def _too_late_message(order: ServiceOrder, too_late: tuple[Affected, ...]) -> str:
    first = too_late[0].activity
    reason = too_late[0].note
    more = f" (and {len(too_late) - 1} more)" if len(too_late) > 1 else ""
    return (
        f"too late to cancel service order {order.id}: activity {first.name} ({first.id}) of item "
        f"{first.item_id}: {reason}{more}; the order stays {order.state}"
    )


def _kept_because(activity: Activity) -> str:
    if activity.state == ActivityState.SKIPPED:
        return "skipped by an operator: nothing of provtrack's to undo"
    if activity.undo is None:
        return "done; the catalog has no undo for it"
    return f"done; its undo {activity.undo!r} is not in the catalog"
