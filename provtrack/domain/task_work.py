"""What a manual task's moves do to its activity and its order: a completed task completes the
activity and leaves its checklist on the service, a failed one makes the activity fall out, a task
that asks for information puts the order `pending` until a PATCH supplies it (docs/coordination.md).

Each function checks the task's tables first, so a refused action changes nothing.
"""

from __future__ import annotations

from typing import Any

from provtrack.domain import plan as planning
from provtrack.domain.activities import OPEN, Activity, ActivityState
from provtrack.domain.model import ServiceOrder
from provtrack.domain.plan import Plan, add_error
from provtrack.domain.states import OrderState
from provtrack.domain.tasks import (
    InvalidTaskInput,
    ManualTask,
    TaskAction,
    TaskRefused,
    check_checklist,
    check_failure_code,
)
from provtrack.domain.work_groups import valid_field_name

MISSING_INFORMATION = "MISSING_INFORMATION"


def complete(
    plan: Plan, order: ServiceOrder, task: ManualTask, values: Any, *, now: str, actor: str
) -> list[Activity]:
    """The checklist, checked, becomes characteristics of the item's service; the activity is done."""
    target = task.check(TaskAction.COMPLETE, actor=actor)
    checked = check_checklist(task, values)
    activity = _open_activity(plan, task)
    task.set("checklist_values", checked, now=now, actor=actor)
    task.move(target, now=now, actor=actor)
    if checked:
        set_characteristics(order, task.item_id, checked, now=now, actor=actor)
    return planning.finish_move(plan, order, activity, ActivityState.DONE, now=now, actor=actor)


def fail(
    plan: Plan, order: ServiceOrder, task: ManualTask, code: Any, reason: str | None, *, now: str, actor: str
) -> list[Activity]:
    """The task could not be done: the activity falls out (the order is held for an operator)."""
    target = task.check(TaskAction.FAIL, actor=actor)
    code = check_failure_code(task, code)
    activity = _open_activity(plan, task)
    task.set("failure", {"reasonCode": code, "reason": reason}, now=now, actor=actor)
    task.move(target, now=now, actor=actor)
    activity.reason = f"{task.work_group}: {actor} could not do the task: {code}" + (
        f": {reason}" if reason else ""
    )
    return planning.finish_move(plan, order, activity, ActivityState.FALLOUT, now=now, actor=actor)


def request_information(
    plan: Plan, order: ServiceOrder, task: ManualTask, wanted: Any, *, now: str, actor: str
) -> None:
    """The customer must supply service characteristics first: the task waits, the activity is
    blocked, the order goes `pending` with an errorMessage per missing characteristic (its
    ServiceOrderInformationRequiredEvent carries them)."""
    target = task.check(TaskAction.REQUEST_INFORMATION, actor=actor)
    asked = _wanted(wanted)
    if order.state != OrderState.IN_PROGRESS:
        raise TaskRefused(
            f"service order {order.id} is {order.state}: only an order in progress can wait for information"
        )
    activity = _open_activity(plan, task)
    task.set("information_required", asked, now=now, actor=actor)
    task.move(target, now=now, actor=actor)
    names = ", ".join(a["name"] for a in asked)
    activity.reason = f"waiting for information from the customer: {names} (asked by {actor})"
    activity.move(ActivityState.BLOCKED, now=now, actor=actor, changes=plan.changes)
    where = _characteristics_path(order, task.item_id)
    for entry in asked:
        detail = f": {entry['description']}" if entry.get("description") else ""
        message = {
            "code": MISSING_INFORMATION,
            "reason": "Information required",
            "message": f"item {task.item_id}: service characteristic {entry['name']!r} is required{detail} "
            f"(asked by {task.work_group} for {task.name}); PATCH the order to supply it",
            "status": "pending",
            "timestamp": now,
            "informationRequired": {"op": "add", "path": where, "characteristic": entry["name"]},
            "@type": "ServiceOrderErrorMessage",
        }
        add_error(order, task.item_id, message, now=now, actor=actor)
    order.move_to(OrderState.PENDING, now=now, actor=actor)


def supplied(order: ServiceOrder, task: ManualTask) -> bool:
    """Whether the item now carries every characteristic the task asked for."""
    present = characteristics_of(order, task.item_id)
    return all(entry["name"] in present for entry in task.information_required)


def resume(plan: Plan, order: ServiceOrder, task: ManualTask, *, now: str, actor: str) -> None:
    """The information came: the task and its activity go on (the order, when nothing else waits for
    the customer: the caller sees all the order's tasks)."""
    task.act(TaskAction.RESUME, now=now, actor=actor)
    activity = plan.activity(task.activity_id)
    if activity.state == ActivityState.BLOCKED:
        activity.reason = None
        activity.move(ActivityState.IN_PROGRESS, now=now, actor=actor, changes=plan.changes)


def characteristics_of(order: ServiceOrder, item_id: str) -> dict[str, Any]:
    service = order.item(item_id).attributes.get("service") or {}
    return {
        str(c["name"]): c.get("value")
        for c in service.get("serviceCharacteristic") or []
        if isinstance(c, dict) and "name" in c
    }


def set_characteristics(
    order: ServiceOrder, item_id: str, values: dict[str, Any], *, now: str, actor: str
) -> None:
    """Add or replace service characteristics of an item (checklist values)."""
    item = order.item(item_id)
    attributes = dict(item.attributes)
    service = dict(attributes.get("service") or {})
    kept = [
        c
        for c in service.get("serviceCharacteristic") or []
        if not (isinstance(c, dict) and c.get("name") in values)
    ]
    service["serviceCharacteristic"] = kept + [{"name": k, "value": v} for k, v in values.items()]
    attributes["service"] = service
    order.replace_item_attributes(item_id, attributes, now=now, actor=actor)


def _characteristics_path(order: ServiceOrder, item_id: str) -> str | None:
    """Where a JSON patch adds the characteristic (a top-level item; None for a nested one): at the
    end of the item's list, or the list itself when the item has none yet."""
    for index, item in enumerate(order.items):
        if item.id == item_id:
            has_list = isinstance((item.attributes.get("service") or {}).get("serviceCharacteristic"), list)
            return f"/serviceOrderItem/{index}/service/serviceCharacteristic" + ("/-" if has_list else "")
    return None


def _open_activity(plan: Plan, task: ManualTask) -> Activity:
    activity = plan.activity(task.activity_id)
    if activity.state not in OPEN or activity.attempt != task.attempt:
        raise TaskRefused(
            f"task {task.id}: its activity {activity.id} is {activity.state}, no longer waiting for it"
        )
    return activity


def _wanted(wanted: Any) -> list[dict[str, Any]]:
    if not isinstance(wanted, list) or not wanted:
        raise InvalidTaskInput("informationRequired: a list of {name, description} is required")
    asked = []
    for entry in wanted:
        name = entry.get("name") if isinstance(entry, dict) else None
        if not valid_field_name(name):
            raise InvalidTaskInput("informationRequired[].name: the service characteristic to supply")
        asked.append({"name": name, "description": str(entry.get("description") or "")})
    return asked
