"""Operator actions follow the activity's state table: from every state, each action is either done
or refused before it records anything (no change, no milestone, no event, no field touched)."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest

from provtrack.adapters.catalog_file import parse_catalog_text
from provtrack.domain import plan as planning
from provtrack.domain.activities import (
    ACTIVITY_TRANSITIONS,
    OPERATOR_ACTIONS,
    ActionRefused,
    Activity,
    ActivityState,
    OperatorAction,
)
from provtrack.domain.model import ServiceOrder
from provtrack.domain.plan import Plan

A = ActivityState
Op = OperatorAction
T0 = "2026-11-27T09:00:00.000Z"
T1 = "2026-11-27T09:30:00.000Z"
CATALOG = parse_catalog_text(
    """
systems:
  inv: {url: http://inv.example.net/tmf652, progress: poll, pollInterval: PT10S}
services:
  fibre:
    add:
      - {id: reserve, system: inv, resourceSpecification: port, expectedDuration: PT10M}
      - {id: activate, system: inv, resourceSpecification: profile, after: [reserve], expectedDuration: PT5M}
      - {id: test-line, system: inv, resourceSpecification: probe, after: [activate], expectedDuration: PT5M}
""",
    source="test",
)

# The rule, written out: retry is for fallout only; skip and fail never repeat themselves.
ALLOWED: dict[OperatorAction, set[ActivityState]] = {
    Op.RETRY: {A.FALLOUT},
    Op.SKIP: {A.PLANNED, A.IN_PROGRESS, A.BLOCKED, A.FALLOUT},
    Op.FAIL: {A.IN_PROGRESS, A.BLOCKED, A.FALLOUT},
}

Action = Callable[[Plan, ServiceOrder, Activity], list[Activity]]
ACTIONS: dict[OperatorAction, Action] = {
    Op.RETRY: lambda p, o, a: planning.retry(p, o, a, now=T1, actor="operator"),
    Op.SKIP: lambda p, o, a: planning.skip(p, o, a, reason="done by hand", now=T1, actor="operator"),
    Op.FAIL: lambda p, o, a: planning.fail(p, o, a, reason="no fibre here", now=T1, actor="operator"),
}


def started_plan() -> tuple[Plan, ServiceOrder]:
    """A started plan of one item: reserve -> activate -> test-line; reserve is in progress."""
    fibre = {"id": "1", "action": "add", "service": {"serviceSpecification": {"id": "fibre"}}}
    order = ServiceOrder.accept({"serviceOrderItem": [fibre]}, order_id="so-1", now=T0, actor="t")
    ids = (f"a{n}" for n in itertools.count(1))
    plan = planning.build_plan(order, CATALOG, now=T0, new_id=lambda: next(ids))
    planning.start(plan, order, now=T0, actor="t")
    return plan, order


def downstream(plan: Plan, order: ServiceOrder, activity: Activity, state: str) -> None:
    planning.record_downstream_state(plan, order, activity, state, reason="as told", now=T0, actor="inv")


def activate_in(state: ActivityState) -> tuple[Plan, ServiceOrder, Activity]:
    """The plan with its middle activity (activate) brought into `state` the way it gets there."""
    plan, order = started_plan()
    reserve, activate, _test_line = plan.activities
    if state is A.CANCELLED:  # its predecessor was given up for good
        planning.fail(plan, order, reserve, now=T0, actor="t")
        return plan, order, activate
    if state is not A.PLANNED:
        downstream(plan, order, reserve, "completed")
    steps: dict[ActivityState, Callable[[], object]] = {
        A.BLOCKED: lambda: downstream(plan, order, activate, "held"),
        A.FALLOUT: lambda: downstream(plan, order, activate, "failed"),
        A.DONE: lambda: downstream(plan, order, activate, "completed"),
        A.SKIPPED: lambda: planning.skip(plan, order, activate, reason="first", now=T0, actor="t"),
        A.FAILED: lambda: planning.fail(plan, order, activate, reason="first", now=T0, actor="t"),
    }
    if state in steps:
        steps[state]()
    assert activate.state is state
    return plan, order, activate


def snapshot(plan: Plan, order: ServiceOrder) -> tuple[object, ...]:
    return (
        [a.to_document() for a in plan.activities],
        len(plan.changes),
        order.to_document(),
        len(order.changes),
        len(order.events),
    )


def test_the_rule_covers_every_operator_action() -> None:
    assert set(ACTIONS) == set(OperatorAction) == set(OPERATOR_ACTIONS) == set(ALLOWED)


@pytest.mark.parametrize("action", list(OperatorAction))
def test_every_operator_action_is_a_move_of_the_activity_table_and_never_into_the_state_it_is_in(
    action: OperatorAction,
) -> None:
    rule = OPERATOR_ACTIONS[action]
    assert rule.allowed_from == ALLOWED[action]
    assert rule.target not in rule.allowed_from
    assert all(rule.target in ACTIVITY_TRANSITIONS[source] for source in rule.allowed_from)


@pytest.mark.parametrize("action", list(OperatorAction))
@pytest.mark.parametrize("state", list(ActivityState))
def test_an_operator_action_is_done_from_the_states_its_rule_allows_and_refused_from_the_others(
    state: ActivityState, action: OperatorAction
) -> None:
    plan, order, activity = activate_in(state)
    before = snapshot(plan, order)

    if state not in ALLOWED[action]:
        with pytest.raises(ActionRefused, match=f"cannot {action} activity a2: it is {state};") as refused:
            ACTIONS[action](plan, order, activity)
        assert (refused.value.current, refused.value.action) == (state, action)
        assert snapshot(plan, order) == before
        return

    attempt = activity.attempt
    ACTIONS[action](plan, order, activity)
    target = OPERATOR_ACTIONS[action].target
    last_move = [c for c in plan.changes if c.subject == "activity[a2]"][-1]
    assert (last_move.old, last_move.new, last_move.actor) == (state, target, "operator")
    if action is Op.RETRY:
        assert (activity.state, activity.attempt, activity.external_id) == (A.IN_PROGRESS, attempt + 1, None)
    elif action is Op.SKIP:
        assert (activity.state, activity.skip_reason) == (A.SKIPPED, "done by hand")
        assert order.milestones[-1]["id"] == "a2"
    else:
        assert (activity.state, activity.reason) == (A.FAILED, "no fibre here")


def test_a_retry_refused_for_work_in_flight_leaves_its_attempt_and_downstream_order() -> None:
    plan, order, activity = activate_in(A.IN_PROGRESS)
    activity.external_id = "INV-7"

    with pytest.raises(ActionRefused, match="it is inProgress; retry is allowed from fallout"):
        planning.retry(plan, order, activity, now=T1, actor="operator")

    assert (activity.attempt, activity.request_id, activity.external_id) == (1, "a2.1", "INV-7")


def test_skipping_twice_keeps_the_first_reason_and_one_milestone() -> None:
    plan, order, activity = activate_in(A.FALLOUT)
    planning.skip(plan, order, activity, reason="reserved by hand", now=T1, actor="operator")

    with pytest.raises(ActionRefused, match="cannot skip activity a2: it is skipped"):
        planning.skip(plan, order, activity, reason="again", now=T1, actor="operator")

    assert activity.skip_reason == "reserved by hand"
    assert [m["id"] for m in order.milestones] == ["a1", "a2"]


def test_failing_twice_keeps_the_first_reason() -> None:
    plan, order, activity = activate_in(A.BLOCKED)
    planning.fail(plan, order, activity, reason="no fibre here", now=T1, actor="operator")

    with pytest.raises(ActionRefused, match="cannot fail activity a2: it is failed"):
        planning.fail(plan, order, activity, reason="changed my mind", now=T1, actor="operator")

    assert activity.reason == "no fibre here"


@pytest.mark.parametrize("repeated", ["acknowledged", "inProgress", "held", "failed", "completed"])
def test_a_downstream_state_repeated_is_nothing_to_do(repeated: str) -> None:
    plan, order, activity = activate_in(A.IN_PROGRESS)
    downstream(plan, order, activity, repeated)
    before = snapshot(plan, order)

    downstream(plan, order, activity, repeated)

    assert snapshot(plan, order) == before
