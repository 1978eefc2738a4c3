"""Manual tasks: one table of states, one of actions, and what a move does to its activity."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from provtrack.domain.activities import Activity, ActivityState
from provtrack.domain.catalog import ActivityKind
from provtrack.domain.model import ServiceOrder
from provtrack.domain.plan import Plan
from provtrack.domain.states import OrderState
from provtrack.domain.task_work import complete, fail, request_information
from provtrack.domain.tasks import (
    TASK_ACTIONS,
    TASK_FINAL,
    TASK_TRANSITIONS,
    CapacityReached,
    IllegalTaskMove,
    ManualTask,
    TaskAction,
    TaskState,
    check_capacity,
    open_task,
    ordered_queue,
)
from provtrack.domain.work_groups import (
    ChecklistField,
    FieldType,
    InvalidChecklist,
    TaskTerms,
    WorkGroup,
    validate_checklist,
)

T0 = "2026-11-27T09:00:00.000Z"
TERMS = TaskTerms(
    "Install the ONT", (ChecklistField("ontSerial"), ChecklistField("powerDbm", FieldType.NUMBER))
)


def order(**fields: Any) -> ServiceOrder:
    item = {"id": "1", "action": "add", "service": {"serviceSpecification": {"id": "visit"}}}
    placed = ServiceOrder.accept({"serviceOrderItem": [item], **fields}, order_id="so-1", now=T0, actor="t")
    placed.changes.clear()
    return placed


def handed_out(o: ServiceOrder) -> tuple[Plan, Activity, ManualTask]:
    activity = Activity(
        "a1", o.id, "1", "install", ActivityKind.MANUAL_TASK, "techs", [], 3 * 3600, task=TERMS
    )
    plan = Plan(o.id, T0, [activity], {"1": []}, started=True)
    activity.attempt = 1
    activity.move(ActivityState.IN_PROGRESS, now=T0, actor="t", changes=plan.changes)
    o.move_to(OrderState.IN_PROGRESS, now=T0, actor="t")
    o.move_item("1", OrderState.IN_PROGRESS, now=T0, actor="t")
    return plan, activity, open_task(activity, o, task_id="t1", now=T0, actor="t")


def test_no_state_is_listed_after_itself_and_the_final_states_lead_nowhere() -> None:
    for state, following in TASK_TRANSITIONS.items():
        assert state not in following
    assert {TaskState.COMPLETED, TaskState.FAILED, TaskState.WITHDRAWN} == TASK_FINAL


def test_every_action_is_a_move_of_the_table_from_states_other_than_its_target() -> None:
    for action, rule in TASK_ACTIONS.items():
        assert rule.target not in rule.allowed_from, action
        for state in rule.allowed_from:
            assert rule.target in TASK_TRANSITIONS[state], (action, state)


def test_a_refused_action_says_why_and_changes_nothing() -> None:
    _plan, _activity, task = handed_out(order())
    task.changes.clear()
    with pytest.raises(
        IllegalTaskMove, match="cannot start task t1: it is queued; start is allowed from assigned"
    ):
        task.act(TaskAction.START, now=T0, actor="amelie")
    assert (task.state, task.changes) == (TaskState.QUEUED, [])


def test_only_the_member_holding_a_task_starts_completes_or_fails_it() -> None:
    _plan, _activity, task = handed_out(order())
    task.act(TaskAction.CLAIM, now=T0, actor="amelie")
    task.assignee = "amelie"
    with pytest.raises(IllegalTaskMove, match="held by amelie, not bruno"):
        task.check(TaskAction.START, actor="bruno")
    assert task.check(TaskAction.START, actor="amelie") == TaskState.IN_PROGRESS
    assert task.check(TaskAction.HAND_BACK, actor="dispatcher") == TaskState.QUEUED  # a dispatcher may


def test_a_group_and_a_member_take_only_so_many_tasks_at_once() -> None:
    group = WorkGroup("techs", capacity=3, member_capacity=1)
    check_capacity(group, "amelie", group_load=2, member_load=0)
    with pytest.raises(CapacityReached, match="techs has 3 tasks in progress, its capacity"):
        check_capacity(group, "amelie", group_load=3, member_load=0)
    with pytest.raises(CapacityReached, match="amelie has 1 tasks in progress"):
        check_capacity(group, "amelie", group_load=1, member_load=1)
    check_capacity(WorkGroup("noc"), "nora", group_load=100, member_load=100)


def test_a_completed_task_completes_its_activity_and_leaves_its_checklist_on_the_service() -> None:
    o = order()
    plan, activity, task = handed_out(o)
    for action in (TaskAction.CLAIM, TaskAction.START):
        task.act(action, now=T0, actor="amelie")
        task.assignee = "amelie"

    with pytest.raises(InvalidChecklist):
        complete(plan, o, task, {"ontSerial": "SN-1"}, now=T0, actor="amelie")
    assert (task.state, activity.state) == (TaskState.IN_PROGRESS, ActivityState.IN_PROGRESS)
    complete(plan, o, task, {"ontSerial": "SN-1", "powerDbm": -17.5}, now=T0, actor="amelie")

    assert (task.state, activity.state) == (TaskState.COMPLETED, ActivityState.DONE)
    assert o.item("1").attributes["service"]["serviceCharacteristic"] == [
        {"name": "ontSerial", "value": "SN-1"},
        {"name": "powerDbm", "value": -17.5},
    ]


def test_a_failed_task_makes_its_activity_fall_out_and_holds_the_order() -> None:
    o = order()
    plan, activity, task = handed_out(o)
    task.act(TaskAction.CLAIM, now=T0, actor="amelie")
    task.assignee = "amelie"

    fail(plan, o, task, "noAccess", "gate locked", now=T0, actor="amelie")

    assert (task.state, activity.state, o.state.value) == (TaskState.FAILED, ActivityState.FALLOUT, "held")
    assert activity.reason == "techs: amelie could not do the task: noAccess: gate locked"


def test_asking_for_information_blocks_the_activity_and_puts_the_order_pending() -> None:
    o = order()
    plan, activity, task = handed_out(o)
    for action in (TaskAction.CLAIM, TaskAction.START):
        task.act(action, now=T0, actor="amelie")
        task.assignee = "amelie"

    request_information(plan, o, task, [{"name": "accessCode"}], now=T0, actor="amelie")

    assert (task.state, activity.state, o.state.value) == (
        TaskState.WAITING,
        ActivityState.BLOCKED,
        "pending",
    )
    assert [e["code"] for e in o.error_messages] == ["MISSING_INFORMATION"]
    assert "ServiceOrderInformationRequiredEvent" in [e.event_type for e in o.events]


def test_the_queue_takes_priority_then_jeopardy_then_due_date_then_age() -> None:
    def task(
        name: str, priority: str | None, jeopardy: str, due: str | None, created: str = T0
    ) -> ManualTask:
        return ManualTask(
            name, "o", "1", name, 1, "x", "g", 60, created, priority=priority, jeopardy=jeopardy, due=due
        )

    tasks = [
        task("none", None, "late", None),
        task("p2-late-due-later", "2", "late", "2026-12-09T00:00:00.000Z"),
        task("p2-on-track-due-sooner", "2", "onTrack", "2026-12-01T00:00:00.000Z"),
        task("p2-on-track-due-later", "2", "onTrack", "2026-12-05T00:00:00.000Z"),
        task("p2-on-track-no-date", "2", "onTrack", None),
        task("p1", "1", "onTrack", None),
    ]
    assert [t.id for t in ordered_queue(tasks)] == [
        "p1",
        "p2-late-due-later",
        "p2-on-track-due-sooner",
        "p2-on-track-due-later",
        "p2-on-track-no-date",
        "none",
    ]


def test_a_task_keeps_to_its_document_and_shows_when_it_is_expected() -> None:
    o = order(priority="2")
    _plan, _activity, task = handed_out(o)
    now = datetime(2026, 11, 27, 9, tzinfo=UTC)
    document = task.to_document(now)
    assert document["expectedCompletionDate"] == "2026-11-27T12:00:00.000Z"
    assert ManualTask.from_document(task.to_document()).to_document(now) == document
    assert task.expected_finish(now + timedelta(hours=1)) == now + timedelta(hours=4)


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        (ChecklistField("n", FieldType.NUMBER), "12", "n: must be a number"),
        (ChecklistField("n", FieldType.INTEGER), 1.5, "n: must be a whole number"),
        (ChecklistField("b", FieldType.BOOLEAN), "yes", "b: must be true or false"),
        (ChecklistField("d", FieldType.DATE), "27/11/2026", "d: must be a date such as 2026-11-27"),
        (
            ChecklistField("c", FieldType.CHOICE, values=("all", "none")),
            "some",
            "c: must be one of all, none",
        ),
    ],
)
def test_each_checklist_field_takes_only_values_of_its_type(
    field: ChecklistField, value: Any, problem: str
) -> None:
    with pytest.raises(InvalidChecklist) as refused:
        validate_checklist((field,), {field.name: value})
    assert refused.value.problems == [problem]


def test_an_optional_field_may_be_left_out() -> None:
    fields = (ChecklistField("serial"), ChecklistField("remarks", required=False))
    assert validate_checklist(fields, {"serial": "SN"}) == {"serial": "SN"}
