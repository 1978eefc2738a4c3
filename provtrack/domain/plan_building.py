"""What the catalog makes of a service order: the activities of each item and the graph they form, or
the problems (each naming its item) that make it an order the catalog cannot deliver.

Dependencies form one graph: the catalog's `after` edges within an item, every activity of an item
that has a `dependency` relationship on another item waits for all of that item's activities, and a
parent item's activities wait for those of its nested items.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from provtrack.domain.activities import Activity
from provtrack.domain.catalog import (
    ActivityKind,
    ActivitySpec,
    Catalog,
    ServiceSpec,
    fill_template,
    find_cycle,
    template_names,
)
from provtrack.domain.clock import InvalidDateTime, normalise_datetime
from provtrack.domain.model import ServiceOrder, ServiceOrderItem


@dataclass(frozen=True, slots=True)
class ItemProblem:
    item_id: str
    code: str
    message: str


class Draft(NamedTuple):
    """The activities of an order's plan and the items each item waits for (dependencies, nested
    items); or, when `problems` is not empty, why the catalog cannot deliver it (no activities)."""

    activities: list[Activity]
    item_waits: dict[str, list[str]]
    problems: list[ItemProblem]


def draft_activities(order: ServiceOrder, catalog: Catalog, *, new_id: Callable[[], str]) -> Draft:
    """One activity per catalog activity per item, wired into one dependency graph."""
    problems: list[ItemProblem] = []
    by_item: dict[str, dict[str, Activity]] = {}
    waits: dict[str, list[str]] = {}
    for item in order.all_items():
        waits[item.id] = _item_waits(item)
        spec = _spec_of(item, catalog, problems)
        if spec is not None:
            by_item[item.id] = _item_activities(order, item, spec, problems, new_id)
            for activity in by_item[item.id].values():
                _coordinate(activity, item, catalog, problems)
    cycle = find_cycle(waits)
    if cycle:
        message = f"item {cycle[0]}: items depend on each other in a cycle {' -> '.join([*cycle, cycle[0]])}"
        problems.append(ItemProblem(cycle[0], "DEPENDENCY_CYCLE", message))
    if problems:
        return Draft([], waits, problems)
    # Cross-item edges: an item's activities wait for every activity of the items it waits for.
    for item_id, made in by_item.items():
        before = [a.id for other in _closure(item_id, waits) for a in by_item.get(other, {}).values()]
        for activity in made.values():
            activity.predecessors.extend(x for x in before if x not in activity.predecessors)
    return Draft([a for made in by_item.values() for a in made.values()], waits, [])


def _item_activities(
    order: ServiceOrder,
    item: ServiceOrderItem,
    spec: ServiceSpec,
    problems: list[ItemProblem],
    new_id: Callable[[], str],
) -> dict[str, Activity]:
    """The item's activities by catalog id, with their `after` edges; a problem per one that cannot be made."""
    values = template_values(order, item)
    # A field of an earlier task's checklist becomes a service characteristic when the task is done.
    from_tasks = _checklist_names(spec.activities.get(item.action, ()))
    made: dict[str, Activity] = {}
    for definition in spec.activities.get(item.action, ()):
        missing = [
            n
            for n, default in _placeholders(definition.characteristics)
            if default is None and n not in values and n not in from_tasks
        ]
        if missing:
            problems.append(
                ItemProblem(
                    item.id,
                    "MISSING_CHARACTERISTIC",
                    f"item {item.id}: activity {definition.id} needs service characteristic "
                    f"{', '.join(repr(m) for m in missing)}",
                )
            )
            continue
        made[definition.id] = _activity(order, item, definition, values, new_id(), from_tasks=from_tasks)
        made[definition.id].predecessors = [made[b].id for b in definition.after if b in made]
    return made


def draft_item(
    order: ServiceOrder, item: ServiceOrderItem, catalog: Catalog, *, new_id: Callable[[], str]
) -> tuple[list[Activity], list[str], list[ItemProblem]]:
    """One item's activities (their `after` edges wired) and the items it waits for, or the problems
    that make it one the catalog cannot deliver (an item added to an order under way)."""
    problems: list[ItemProblem] = []
    spec = _spec_of(item, catalog, problems)
    made = _item_activities(order, item, spec, problems, new_id) if spec is not None else {}
    return list(made.values()), _item_waits(item), problems


def activity_from_spec(
    order: ServiceOrder, item: ServiceOrderItem, definition: ActivitySpec, *, new_id: Callable[[], str]
) -> Activity:
    """One activity of the item made from a catalog activity (an undo or a revision adds them to a
    plan under way), its characteristics filled from the item; no predecessors."""
    return _activity(order, item, definition, template_values(order, item), new_id())


def _activity(
    order: ServiceOrder,
    item: ServiceOrderItem,
    definition: ActivitySpec,
    values: dict[str, Any],
    activity_id: str,
    *,
    from_tasks: frozenset[str] = frozenset(),
) -> Activity:
    """`from_tasks`: checklist fields of the item's tasks; a characteristic made of one waits for
    its task (`deferred_characteristics`), filled when the activity starts."""
    waits = {k for k, v in definition.characteristics.items() if _waits_for_task(v, values, from_tasks)}
    return Activity(
        id=activity_id,
        order_id=order.id,
        item_id=item.id,
        name=definition.id,
        kind=definition.kind,
        owner=definition.owner,
        predecessors=[],
        expected_seconds=definition.expected_duration.total_seconds(),
        description=definition.description,
        point_of_no_return=definition.point_of_no_return,
        undo=definition.undo,
        resource_specification=definition.resource_specification,
        resource_action=definition.resource_action,
        characteristics={
            k: fill_template(v, values) for k, v in definition.characteristics.items() if k not in waits
        },
        deferred_characteristics={k: v for k, v in definition.characteristics.items() if k in waits},
        task=definition.task,
        service_specification=definition.service_specification,
    )


def spec_of_item(item: ServiceOrderItem, catalog: Catalog) -> ServiceSpec | None:
    """The catalog's service specification of an item, None when it names none the catalog knows."""
    service = item.attributes.get("service") or {}
    spec_ref = service.get("serviceSpecification") or {}
    spec_id = spec_ref.get("id") if isinstance(spec_ref, dict) else None
    return catalog.services.get(str(spec_id)) if spec_id else None


def _spec_of(item: ServiceOrderItem, catalog: Catalog, problems: list[ItemProblem]) -> ServiceSpec | None:
    service = item.attributes.get("service") or {}
    spec_ref = service.get("serviceSpecification") or {}
    spec_id = spec_ref.get("id") if isinstance(spec_ref, dict) else None
    if item.action == "noChange":
        return None
    if not spec_id:
        problems.append(
            ItemProblem(
                item.id,
                "UNIDENTIFIED_SERVICE",
                f"item {item.id}: cannot identify the service {service.get('id')!r} to {item.action}: "
                "give service.serviceSpecification.id",
            )
        )
        return None
    spec = catalog.services.get(str(spec_id))
    if spec is None:
        problems.append(
            ItemProblem(
                item.id,
                "UNKNOWN_SPECIFICATION",
                f"item {item.id}: service specification {spec_id!r} is not in the catalog",
            )
        )
        return None
    if item.action not in spec.activities:
        problems.append(
            ItemProblem(
                item.id,
                "UNSUPPORTED_ACTION",
                f"item {item.id}: service specification {spec_id!r} has no {item.action!r} in the catalog",
            )
        )
        return None
    return spec


def _item_waits(item: ServiceOrderItem) -> list[str]:
    waits = [c.id for c in item.children]
    for rel in item.attributes.get("serviceOrderItemRelationship") or []:
        if isinstance(rel, dict) and rel.get("relationshipType") == "dependency":
            other = (rel.get("orderItem") or {}).get("itemId")
            if other and other not in waits:
                waits.append(str(other))
    return waits


def _closure(item_id: str, waits: dict[str, list[str]]) -> list[str]:
    seen: list[str] = []
    queue = deque(waits.get(item_id, []))
    while queue:
        other = queue.popleft()
        if other not in seen and other != item_id:
            seen.append(other)
            queue.extend(waits.get(other, []))
    return seen


def template_values(order: ServiceOrder, item: ServiceOrderItem) -> dict[str, Any]:
    service = item.attributes.get("service") or {}
    values: dict[str, Any] = {"order.id": order.id, "item.id": item.id}
    if service.get("id"):
        values["service.id"] = service["id"]
    for characteristic in service.get("serviceCharacteristic") or []:
        if isinstance(characteristic, dict) and "name" in characteristic:
            values[str(characteristic["name"])] = characteristic.get("value")
    return values


def _checklist_names(definitions: tuple[ActivitySpec, ...]) -> frozenset[str]:
    return frozenset(f.name for d in definitions if d.task for f in d.task.checklist)


def _waits_for_task(value: Any, values: dict[str, Any], from_tasks: frozenset[str]) -> bool:
    """A value naming a checklist field the order does not give itself: filled when it starts."""
    return any(n in from_tasks and n not in values for n, _ in template_names(value))


def _coordinate(
    activity: Activity, item: ServiceOrderItem, catalog: Catalog, problems: list[ItemProblem]
) -> None:
    """A manual task takes its group's working hours and the item's appointment (TMF646
    AppointmentRef), whose `validFor.startDateTime`, when the sender gives it, bounds its start."""
    if activity.kind is not ActivityKind.MANUAL_TASK:
        return
    group = catalog.work_groups.get(activity.owner)
    if group is not None and not group.hours.always:
        activity.working_hours = group.hours
    appointment = item.attributes.get("appointment")
    if not isinstance(appointment, dict):
        return
    activity.appointment = appointment
    start = (appointment.get("validFor") or {}).get("startDateTime")
    if start is None:
        return
    try:
        activity.earliest_start = normalise_datetime(str(start))
    except InvalidDateTime:
        problems.append(
            ItemProblem(
                item.id,
                "INVALID_APPOINTMENT",
                f"item {item.id}: appointment.validFor.startDateTime {start!r} is not a date-time",
            )
        )


def _placeholders(characteristics: Any) -> list[tuple[str, str | None]]:
    return [p for value in characteristics.values() for p in template_names(value)]
