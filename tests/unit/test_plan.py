"""The plan: built from the catalog, scheduled on its critical path, rolled up to items and order."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from provtrack.adapters.catalog_file import parse_catalog_text
from provtrack.domain import plan as planning
from provtrack.domain.activities import (
    ACTIVITY_TRANSITIONS,
    Activity,
    ActivityState,
    IllegalActivityTransition,
    activity_of_request,
    resource_order_request,
)
from provtrack.domain.catalog import ActivityKind
from provtrack.domain.model import ServiceOrder
from provtrack.domain.plan import OrderNotFeasible, Plan
from provtrack.domain.states import OrderState

A = ActivityState
T0 = "2026-11-27T09:00:00.000Z"
CATALOG = parse_catalog_text(
    """
systems:
  inv: {url: http://inv.example.net/tmf652, progress: poll, pollInterval: PT10S}
  act: {url: http://act.example.net/tmf652, progress: hub}
workGroups: {techs: {}}
services:
  fibre:
    add:
      - {id: reserve, system: inv, resourceSpecification: port, expectedDuration: PT10M,
         characteristics: {speed: "{downloadSpeed:500}", note: "for {item.id}"}}
      - {id: install, kind: manualTask, workGroup: techs, expectedDuration: PT3H}
      - {id: activate, system: act, resourceSpecification: profile, after: [reserve, install], expectedDuration: PT5M}
    modify:
      - {id: change, system: act, resourceSpecification: profile, resourceAction: modify, expectedDuration: PT5M}
  vlan:
    add:
      - {id: configure, system: inv, resourceSpecification: vlan, characteristics: {vlan: "{vlanId}"}, expectedDuration: PT1M}
  bundle:
    add: []
""",
    source="test",
)


def item(item_id: str, spec: str = "fibre", action: str = "add", **extra: Any) -> dict[str, Any]:
    return {"id": item_id, "action": action, "service": {"serviceSpecification": {"id": spec}}, **extra}


def vlan(item_id: str, **extra: Any) -> dict[str, Any]:
    service = {
        "serviceSpecification": {"id": "vlan"},
        "serviceCharacteristic": [{"name": "vlanId", "value": 7}],
    }
    return {"id": item_id, "action": "add", "service": service, **extra}


def depends(on: str) -> dict[str, Any]:
    return {"serviceOrderItemRelationship": [{"relationshipType": "dependency", "orderItem": {"itemId": on}}]}


def order(*items: dict[str, Any]) -> ServiceOrder:
    return ServiceOrder.accept({"serviceOrderItem": list(items)}, order_id="so-1", now=T0, actor="t")


def build(o: ServiceOrder) -> Plan:
    ids = (f"a{n}" for n in itertools.count(1))
    return planning.build_plan(o, CATALOG, now=T0, new_id=lambda: next(ids))


def names(activities: list[Activity]) -> list[str]:
    return [f"{a.item_id}:{a.name}" for a in activities]


def test_each_catalog_activity_becomes_an_activity_of_the_item_with_its_dependencies() -> None:
    plan = build(order(item("1")))
    reserve, install, activate = plan.activities
    assert names(plan.activities) == ["1:reserve", "1:install", "1:activate"]
    assert activate.predecessors == [reserve.id, install.id]
    assert install.kind is ActivityKind.MANUAL_TASK
    assert reserve.characteristics == {"speed": "500", "note": "for 1"}


def test_the_critical_path_gives_the_expected_completion_date() -> None:
    o = order(item("1"))
    plan = build(o)
    started = planning.start(plan, o, now=T0, actor="t")

    assert names(started) == ["1:reserve", "1:install"]
    assert o.state.value == "inProgress"
    assert o.expected_completion_date == "2026-11-27T12:05:00.000Z"  # install 3 h, then activate 5 min
    assert plan.critical_path == ["a2", "a3"]
    assert plan.activities[2].planned_start == "2026-11-27T12:00:00.000Z"


def test_a_dependent_item_waits_for_every_activity_of_the_other_item() -> None:
    plan = build(order(vlan("2", **depends("1")), item("1")))
    configure = plan.activities[0]
    assert configure.name == "configure"
    assert configure.item_id == "2"
    assert sorted(configure.predecessors) == ["a2", "a3", "a4"]


def test_a_parent_item_waits_for_its_nested_items_and_completes_after_them() -> None:
    o = order(item("b", "bundle", serviceOrderItem=[vlan("1")]))
    plan = build(o)
    started = planning.start(plan, o, now=T0, actor="t")
    assert names(started) == ["1:configure"]

    planning.record_downstream_state(plan, o, started[0], "completed", reason=None, now=T0, actor="t")

    assert [i.state.value for i in o.all_items()] == ["completed", "completed"]
    assert o.state.value == "completed"
    assert o.completion_date == T0


def test_an_order_its_last_activity_completes_expects_its_completion_when_it_completed() -> None:
    o = order(vlan("1"))
    plan = build(o)
    [configure] = planning.start(plan, o, now=T0, actor="t")
    assert o.expected_completion_date == "2026-11-27T09:01:00.000Z"  # configure takes a minute

    later = "2026-11-27T09:07:00.000Z"
    planning.record_downstream_state(plan, o, configure, "completed", reason=None, now=later, actor="t")

    assert o.state.value == "completed"
    assert o.expected_completion_date == o.completion_date == later


@pytest.mark.parametrize(
    ("items", "code", "message"),
    [
        (
            [item("1"), item("2", "pigeon")],
            "UNKNOWN_SPECIFICATION",
            "item 2: service specification 'pigeon' is not in the catalog",
        ),
        (
            [{"id": "3", "action": "modify", "service": {"id": "svc-9"}}],
            "UNIDENTIFIED_SERVICE",
            "item 3: cannot identify the service 'svc-9' to modify: give service.serviceSpecification.id",
        ),
        (
            [item("4", "vlan", "delete")],
            "UNSUPPORTED_ACTION",
            "item 4: service specification 'vlan' has no 'delete' in the catalog",
        ),
        (
            [item("5", "vlan")],
            "MISSING_CHARACTERISTIC",
            "item 5: activity configure needs service characteristic 'vlanId'",
        ),
        (
            [item("6", **depends("7")), item("7", **depends("6"))],
            "DEPENDENCY_CYCLE",
            "item 6: items depend on each other in a cycle 6 -> 7 -> 6",
        ),
    ],
)
def test_an_order_the_catalog_cannot_deliver_is_refused_naming_the_item(
    items: list[dict[str, Any]], code: str, message: str
) -> None:
    o = order(*items)
    with pytest.raises(OrderNotFeasible) as caught:
        build(o)
    [problem] = caught.value.problems
    assert (problem.code, problem.message) == (code, message)

    planning.reject(o, caught.value.problems, now=T0, actor="t")
    assert o.state.value == "rejected"
    assert o.error_messages[0]["serviceOrderItem"] == [{"itemId": problem.item_id, "serviceOrderId": "so-1"}]
    assert o.item(problem.item_id).error_messages[0]["code"] == code


def test_a_finished_activity_adds_a_milestone_and_starts_its_successors() -> None:
    o = order(item("1"))
    plan = build(o)
    reserve, install, activate = plan.activities
    planning.start(plan, o, now=T0, actor="t")
    o.changes.clear()

    assert (
        planning.record_downstream_state(plan, o, reserve, "completed", reason=None, now=T0, actor="t") == []
    )
    started = planning.skip(plan, o, install, reason="installed by the customer", now=T0, actor="t")

    assert started == [activate]
    assert [m["name"] for m in o.milestones] == ["reserve", "install"]
    assert o.milestones[1]["status"] == "skipped"
    assert [c.subject for c in plan.changes][-3:] == ["activity[a1]", "activity[a2]", "activity[a3]"]


@pytest.mark.parametrize(
    ("downstream", "expected"),
    [
        ("held", A.BLOCKED),
        ("pending", A.BLOCKED),
        ("failed", A.FALLOUT),
        ("rejected", A.FALLOUT),
        ("partial", A.FALLOUT),
        ("completed", A.DONE),
        ("inProgress", A.IN_PROGRESS),
    ],
)
def test_downstream_states_map_to_activity_states(downstream: str, expected: ActivityState) -> None:
    o = order(item("1"))
    plan = build(o)
    reserve = planning.start(plan, o, now=T0, actor="t")[0]
    planning.record_downstream_state(plan, o, reserve, downstream, reason="no capacity", now=T0, actor="t")
    assert reserve.state is expected
    if expected is A.FALLOUT:
        assert o.state.value == "held"
        assert reserve.reason == f"inv reports the resource order {downstream}: no capacity"
    if expected is A.BLOCKED:
        assert reserve.reason == "no capacity"
        assert o.state.value == "inProgress"


def test_a_fallout_in_one_item_holds_the_whole_order_until_it_is_retried() -> None:
    o = order(vlan("1"), item("2"))
    plan = build(o)
    configure = planning.start(plan, o, now=T0, actor="t")[0]
    planning.record_downstream_state(plan, o, configure, "failed", reason=None, now=T0, actor="t")
    assert (o.state.value, o.item("1").state.value, o.item("2").state.value) == ("held", "held", "inProgress")

    assert planning.retry(plan, o, configure, now=T0, actor="t") == [configure]
    assert configure.attempt == 2
    assert configure.request_id == "a1.2"
    assert (o.state.value, o.item("1").state.value) == ("inProgress", "inProgress")


def test_a_hold_the_engine_did_not_place_is_not_lifted_when_an_activity_finishes() -> None:
    o = order(item("1"))
    plan = build(o)
    reserve = planning.start(plan, o, now=T0, actor="t")[0]
    o.move_to(OrderState.HELD, now=T0, actor="coordinator-7")  # an operator's (or escalation's) hold

    planning.record_downstream_state(plan, o, reserve, "completed", reason=None, now=T0, actor="t")

    assert o.state is OrderState.HELD


def test_the_engine_lifts_its_own_fallout_hold_once_the_fallout_clears() -> None:
    o = order(item("1"))
    plan = build(o)
    reserve = planning.start(plan, o, now=T0, actor="t")[0]
    planning.record_downstream_state(plan, o, reserve, "failed", reason=None, now=T0, actor="t")
    assert o.state is OrderState.HELD

    planning.retry(plan, o, reserve, now=T0, actor="t")

    assert o.state is OrderState.IN_PROGRESS


def test_failing_an_activity_cancels_its_successors_and_fails_the_item() -> None:
    o = order(item("1"))
    plan = build(o)
    reserve, install, _activate = plan.activities
    planning.start(plan, o, now=T0, actor="t")
    planning.record_downstream_state(plan, o, reserve, "failed", reason=None, now=T0, actor="t")
    install.move(A.BLOCKED, now=T0, actor="t", changes=plan.changes)
    planning.skip(plan, o, install, reason="done", now=T0, actor="t")

    planning.fail(plan, o, reserve, reason="no fibre here", now=T0, actor="t")

    assert [a.state for a in plan.activities] == [A.FAILED, A.SKIPPED, A.CANCELLED]
    assert o.state.value == "failed"


def test_a_resource_order_request_carries_the_activity_and_attempt() -> None:
    o = order(item("1"))
    reserve = build(o).activities[0]
    reserve.attempt = 3
    body = resource_order_request(reserve, {"priority": "2", "category": "residential"})
    assert body["externalId"] == "a1.3"
    assert body["priority"] == 2
    assert body["orderItem"][0]["resource"]["resourceSpecification"] == {"id": "port", "name": "port"}
    assert activity_of_request(body["externalId"], body["externalReference"]) == ("a1", 3)
    assert activity_of_request(None, body["externalReference"]) == ("a1", 0)
    assert activity_of_request(None, None) is None


@given(st.lists(st.sampled_from(list(ActivityState)), max_size=12))
def test_activities_only_move_along_the_table(targets: list[ActivityState]) -> None:
    activity = Activity("a", "o", "1", "n", ActivityKind.RESOURCE_ORDER, "inv", [], 60.0)
    changes: list[Any] = []
    for target in targets:
        before, recorded = activity.state, len(changes)
        if target in ACTIVITY_TRANSITIONS[before]:
            activity.move(target, now=T0, actor="t", changes=changes)
            assert activity.state == target
            assert len(changes) == recorded + 1
        else:  # a move into the state it is in included: it is not a move
            with pytest.raises(IllegalActivityTransition, match=f"cannot move from {before} to {target}"):
                activity.move(target, now=T0, actor="t", changes=changes)
            assert activity.state == before
            assert len(changes) == recorded
    assert all(c.subject == "activity[a]" for c in changes)


def test_an_activity_survives_a_round_trip_through_its_document() -> None:
    activity = build(order(item("1"))).activities[0]
    activity.error = {"status": 400, "body": {"message": "bad port"}}
    again = Activity.from_document(activity.to_document())
    assert again.to_document() == activity.to_document()
