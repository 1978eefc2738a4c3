"""Carrying a cancellation out: the decision on a task, the steps added to the plan, and settling.

`decide` takes the assessment (provtrack.domain.cancellation_impact) and acts on it: a refusal ends the
task `terminatedWithError` (the order returns to the state it came from); an acceptance moves the
order `pendingCancellation` and turns the impact into plan steps:

- activities not started become `cancelled`;
- each resource order or partner order under way gets a *withdrawal* step (`withdraws`): TMF652
  cancelResourceOrder at its system (or, when the system cannot cancel, waiting for its end), TMF641
  cancelServiceOrder at its partner; a manual task is withdrawn from its queue at once;
- each done activity with an `undo` in the catalog gets an *undo* step (`undoes`), an activity made
  from the catalog's undo, waiting for the steps of every activity that depends on it (reverse
  dependency order).

The steps run as activities of the plan (dispatch, notifications, polling, operator actions alike).
`settle` runs after every change of the plan: it closes a withdrawal when its order has stopped (or
adds an undo when it completed first), holds the order while a step is in fallout, and says when
everything has settled, for `finish` to cancel the order and end the task `done`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from provtrack.domain.activities import ACTIVITY_TERMINAL, OPEN, Activity, ActivityState
from provtrack.domain.cancellation import CancelServiceOrder
from provtrack.domain.cancellation_impact import (
    CancellationImpact,
    Refusal,
    Stop,
    undo_definition,
)
from provtrack.domain.catalog import ActivityKind, ActivitySpec, Catalog
from provtrack.domain.model import Change, ServiceOrder
from provtrack.domain.plan import CancellationUnderWay, Plan, advance, finish_move
from provtrack.domain.plan_building import activity_from_spec
from provtrack.domain.states import OrderState

WITHDRAWAL_SECONDS = 60.0  # what a withdrawal is expected to take, for the plan's schedule
# A withdrawal's characteristic naming the downstream order it acted on, by the kind of activity it
# stops; these kinds are the ones withdrawn at their owner (a manual task leaves its queue at once).
TARGET: dict[ActivityKind, str] = {
    ActivityKind.RESOURCE_ORDER: "resourceOrder",  # TMF652 cancelResourceOrder
    ActivityKind.PARTNER_ORDER: "serviceOrder",  # TMF641 cancelServiceOrder at the partner
}
HELD_CODE = "CANCELLATION_HELD"  # the task's errorMessage while a step waits for an operator
# A downstream order in one of these states has stopped: there is nothing left to cancel.
STOPPED_DOWNSTREAM = frozenset({"cancelled", "failed", "rejected"})
# What the order may be while a cancellation is carried out (`check_state`).
STATES_WHILE_CANCELLING = frozenset({OrderState.PENDING_CANCELLATION, OrderState.HELD})


class CancellationInProgress(Exception):
    """A change the order's cancellation does not allow (its state follows the cancellation)."""


@dataclass(slots=True)
class Steps:
    """What carrying out (or settling) a cancellation did that the caller must follow up on."""

    started: list[Activity] = field(default_factory=list)  # steps to hand out (dispatch, withdraw)
    dropped: list[str] = field(default_factory=list)  # activities whose dispatch and polls end
    held: Activity | None = None  # a step fell out: the order is held now
    resumed: bool = False  # the hold is lifted: the cancellation goes on
    complete: bool = False  # everything has settled: `finish` cancels the order

    def extend(self, other: Steps) -> None:
        self.started += other.started
        self.dropped += other.dropped
        self.held = other.held or self.held
        self.resumed = other.resumed or self.resumed
        self.complete = other.complete


def decide(
    order: ServiceOrder,
    plan: Plan | None,
    task: CancelServiceOrder,
    impact: CancellationImpact,
    *,
    catalog: Catalog | None,
    now: str,
    actor: str,
    new_id: Callable[[], str],
) -> Steps | None:
    """Act on the assessment of `task` (inProgress): refuse it (None), or accept it and return the
    steps to follow up. A denial at the point of no return takes the order through
    assessingCancellation and back to the state it came from."""
    if impact.refusal in (Refusal.ORDER_FINISHED, Refusal.CANCELLATION_UNDER_WAY):
        task.refuse(impact.refusal.value, impact.message or "", now=now, actor=actor)
        return None
    origin = order.state
    order.move_to(OrderState.ASSESSING_CANCELLATION, now=now, actor=actor)
    if impact.refusal is not None:
        order.move_to(origin, now=now, actor=actor)  # denied: back to where it came from, and only there
        task.refuse(impact.refusal.value, impact.message or "", now=now, actor=actor)
        return None
    order.move_to(OrderState.PENDING_CANCELLATION, now=now, actor=actor)
    if plan is None:
        finish(order, None, task, now=now, actor=actor)
        return Steps(complete=True)
    steps = accept(plan, order, task, impact, catalog=catalog, now=now, actor=actor, new_id=new_id)
    steps.extend(settle(plan, order, catalog=catalog, now=now, actor=actor, new_id=new_id))
    if steps.complete:
        finish(order, plan, task, now=now, actor=actor)
    return steps


def accept(
    plan: Plan,
    order: ServiceOrder,
    task: CancelServiceOrder,
    impact: CancellationImpact,
    *,
    catalog: Catalog | None,
    now: str,
    actor: str,
    new_id: Callable[[], str],
) -> Steps:
    """Turn the accepted impact into the plan's cancellation steps (module docstring)."""
    plan.cancellation = CancellationUnderWay(task.id, now)
    plan.holds_order = False  # a fallout hold of the delivery gives way to the cancellation
    plan.changes.append(Change("plan", "cancellation", None, task.id, now, actor))
    steps = Steps()
    for entry in impact.cancel:
        _stop_here(plan, entry.activity, "not started: the service order is cancelled", now, actor)
        steps.dropped.append(entry.activity.id)
    step_of: dict[str, str] = {}
    for entry in impact.stop:
        activity = entry.activity
        if entry.how == Stop.WITHDRAW:
            _stop_here(plan, activity, "withdrawn: the service order is cancelled", now, actor)
            steps.dropped.append(activity.id)
            continue
        if activity.state == ActivityState.IN_PROGRESS and activity.external_id is None:
            # Not sent yet, or its POST is on the way: hold the send; the withdrawal looks it up.
            activity.reason = "held back: the service order is being cancelled"
            activity.move(ActivityState.BLOCKED, now=now, actor=actor, changes=plan.changes)
            steps.dropped.append(activity.id)
        step_of[activity.id] = _add_withdrawal(plan, activity, new_id).id
    for entry in impact.undo:  # already in reverse dependency order
        assert entry.undo is not None
        undo = _add_undo(plan, order, entry.activity, entry.undo, new_id)
        step_of[entry.activity.id] = undo.id
    steps.started += advance(plan, order, now=now, actor=actor)
    return steps


def settle(
    plan: Plan,
    order: ServiceOrder,
    *,
    catalog: Catalog | None,
    now: str,
    actor: str,
    new_id: Callable[[], str],
) -> Steps:
    """Bring the cancellation up to date with what its activities did (module docstring)."""
    assert plan.cancellation is not None
    steps = Steps()
    _withdraw_late_orders(plan, new_id)
    for step in [a for a in plan.activities if a.withdraws is not None]:
        target = plan.activity(step.withdraws or "")
        if step.state in OPEN or (step.state == ActivityState.FALLOUT and target.state in ACTIVITY_TERMINAL):
            # A refusal explained by the order's end (it completed first) is settled like the end.
            steps.started += _close_withdrawal(
                plan, order, step, target, catalog=catalog, now=now, actor=actor, new_id=new_id
            )
        elif step.state in ACTIVITY_TERMINAL and target.state in OPEN:
            target.reason = f"no longer followed: {step.name} is {step.state}"
            steps.started += finish_move(plan, order, target, ActivityState.CANCELLED, now=now, actor=actor)
            steps.dropped.append(target.id)
    steps.started += advance(plan, order, now=now, actor=actor)
    fallout = [a for a in plan.activities if a.state == ActivityState.FALLOUT]
    if fallout and order.state == OrderState.PENDING_CANCELLATION:
        order.move_to(OrderState.HELD, now=now, actor=actor)
        plan.cancellation.holds_order = True
        steps.held = fallout[0]
    elif not fallout and plan.cancellation.holds_order:
        plan.cancellation.holds_order = False
        if order.state == OrderState.HELD:
            order.move_to(OrderState.PENDING_CANCELLATION, now=now, actor=actor)
            steps.resumed = True
    steps.complete = all(a.state in ACTIVITY_TERMINAL for a in plan.activities)
    return steps


def finish(order: ServiceOrder, plan: Plan | None, task: CancelServiceOrder, *, now: str, actor: str) -> None:
    """Everything has settled: the order is cancelled (date and reason) and the task is done."""
    if task.reason:
        order.set_attribute("cancellationReason", task.reason, now=now, actor=actor)
    order.move_to(OrderState.CANCELLED, now=now, actor=actor)
    task.complete(summary(order, plan), now=now, actor=actor)


def summary(order: ServiceOrder, plan: Plan | None) -> str:
    """What the cancellation did, in a sentence (the task's completionMessage)."""
    steps = [] if plan is None else [a for a in plan.activities if a.withdraws or a.undoes]
    stopped = [a.name for a in steps if a.withdraws and a.state == ActivityState.DONE]
    undone = [a.name for a in steps if a.undoes and a.state == ActivityState.DONE]
    left = [f"{a.name} ({a.state})" for a in steps if a.state not in (ActivityState.DONE,)]
    parts = [f"service order {order.id} cancelled"]
    if stopped:
        parts.append(f"stopped: {', '.join(stopped)}")
    if undone:
        parts.append(f"undone: {', '.join(undone)}")
    if left:
        parts.append(f"not carried out: {', '.join(left)}")
    return "; ".join(parts)


def held_message(step: Activity) -> str:
    """The task's errorMessage while `step` waits for an operator."""
    return (
        f"the cancellation is held: {step.name} ({step.id}) of item {step.item_id} fell out: "
        f"{step.reason or 'no reason given'}; an operator retries, skips or fails it at "
        f"/provtrack/v1/activity/{step.id}"
    )


def check_state(order: ServiceOrder, plan: Plan) -> None:
    """An order being cancelled is pendingCancellation or held (by the cancellation), or cancelled
    once everything has settled; any other move (a PATCH to inProgress...) is refused."""
    if plan.cancellation is None or order.deleted or order.is_terminal:
        return
    complete = all(a.state in ACTIVITY_TERMINAL for a in plan.activities)
    expected = (
        {OrderState.CANCELLED}
        if complete
        else {OrderState.HELD}
        if plan.cancellation.holds_order
        else {OrderState.PENDING_CANCELLATION}
    )
    if order.state not in expected:
        raise CancellationInProgress(
            f"service order {order.id} is being cancelled: its state follows the cancellation "
            f"({', '.join(sorted(expected))} now, not {order.state}); act on its steps at "
            f"/provtrack/v1/serviceOrder/{order.id}/plan"
        )


# --- the steps ---------------------------------------------------------------------------------


def _stop_here(plan: Plan, activity: Activity, reason: str, now: str, actor: str) -> None:
    activity.reason = reason
    activity.move(ActivityState.CANCELLED, now=now, actor=actor, changes=plan.changes)


def _add_withdrawal(plan: Plan, activity: Activity, new_id: Callable[[], str]) -> Activity:
    """A step of the activity's kind at its owner: it cancels the activity's order there."""
    what = "partner order" if activity.kind is ActivityKind.PARTNER_ORDER else "resource order"
    step = Activity(
        id=new_id(),
        order_id=activity.order_id,
        item_id=activity.item_id,
        name=f"cancel-{activity.name}",
        kind=activity.kind,
        owner=activity.owner,
        predecessors=[],
        expected_seconds=WITHDRAWAL_SECONDS,
        description=f"Cancel the {what} of {activity.name} at {activity.owner}",
        withdraws=activity.id,
    )
    plan.activities.append(step)
    return step


def _add_undo(
    plan: Plan,
    order: ServiceOrder,
    activity: Activity,
    definition: ActivitySpec,
    new_id: Callable[[], str],
) -> Activity:
    """An undo step for a done activity, after the steps of everything that depends on it."""
    step = activity_from_spec(order, order.item(activity.item_id), definition, new_id=new_id)
    step.undoes = activity.id
    step.description = step.description or f"Undo {activity.name}"
    step.predecessors = _steps_after(plan, activity)
    plan.activities.append(step)
    return step


def _steps_after(plan: Plan, activity: Activity) -> list[str]:
    """The cancellation steps of every activity that depends, directly or not, on `activity`."""
    dependants: set[str] = set()
    frontier = {activity.id}
    while frontier:
        frontier = {
            a.id for a in plan.activities if frontier & set(a.predecessors) and a.id not in dependants
        }
        dependants |= frontier
    return [s.id for s in plan.activities if (s.withdraws or s.undoes) in dependants]


def _withdraw_late_orders(plan: Plan, new_id: Callable[[], str]) -> None:
    """A downstream order learned of after its activity was stopped (its POST answered late) is
    cancelled too."""
    for activity in [a for a in plan.activities if a.withdraws is None and a.undoes is None]:
        if (
            activity.state != ActivityState.CANCELLED
            or activity.external_id is None
            or activity.external_state in STOPPED_DOWNSTREAM
            or activity.kind not in TARGET
        ):
            continue
        known = [s for s in plan.activities if s.withdraws == activity.id]
        if any(
            s.state not in ACTIVITY_TERMINAL or s.characteristics.get(TARGET[s.kind]) == activity.external_id
            for s in known
        ):
            continue  # a withdrawal is under way, or has dealt with this order already
        _add_withdrawal(plan, activity, new_id)


def _close_withdrawal(
    plan: Plan,
    order: ServiceOrder,
    step: Activity,
    target: Activity,
    *,
    catalog: Catalog | None,
    now: str,
    actor: str,
    new_id: Callable[[], str],
) -> list[Activity]:
    """A withdrawal under way, once its activity has ended one way or another."""
    if target.state == ActivityState.CANCELLED:
        if step.state == ActivityState.FALLOUT:
            step.skip_reason = f"{target.name} was cancelled meanwhile"
            return finish_move(plan, order, step, ActivityState.SKIPPED, now=now, actor=actor)
        return finish_move(plan, order, step, ActivityState.DONE, now=now, actor=actor)
    if target.state in (ActivityState.SKIPPED, ActivityState.FAILED):
        step.skip_reason = f"{target.name} was {target.state} meanwhile"
        return finish_move(plan, order, step, ActivityState.SKIPPED, now=now, actor=actor)
    if target.state != ActivityState.DONE:
        return []
    definition = undo_definition(order, target, catalog)
    if definition is not None:
        undo = _add_undo(plan, order, target, definition, new_id)
        for waiting in plan.activities:  # what waited for the withdrawal now waits for the undo
            if waiting.state == ActivityState.PLANNED and step.id in waiting.predecessors:
                waiting.predecessors.append(undo.id)
        step.skip_reason = f"{target.name} completed before it could be cancelled: it is undone instead"
        return finish_move(plan, order, step, ActivityState.SKIPPED, now=now, actor=actor)
    if target.point_of_no_return:
        if step.state == ActivityState.FALLOUT:
            return []  # already waiting for an operator
        step.reason = (
            f"{target.name} completed at {target.owner} before it could be cancelled; it is the point of "
            "no return and cannot be undone"
        )
        return finish_move(plan, order, step, ActivityState.FALLOUT, now=now, actor=actor)
    step.skip_reason = f"{target.name} completed before it could be cancelled; the catalog has no undo for it"
    return finish_move(plan, order, step, ActivityState.SKIPPED, now=now, actor=actor)
