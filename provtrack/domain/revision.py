"""Revisions under way: a PATCH of an order's items (characteristics changed, an item added or removed)
once the order has a plan re-plans only what changed (docs/cancellation.md, "Revisions in flight").

- Changed characteristics: activities not started take the new values; a done activity whose values
  change is invalidated: the service's catalog `modify` activities are added when it has them, else it
  is undone (its catalog `undo`) and done again with the new values; activities whose values do not
  change are left alone. Refused after the item's point of no return, for a finished item, while an
  activity whose values change is under way at its system, and for a done one with neither a
  `modify` nor an `undo`.
- An added item is planned from the catalog and starts as its dependencies allow.
- A removed item's activities are cancelled and it leaves the order. Refused once its work has started
  (an activity under way or done), when another item depends on it, or when it is the last item
  under way (cancel the order instead).

Each refusal is a `RevisionRefused` (409) that names the item and the reason, raised before anything
changed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from provtrack.domain.activities import ACTIVITY_TERMINAL, OPEN, Activity, ActivityState
from provtrack.domain.cancellation_impact import (
    PASSED,
    delivery_activities,
    reverse_dependency_order,
    stoppable,
    undo_definition,
)
from provtrack.domain.catalog import Catalog
from provtrack.domain.model import Change, ServiceOrder, ServiceOrderItem
from provtrack.domain.patching import ITEM_SERVER_FIELDS, NotPatchable, PatchConflict
from provtrack.domain.plan import Plan, advance
from provtrack.domain.plan_building import activity_from_spec, draft_item, spec_of_item
from provtrack.domain.states import TERMINAL_STATES
from provtrack.domain.validation import validate_items


class RevisionRefused(PatchConflict):
    """A revision the order cannot take now (HTTP 409); the message names the item and says why."""


@dataclass(slots=True)
class Revised:
    """What a revision did that the caller must follow up on."""

    started: list[Activity] = field(default_factory=list)  # activities to hand out
    dropped: list[str] = field(default_factory=list)  # activities whose dispatch and polls end


@dataclass(slots=True)
class _Context:
    order: ServiceOrder
    plan: Plan
    catalog: Catalog
    now: str
    actor: str
    new_id: Callable[[], str]


def revise_items(
    order: ServiceOrder,
    plan: Plan | None,
    items: Any,
    catalog: Catalog | None,
    *,
    now: str,
    actor: str,
    new_id: Callable[[], str],
) -> Revised:
    """Apply the PATCHed item list `items` to an order (and its plan, when it has one)."""
    checked = validate_items(items, refuse_server_owned=False)
    if plan is not None and plan.cancellation is not None:
        raise RevisionRefused(f"service order {order.id} is being cancelled: its items cannot change")
    current = {i.id: i for i in order.items}
    wanted = {str(doc["id"]): doc for doc in checked}
    _check_existing_items(order, checked)
    if plan is None or catalog is None:
        return _revise_unplanned(order, current, wanted, now=now, actor=actor)
    ctx = _Context(order, plan, catalog, now, actor, new_id)
    removed = [item for item_id, item in current.items() if item_id not in wanted]
    added = [doc for item_id, doc in wanted.items() if item_id not in current]
    flat = dict(_flatten(checked))
    changed = [
        (item, new_attributes)
        for item in order.all_items()
        if item.id in flat and (new_attributes := _attributes(item, flat[item.id])) != item.attributes
    ]
    for item in removed:
        _check_removal(ctx, item, remaining=[i for i in order.items if i not in removed])
    plans = [(item, attributes, _plan_change(ctx, item, attributes)) for item, attributes in changed]
    drafts = [(doc, _draft_addition(ctx, doc)) for doc in added]
    revised = Revised()
    for item in removed:
        revised.dropped += _remove(ctx, item)
    for item, attributes, change in plans:
        _apply_change(ctx, item, attributes, change)
    for doc, draft in drafts:
        _add(ctx, doc, draft)
    plan.changes.append(
        Change(
            "plan",
            "revision",
            None,
            {
                "removed": [i.id for i in removed],
                "changed": [i.id for i, _ in changed],
                "added": [d["id"] for d in added],
            },
            now,
            actor,
        )
    )
    revised.started += advance(plan, order, now=now, actor=actor)
    return revised


# --- changed characteristics -------------------------------------------------------------------


@dataclass(slots=True)
class _ItemChange:
    refill: list[tuple[Activity, dict[str, Any]]] = field(default_factory=list)  # not started: new values
    invalidated: list[tuple[Activity, Activity]] = field(default_factory=list)  # done: (old, as now drafted)


def _plan_change(ctx: _Context, item: ServiceOrderItem, attributes: dict[str, Any]) -> _ItemChange:
    """What changing the item's attributes does to its activities; refused (nothing changed yet) when
    it cannot be done now."""
    own = _own(ctx.plan, item.id)
    if not own:
        return _ItemChange()
    if item.state in TERMINAL_STATES:
        raise RevisionRefused(
            f"item {item.id} is {item.state}: it can no longer change; order a modify instead"
        )
    if _specification(item.attributes) != _specification(attributes):
        raise RevisionRefused(
            f"item {item.id}: its service specification cannot change; remove it and add another"
        )
    _refuse_past_point_of_no_return(ctx, item, own, "change")
    revised_item = ServiceOrderItem(item.id, item.action, item.state, attributes)
    drafted, _, problems = draft_item(ctx.order, revised_item, ctx.catalog, new_id=ctx.new_id)
    if problems:
        raise RevisionRefused("; ".join(p.message for p in problems))
    by_name = {a.name: a for a in drafted}
    change = _ItemChange()
    for activity in own:
        new = by_name.get(activity.name)
        if new is None or new.characteristics == activity.characteristics:
            continue
        if activity.state in (ActivityState.PLANNED, ActivityState.FALLOUT):
            change.refill.append((activity, new.characteristics))
        elif activity.state in OPEN:
            raise RevisionRefused(
                f"item {item.id}: activity {activity.name} ({activity.id}) is under way at {activity.owner} "
                "with the values it was sent with; change the item once it has finished"
            )
        elif activity.state == ActivityState.DONE:
            change.invalidated.append((activity, new))
    spec = spec_of_item(item, ctx.catalog)
    if change.invalidated and not (spec is not None and spec.activities.get("modify")):
        for activity, _ in change.invalidated:
            if undo_definition(ctx.order, activity, ctx.catalog) is None:
                raise RevisionRefused(
                    f"item {item.id}: activity {activity.name} ({activity.id}) is done with the old values, "
                    "and the catalog has neither a modify for the service nor an undo for it"
                )
    return change


def _apply_change(
    ctx: _Context, item: ServiceOrderItem, attributes: dict[str, Any], change: _ItemChange
) -> None:
    ctx.order.replace_item_attributes(item.id, attributes, now=ctx.now, actor=ctx.actor)
    for activity, characteristics in change.refill:
        old = activity.characteristics
        activity.characteristics = characteristics
        ctx.plan.changes.append(
            Change(activity.subject, "characteristics", old, characteristics, ctx.now, ctx.actor)
        )
    if not change.invalidated:
        return
    spec = spec_of_item(item, ctx.catalog)
    modify = spec.activities.get("modify") if spec is not None else None
    added = _modify_activities(ctx, item, modify) if modify else _undo_and_redo(ctx, item, change.invalidated)
    revised = {a.id for a in ctx.plan.of_item(item.id)}
    for waiting in ctx.plan.activities:  # what waits for the item's work now waits for it done again
        if waiting.state == ActivityState.PLANNED and (
            waiting.item_id == item.id or revised & set(waiting.predecessors)
        ):
            waiting.predecessors.extend(a.id for a in added if a.id not in waiting.predecessors)
    ctx.plan.activities.extend(added)


def _modify_activities(ctx: _Context, item: ServiceOrderItem, definitions: Any) -> list[Activity]:
    """The service's catalog `modify` activities, with the item's new values (modify resource orders)."""
    made = {d.id: activity_from_spec(ctx.order, item, d, new_id=ctx.new_id) for d in definitions}
    for definition in definitions:
        made[definition.id].predecessors = [made[b].id for b in definition.after if b in made]
    return list(made.values())


def _undo_and_redo(
    ctx: _Context, item: ServiceOrderItem, invalidated: list[tuple[Activity, Activity]]
) -> list[Activity]:
    """Undo the invalidated activities (dependants first), then do them again with the new values."""
    by_old = {old.id: new for old, new in invalidated}
    chain: list[Activity] = []
    for old in reverse_dependency_order([o for o, _ in invalidated]):
        definition = undo_definition(ctx.order, old, ctx.catalog)
        assert definition is not None  # checked by _plan_change
        undo = activity_from_spec(ctx.order, item, definition, new_id=ctx.new_id)
        undo.undoes = old.id
        undo.predecessors = [chain[-1].id] if chain else []
        chain.append(undo)
    for old in reversed(reverse_dependency_order([o for o, _ in invalidated])):
        redo = by_old[old.id]  # drafted with the new values, and an id of its own
        redo.predecessors = [chain[-1].id]
        chain.append(redo)
    return chain


# --- added and removed items -------------------------------------------------------------------


def _draft_addition(ctx: _Context, doc: dict[str, Any]) -> tuple[ServiceOrderItem, list[Activity], list[str]]:
    item = ServiceOrderItem.from_document({**doc, "state": "acknowledged"})
    activities, waits, problems = draft_item(ctx.order, item, ctx.catalog, new_id=ctx.new_id)
    if problems:
        raise RevisionRefused("; ".join(p.message for p in problems))
    return item, activities, waits


def _add(
    ctx: _Context, doc: dict[str, Any], draft: tuple[ServiceOrderItem, list[Activity], list[str]]
) -> None:
    _, activities, waits = draft
    item = ctx.order.add_item(
        {k: v for k, v in doc.items() if k not in ("state", "errorMessage")}, now=ctx.now, actor=ctx.actor
    )
    before = [a.id for other in waits for a in ctx.plan.of_item(other)]
    for activity in activities:
        activity.predecessors.extend(b for b in before if b not in activity.predecessors)
    ctx.plan.item_waits[item.id] = waits
    ctx.plan.activities.extend(activities)


def _check_removal(ctx: _Context, item: ServiceOrderItem, *, remaining: list[ServiceOrderItem]) -> None:
    if item.state in TERMINAL_STATES:
        raise RevisionRefused(f"item {item.id} is {item.state}: it can no longer be removed")
    if not any(i.state not in TERMINAL_STATES for i in remaining):
        raise RevisionRefused(f"item {item.id} is the last item under way: cancel the order instead")
    dependants = [i.id for i in remaining if item.id in ctx.plan.item_waits.get(i.id, [])]
    if dependants:
        raise RevisionRefused(f"item {item.id} cannot be removed: item {', '.join(dependants)} depends on it")
    own = [a for i in item.walk() for a in _own(ctx.plan, i.id)]
    _refuse_past_point_of_no_return(ctx, item, own, "remove")
    started = [a for a in own if a.state in OPEN or a.state in PASSED]
    if started:
        first = started[0]
        raise RevisionRefused(
            f"item {item.id} cannot be removed: its work has started (activity {first.name} ({first.id}) is "
            f"{first.state}); cancel the order to have it stopped and undone"
        )


def _remove(ctx: _Context, item: ServiceOrderItem) -> list[str]:
    dropped = []
    for activity in [a for i in item.walk() for a in _own(ctx.plan, i.id)]:
        if activity.state not in ACTIVITY_TERMINAL:
            activity.reason = "its item was removed from the order"
            activity.move(ActivityState.CANCELLED, now=ctx.now, actor=ctx.actor, changes=ctx.plan.changes)
            dropped.append(activity.id)
    for waited in item.walk():
        ctx.plan.item_waits.pop(waited.id, None)
    ctx.order.remove_item(item.id, now=ctx.now, actor=ctx.actor)
    return dropped


# --- shared --------------------------------------------------------------------------------------


def _revise_unplanned(
    order: ServiceOrder,
    current: dict[str, ServiceOrderItem],
    wanted: dict[str, dict[str, Any]],
    *,
    now: str,
    actor: str,
) -> Revised:
    """An order not planned yet: its items change, planning takes them as they are."""
    for item_id in current:
        if item_id not in wanted:
            order.remove_item(item_id, now=now, actor=actor)
    flat = dict(_flatten(list(wanted.values())))
    for item in order.all_items():
        order.replace_item_attributes(item.id, _attributes(item, flat[item.id]), now=now, actor=actor)
    for item_id, doc in wanted.items():
        if item_id not in current:
            order.add_item(
                {k: v for k, v in doc.items() if k not in ("state", "errorMessage")}, now=now, actor=actor
            )
    return Revised()


def _refuse_past_point_of_no_return(
    ctx: _Context, item: ServiceOrderItem, own: list[Activity], what: str
) -> None:
    for activity in own:
        if activity.point_of_no_return and (
            activity.state in PASSED or (activity.state in OPEN and not stoppable(activity, ctx.catalog))
        ):
            raise RevisionRefused(
                f"too late to {what} item {item.id}: activity {activity.name} ({activity.id}) is "
                f"{activity.state} and is the point of no return"
            )


def _check_existing_items(order: ServiceOrder, checked: list[dict[str, Any]]) -> None:
    """Items are added and removed at the top level; an existing item keeps its action and state."""
    flat = dict(_flatten(checked))
    for item in order.all_items():
        doc = flat.get(item.id)
        if doc is None:
            continue
        if doc.get("action") != item.action:
            raise NotPatchable(f"item {item.id}.action", "cannot be patched")
        if doc.get("state", item.state.value) != item.state.value:
            raise NotPatchable(f"item {item.id}.state", "is set by the server")
        if {str(c["id"]) for c in doc.get("serviceOrderItem") or []} != {c.id for c in item.children}:
            raise RevisionRefused(
                f"item {item.id}: nested items cannot be added or removed; revise the top-level items"
            )


def _flatten(items: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for doc in items:
        found.append((str(doc["id"]), doc))
        found += _flatten(doc.get("serviceOrderItem") or [])
    return found


def _attributes(item: ServiceOrderItem, doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k not in ITEM_SERVER_FIELDS}


def _own(plan: Plan, item_id: str) -> list[Activity]:
    return [a for a in delivery_activities(plan) if a.item_id == item_id]


def _specification(attributes: dict[str, Any]) -> Any:
    return ((attributes.get("service") or {}).get("serviceSpecification") or {}).get("id")
