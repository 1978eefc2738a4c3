"""Revisions under way: what a changed, added or removed item does to the plan, and when it is refused."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from provtrack.adapters.catalog_file import parse_catalog_text
from provtrack.domain import plan as planning
from provtrack.domain.activities import Activity, ActivityState
from provtrack.domain.model import ServiceOrder
from provtrack.domain.plan import Plan
from provtrack.domain.revision import RevisionRefused, revise_items
from tests.unit.builders import ACTOR, accepted_order, at

A = ActivityState
CATALOG = parse_catalog_text(
    """
systems:
  inv: {url: http://inv.example.net/tmf652, progress: poll, pollInterval: PT10S}
services:
  vlan:
    add:
      - {id: assign, system: inv, resourceSpecification: vlan, characteristics: {vlan: "{vlanId}"},
         expectedDuration: PT1M, undo: release}
      - {id: survey, system: inv, resourceSpecification: survey, after: [assign], expectedDuration: PT1H}
      - {id: configure, system: inv, resourceSpecification: cfg, characteristics: {vlan: "{vlanId}"},
         after: [survey], expectedDuration: PT5M, pointOfNoReturn: true}
      - {id: activate, system: inv, resourceSpecification: act, after: [configure], expectedDuration: PT5M}
    undo:
      - {id: release, system: inv, resourceSpecification: vlan, resourceAction: delete, expectedDuration: PT1M}
  bare:
    add:
      - {id: set, system: inv, resourceSpecification: x, characteristics: {v: "{value}"}, expectedDuration: PT1M}
      - {id: wait, system: inv, resourceSpecification: y, after: [set], expectedDuration: PT1H}
  tv:
    add:
      - {id: entitle, system: inv, resourceSpecification: tv, expectedDuration: PT1M}
""",
    source="revision-test.yaml",
)
_ids = (f"r{n}" for n in itertools.count(1))


def item(item_id: str, spec: str, **values: Any) -> dict[str, Any]:
    characteristics = [{"name": k, "value": v} for k, v in values.items()]
    return {
        "id": item_id,
        "action": "add",
        "service": {"serviceSpecification": {"id": spec}, "serviceCharacteristic": characteristics},
    }


def started(*items: dict[str, Any]) -> tuple[ServiceOrder, Plan]:
    order = accepted_order(*items)
    ids = (f"a{n}" for n in itertools.count(1))
    plan = planning.build_plan(order, CATALOG, now=at(1), new_id=lambda: next(ids))
    planning.start(plan, order, now=at(1), actor=ACTOR)
    return order, plan


def named(plan: Plan, name: str) -> Activity:
    return next(a for a in plan.activities if a.name == name)


def complete(plan: Plan, order: ServiceOrder, name: str) -> None:
    activity = named(plan, name)
    activity.external_id = f"RO-{activity.id}"
    planning.record_downstream_state(plan, order, activity, "completed", reason=None, now=at(2), actor=ACTOR)


def revise(order: ServiceOrder, plan: Plan, items: list[dict[str, Any]]) -> list[str]:
    revised = revise_items(order, plan, items, CATALOG, now=at(5), actor=ACTOR, new_id=lambda: next(_ids))
    return [a.name for a in revised.started]


def test_a_done_activity_whose_values_change_is_undone_then_done_again() -> None:
    order, plan = started(item("1", "vlan", vlanId=100))
    complete(plan, order, "assign")
    before = len(plan.activities)

    started_now = revise(order, plan, [item("1", "vlan", vlanId=200)])

    release, redo = plan.activities[before:]
    assert (release.name, release.undoes, release.state) == (
        "release",
        named(plan, "assign").id,
        A.IN_PROGRESS,
    )
    assert (redo.name, redo.characteristics, redo.predecessors) == ("assign", {"vlan": 200}, [release.id])
    assert named(plan, "configure").characteristics == {"vlan": 200}
    assert redo.id in named(plan, "configure").predecessors
    assert started_now == ["release"]
    assert named(plan, "survey").state == A.IN_PROGRESS  # its values did not change: left alone


def test_values_that_do_not_change_the_plan_change_only_the_item() -> None:
    order, plan = started(item("1", "vlan", vlanId=100))
    activities = [(a.id, a.state, a.characteristics, a.predecessors) for a in plan.activities]

    revise(order, plan, [{**item("1", "vlan", vlanId=100), "quantity": 2}])

    assert order.item("1").attributes["quantity"] == 2
    assert [(a.id, a.state, a.characteristics, a.predecessors) for a in plan.activities] == activities


def test_a_change_after_the_point_of_no_return_is_refused_and_changes_nothing() -> None:
    order, plan = started(item("1", "vlan", vlanId=100))
    complete(plan, order, "assign")
    complete(plan, order, "survey")
    complete(plan, order, "configure")
    before = (order.to_document(), [a.to_document() for a in plan.activities])

    with pytest.raises(RevisionRefused, match="too late to change item 1: activity configure"):
        revise(order, plan, [item("1", "vlan", vlanId=200)])

    assert (order.to_document(), [a.to_document() for a in plan.activities]) == before


def test_a_done_activity_with_neither_modify_nor_undo_cannot_take_new_values() -> None:
    order, plan = started(item("1", "bare", value=1))
    complete(plan, order, "set")
    with pytest.raises(RevisionRefused, match="neither a modify for the service nor an undo"):
        revise(order, plan, [item("1", "bare", value=2)])


def test_an_added_item_is_planned_and_started() -> None:
    order, plan = started(item("1", "vlan", vlanId=100))
    assert revise(order, plan, [item("1", "vlan", vlanId=100), item("2", "tv")]) == ["entitle"]
    assert [i.id for i in order.items] == ["1", "2"]
    assert plan.item_waits["2"] == []


def test_an_item_not_started_is_removed_and_one_under_way_is_not() -> None:
    order, plan = started(
        item("1", "vlan", vlanId=100), {**item("2", "tv"), "serviceOrderItemRelationship": []}
    )
    with pytest.raises(RevisionRefused, match="item 1 cannot be removed: its work has started"):
        revise(order, plan, [item("2", "tv")])
    order2, plan2 = started(
        item("1", "vlan", vlanId=100),
        {
            **item("2", "tv"),
            "serviceOrderItemRelationship": [
                {"relationshipType": "dependency", "orderItem": {"itemId": "1"}}
            ],
        },
    )
    revise(order2, plan2, [item("1", "vlan", vlanId=100)])
    assert [i.id for i in order2.items] == ["1"]
    assert named(plan2, "entitle").state == A.CANCELLED
    assert "2" not in plan2.item_waits
