"""The work queues (docs/dashboard.md): per work group, its manual tasks in queue order, and the
buttons people use on them: claim, start, complete with the checklist, hand back, and assign for a
dispatcher. Each button is the use case the work API calls (services/tasks.py), acting as the
dashboard's user (`person_of`); the buttons offered are those the task's own table allows that user.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from starlette.responses import Response

from provtrack.domain.tasks import TASK_FINAL, IllegalTaskMove, ManualTask, TaskAction, TaskState
from provtrack.domain.work_groups import FieldType, WorkGroup
from provtrack.services import dashboard, tasks
from provtrack.services.ports import TaskSelection
from provtrack.web.app import (
    back,
    form_fields,
    now_of,
    person_of,
    render,
    router,
    run_action,
    store_of,
    task_context,
)
from provtrack.web.filters import InvalidFilter

TASK_STATES = tuple(s.value for s in TaskState)
OPEN_STATES = tuple(s.value for s in TaskState if s not in TASK_FINAL)
QUEUE_LIMIT = 50  # tasks shown per group, the most urgent; the count says how many in all
# The buttons of the page, in the order they are shown.
OFFERED = (TaskAction.CLAIM, TaskAction.START, TaskAction.COMPLETE, TaskAction.ASSIGN, TaskAction.HAND_BACK)
CHECKLIST_PREFIX = "check:"  # a checklist field's form name: check:<field>
REASON_LIMIT = 500
_WHOLE = re.compile(r"^[+-]?\d+$")


@dataclass(frozen=True, slots=True)
class QueueFilter:
    """What the page shows; its URL holds it (`/queues?workGroup=noc&state=queued`)."""

    work_group: str = ""
    states: tuple[str, ...] = ()  # none chosen: the open ones (every state for one order)
    assignee: str = ""
    order_id: str = ""

    @classmethod
    def from_params(cls, params: Any) -> QueueFilter:
        states = tuple(s for value in params.getlist("state") for s in value.split(",") if s)
        unknown = [s for s in states if s not in TASK_STATES]
        if unknown:
            raise InvalidFilter(f"state: {', '.join(unknown)} is not one of {', '.join(TASK_STATES)}")

        def one(name: str) -> str:
            return str(params.get(name) or "").strip()

        return cls(one("workGroup"), states, one("assignee"), one("serviceOrderId"))

    @property
    def active(self) -> bool:
        return bool(self.work_group or self.states or self.assignee or self.order_id)

    def shown_states(self) -> tuple[str, ...]:
        if self.states:
            return self.states
        return TASK_STATES if self.order_id else OPEN_STATES

    def selection(self, work_group: str) -> TaskSelection:
        return TaskSelection(
            work_group=work_group,
            states=frozenset(TaskState(s) for s in self.shown_states()),
            assignee=self.assignee or None,
            order_id=self.order_id or None,
            limit=QUEUE_LIMIT,
        )

    def params(self) -> str:
        values = [("workGroup", self.work_group), ("assignee", self.assignee)]
        values += [("serviceOrderId", self.order_id)] + [("state", s) for s in self.states]
        return urlencode([(k, v) for k, v in values if v])


@dataclass(frozen=True, slots=True)
class TaskRow:
    task: dict[str, Any]  # the task's document, as the work API shows it now
    offered: frozenset[str]  # the buttons for this user: TaskAction values


@dataclass(frozen=True, slots=True)
class Queue:
    group: dict[str, Any]  # the group's definition (services.tasks.list_work_groups)
    load: dict[str, int]  # its open tasks by state, whatever the filter (counted on the queue's index)
    total: int  # tasks matching the filter in this group
    rows: list[TaskRow] = field(default_factory=list)
    admits_user: bool = True  # whether the dashboard's user may claim its tasks


def offered_actions(task: ManualTask, group: WorkGroup, actor: str) -> frozenset[str]:
    """The buttons for `actor`: the actions the task's table allows them now (the use case still
    decides: an appointment or the group's capacity can refuse a start). Claiming needs a member;
    assigning needs members to choose from."""
    offered = set()
    for action in OFFERED:
        try:
            task.check(action, actor=actor)
        except IllegalTaskMove:
            continue
        offered.add(action.value)
    if not group.admits(actor):
        offered.discard(TaskAction.CLAIM.value)
    if not group.members:
        offered.discard(TaskAction.ASSIGN.value)
    return frozenset(offered)


def checklist_values(fields: list[dict[str, Any]], form: Mapping[str, str]) -> dict[str, Any]:
    """The form's checklist as the use case takes it: numbers as numbers, a ticked box as true. A
    field left empty (a box not ticked) is not given: the use case says whether it was required,
    and a value that is not of its type goes as typed, for the use case to name."""
    values: dict[str, Any] = {}
    for f in fields:
        raw = form.get(CHECKLIST_PREFIX + str(f["name"]), "").strip()
        if raw:
            values[f["name"]] = _typed(FieldType(f.get("type", "text")), raw)
    return values


def _typed(kind: FieldType, raw: str) -> Any:
    if kind is FieldType.BOOLEAN:
        return {"true": True, "false": False}.get(raw, raw)
    if kind is FieldType.INTEGER and _WHOLE.match(raw):
        return int(raw)
    if kind is FieldType.NUMBER:
        try:
            return int(raw) if _WHOLE.match(raw) else float(raw)
        except ValueError:
            return raw
    return raw


@router.get("/queues")
def queues_page(request: Request) -> Response:
    store, catalog, now = store_of(request), request.app.state.catalog, now_of(request)
    actor = person_of(request)
    groups = tasks.list_work_groups(store, catalog)
    names = [g["name"] for g in groups]
    problem, status = None, 200
    try:
        chosen = QueueFilter.from_params(request.query_params)
        if chosen.work_group and chosen.work_group not in names:
            raise InvalidFilter(f"workGroup: no work group {chosen.work_group!r} ({', '.join(names)})")
    except InvalidFilter as exc:
        problem, status, chosen = str(exc), 400, QueueFilter()
    shown = []
    loads = dashboard.open_task_counts(
        store, [n for n in names if not chosen.work_group or n == chosen.work_group]
    )
    for definition in groups:
        name = definition["name"]
        if chosen.work_group and name != chosen.work_group:
            continue
        total, found = tasks.list_tasks(store, chosen.selection(name), now=now)
        if not total and (chosen.order_id or chosen.assignee):
            continue  # a view of one order or one person leaves the other groups out
        group = WorkGroup(name, members=tuple(definition.get("members") or ()))
        rows = [TaskRow(t, offered_actions(ManualTask.from_document(t), group, actor)) for t in found]
        shown.append(Queue(definition, loads[name], total, rows, group.admits(actor)))
    return render(
        request,
        "queues.html",
        status,
        problem=problem,
        filter=chosen,
        queues=shown,
        in_hand=[row for queue in shown for row in queue.rows if TaskAction.COMPLETE in row.offered],
        group_names=names,
        states=TASK_STATES,
        open_states=OPEN_STATES,
        actor=actor,
        back_to=f"/queues?{chosen.params()}" if chosen.active else "/queues",
        mark=dashboard.work_mark(store),
        trail=True,
    )


@router.post("/tasks/{task_id}/{action}")
async def act_on_task(task_id: str, action: str, request: Request) -> Response:
    form = await form_fields(request)
    target = form.get("back") or "/queues"
    store, ctx, catalog = store_of(request), task_context(request), request.app.state.catalog
    now = now_of(request)
    reason = form.get("reason", "").strip()[:REASON_LIMIT] or None
    assignee = form.get("assignee", "").strip()
    if action == TaskAction.ASSIGN and not assignee:
        return back(target, "Choose the member to assign the task to.", tone="error")

    def complete() -> dict[str, Any]:
        checklist = checklist_values(tasks.get_task(store, task_id, now=now)["checklist"], form)
        return tasks.complete_task(store, task_id, checklist, ctx=ctx, catalog=catalog)

    runs: dict[str, tuple[Callable[[], dict[str, Any]], str]] = {
        TaskAction.CLAIM: (
            lambda: tasks.claim_task(store, task_id, ctx=ctx, catalog=catalog),
            "Claimed by {assignee}: start it when the work begins.",
        ),
        TaskAction.START: (
            lambda: tasks.start_task(store, task_id, ctx=ctx, catalog=catalog),
            "Started by {assignee}.",
        ),
        TaskAction.COMPLETE: (complete, "Completed: its checklist is on the service, the order moves on."),
        TaskAction.ASSIGN: (
            lambda: tasks.assign_task(store, task_id, assignee, ctx=ctx, catalog=catalog),
            "Assigned to {assignee}.",
        ),
        TaskAction.HAND_BACK: (
            lambda: tasks.hand_back_task(store, task_id, reason, ctx=ctx, catalog=catalog),
            "Handed back: it waits in its group's queue.",
        ),
    }
    if action not in runs:
        return back(target, f"Unknown action {action!r}.", tone="error")
    run, done = runs[action]
    return await run_action(
        request, target, run, lambda task: f"{task['name']}: " + done.format(assignee=task.get("assignee"))
    )
