"""Manual tasks and work queues (docs/coordination.md): the use cases of the work API, and the
after-change hook that keeps every order's tasks in step with it.

Each action is one change of the task's order through the unit of work (`change_plan`, holding the
writer lock on SQLite and a lock on the work group on PostgreSQL while it counts the group's work),
checked by the task's tables before it changes anything.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from provtrack.domain import plan as planning
from provtrack.domain import task_work
from provtrack.domain.activities import OPEN, Activity
from provtrack.domain.catalog import ActivityKind, Catalog
from provtrack.domain.clock import parse_datetime
from provtrack.domain.coordination_catalog import read_work_group
from provtrack.domain.model import Change, ServiceOrder
from provtrack.domain.plan import Plan
from provtrack.domain.states import OrderState
from provtrack.domain.tasks import (
    ManualTask,
    TaskAction,
    TaskState,
    check_appointment,
    check_capacity,
    check_member,
    follow_order,
)
from provtrack.domain.work_groups import WorkGroup
from provtrack.services.ports import (
    Context,
    ManualTaskNotFound,
    Store,
    TaskSelection,
    Transaction,
)
from provtrack.services.provisioning import change_plan, hand_out

TaskStep = Callable[[Transaction, ServiceOrder, Plan, ManualTask], list[Activity]]
# What in a change of an order can concern its tasks (anything else spares the hook a query).
_FOLLOWED = frozenset({"priority", "jeopardyAlert", "requestedCompletionDate", "state"})


class UnknownWorkGroup(LookupError):
    """No work group by that name (in the catalog, or defined through the API)."""

    def __init__(self, name: str) -> None:
        super().__init__(f"no work group {name!r}")


@dataclass(frozen=True, slots=True)
class TaskQueue:
    """Manual tasks as a feature: the catalog's work groups, and the after-change hook the assembly
    gives the store."""

    catalog: Catalog | None

    def after_change(self, tx: Transaction, order: ServiceOrder, plan: Plan | None, ctx: Context) -> None:
        follow_tasks(tx, order, plan, ctx, catalog=self.catalog)


def work_group(tx: Transaction, catalog: Catalog | None, name: str) -> WorkGroup:
    """The group's definition: given through the API, else the catalog's; a group neither knows
    (any more) takes no limits."""
    return known_group(tx, catalog, name) or WorkGroup(name)


def known_group(tx: Transaction, catalog: Catalog | None, name: str) -> WorkGroup | None:
    defined = tx.tasks.work_group(name)
    if defined is not None:
        return defined
    return catalog.work_groups.get(name) if catalog is not None else None


def follow_tasks(
    tx: Transaction, order: ServiceOrder, plan: Plan | None, ctx: Context, *, catalog: Catalog | None = None
) -> None:
    """After every change of an order: its open tasks take its priority, jeopardy level and due
    date; a task whose activity no longer waits for it (skipped, failed, cancelled, the order
    ended) is withdrawn; a task waiting for information the order now has goes on; an escalation
    step's `assign` (earlier in this change, docs/policy.md) assigns the tasks nobody works on yet."""
    if plan is None or not any(a.kind is ActivityKind.MANUAL_TASK for a in plan.activities):
        return
    moved = {c.subject for c in plan.changes if c.attribute == "state"}
    relevant = any(c.subject == "serviceOrder" and c.attribute in _FOLLOWED for c in order.changes) or any(
        a.kind is ActivityKind.MANUAL_TASK and a.subject in moved for a in plan.activities
    )
    supplied = order.state == OrderState.PENDING and any(
        c.subject.startswith("serviceOrderItem[") and c.attribute == "attributes" for c in order.changes
    )
    assignments = [
        (c.subject, c.new)
        for c in order.changes
        if c.subject.startswith("escalation[") and c.attribute == "assignedTo" and isinstance(c.new, dict)
    ]
    if not (relevant or supplied or assignments):
        return
    tasks = [t for t in tx.tasks.of_order(order.id) if t.is_open]
    waited = any(t.state == TaskState.WAITING for t in tasks)
    for task in tasks:
        _follow_one(plan, order, task, ctx)
        if task.state == TaskState.WAITING and supplied and task_work.supplied(order, task):
            task_work.resume(plan, order, task, now=ctx.now, actor=ctx.actor)
        for rule, assignment in assignments if task.is_open else ():
            _assign_by_escalation(tx, plan, task, (rule, assignment), ctx, catalog=catalog)
        if task.changes:
            tx.tasks.save(task)
    if waited and order.state == OrderState.PENDING and not any(t.state == TaskState.WAITING for t in tasks):
        # Nothing waits for the customer any more: the order goes on and catches up with its items.
        order.move_to(OrderState.IN_PROGRESS, now=ctx.now, actor=ctx.actor)
        hand_out(tx, order, plan, planning.advance(plan, order, now=ctx.now, actor=ctx.actor), ctx)


def _follow_one(plan: Plan, order: ServiceOrder, task: ManualTask, ctx: Context) -> None:
    """Withdraw a task its activity (or the order) no longer needs; else take the order's priority,
    jeopardy level and due date."""
    activity = plan.activity(task.activity_id)
    if order.is_terminal or activity.state not in OPEN or activity.attempt != task.attempt:
        why = f"the order is {order.state}" if order.is_terminal else f"its activity is {activity.state}"
        task.act(TaskAction.WITHDRAW, now=ctx.now, actor=ctx.actor)
        task.changes.append(Change(task.subject, "withdrawnBecause", None, why, ctx.now, ctx.actor))
    elif follow_order(task, order):
        queue = {"priority": task.priority, "jeopardyLevel": task.jeopardy, "dueDate": task.due}
        task.changes.append(Change(task.subject, "queue", None, queue, ctx.now, ctx.actor))


def _assign_by_escalation(
    tx: Transaction,
    plan: Plan,
    task: ManualTask,
    step: tuple[str, dict[str, Any]],
    ctx: Context,
    *,
    catalog: Catalog | None,
) -> None:
    """`assign: {person: P}` gives P a task nobody has started (handing it back from its holder);
    `assign: {workGroup: G}` moves a queued task to G's queue. Work in progress is left alone, and
    an assignment the task's group cannot take (P not a member, G not a work group) is ignored."""
    rule, assignment = step
    why = f"assigned by {rule}"
    person, group_name = assignment.get("person"), assignment.get("workGroup")
    if isinstance(person, str) and task.state in (TaskState.QUEUED, TaskState.ASSIGNED):
        if task.assignee == person or not work_group(tx, catalog, task.work_group).admits(person):
            return
        if task.state == TaskState.ASSIGNED:
            _hand_back(plan, task, ctx, why=why)
        task.act(TaskAction.ASSIGN, now=ctx.now, actor=ctx.actor)
        task.set("assignee", person, now=ctx.now, actor=ctx.actor)
    elif isinstance(group_name, str) and task.state == TaskState.QUEUED and task.work_group != group_name:
        group = known_group(tx, catalog, group_name)
        if group is not None:
            task.set("work_group", group_name, now=ctx.now, actor=ctx.actor)
            task.working_hours = None if group.hours.always else group.hours
            task.notes.append({"author": ctx.actor, "date": ctx.now, "text": why, "@type": "Note"})


# --- reads ------------------------------------------------------------------------------------


def get_task(store: Store, task_id: str, *, now: datetime) -> dict[str, Any]:
    with store.transaction(write=False) as tx:
        task = tx.tasks.get(task_id)
    if task is None:
        raise ManualTaskNotFound(task_id)
    return task.to_document(now)


def list_tasks(store: Store, selection: TaskSelection, *, now: datetime) -> tuple[int, list[dict[str, Any]]]:
    """Tasks in queue order: the order's priority, then jeopardy (worst first), then due date."""
    with store.transaction(write=False) as tx:
        total, tasks = tx.tasks.select(selection)
    return total, [t.to_document(now) for t in tasks]


def list_work_groups(store: Store, catalog: Catalog | None) -> list[dict[str, Any]]:
    """The catalog's groups and those defined through the API (which take precedence)."""
    with store.transaction(write=False) as tx:
        defined = {g.name: g for g in tx.tasks.work_groups()}
    listed = {name: (g, "catalog") for name, g in (catalog.work_groups.items() if catalog else ())}
    listed.update({name: (g, "api") for name, g in defined.items()})
    return [{**g.to_document(), "source": source} for g, source in (listed[n] for n in sorted(listed))]


def define_work_group(store: Store, name: str, definition: Any, *, ctx: Context) -> dict[str, Any]:
    """Define a work group, or redefine one of the catalog's: members, capacity, working hours
    (docs/coordination.md). Plans built from now on take its working hours."""
    group = read_work_group(name, definition)
    with store.transaction(write=True) as tx:
        tx.tasks.put_work_group(name, definition, at=ctx.now)
    return {**group.to_document(), "source": "api"}


def work_group_view(store: Store, catalog: Catalog | None, name: str) -> dict[str, Any]:
    """A group's definition and its load: open tasks by state, in progress by member."""
    open_states = frozenset(TaskState) - {TaskState.COMPLETED, TaskState.FAILED, TaskState.WITHDRAWN}
    with store.transaction(write=False) as tx:
        group = known_group(tx, catalog, name)
        if group is None:
            raise UnknownWorkGroup(name)
        total, tasks = tx.tasks.select(TaskSelection(work_group=name, states=open_states, limit=10_000))
    by_state = {s.value: sum(1 for t in tasks if t.state == s) for s in sorted(open_states)}
    working = {
        m: sum(1 for t in tasks if t.assignee == m and t.state == TaskState.IN_PROGRESS)
        for m in group.members
    }
    return {
        **group.to_document(),
        "openTasks": total,
        "tasksByState": by_state,
        "inProgressByMember": working,
    }


# --- actions ----------------------------------------------------------------------------------


def assign_task(
    store: Store,
    task_id: str,
    assignee: str,
    *,
    ctx: Context,
    catalog: Catalog | None,
    reassign: bool = False,
) -> dict[str, Any]:
    """A dispatcher gives the task to a member; `reassign` hands it back from its holder first."""

    def step(tx: Transaction, order: ServiceOrder, plan: Plan, task: ManualTask) -> list[Activity]:
        if reassign and task.state in (TaskState.ASSIGNED, TaskState.IN_PROGRESS):
            task.check(TaskAction.HAND_BACK, actor=ctx.actor)
            check_member(work_group(tx, catalog, task.work_group), assignee)
            _hand_back(plan, task, ctx, why=f"reassigned to {assignee}")
        target = task.check(TaskAction.ASSIGN, actor=ctx.actor)
        check_member(work_group(tx, catalog, task.work_group), assignee)
        task.move(target, now=ctx.now, actor=ctx.actor)
        task.set("assignee", assignee, now=ctx.now, actor=ctx.actor)
        return []

    return _on_task(store, task_id, step, ctx=ctx, catalog=catalog)


def claim_task(store: Store, task_id: str, *, ctx: Context, catalog: Catalog | None) -> dict[str, Any]:
    """A member takes a queued task (the actor is the member)."""

    def step(tx: Transaction, order: ServiceOrder, plan: Plan, task: ManualTask) -> list[Activity]:
        target = task.check(TaskAction.CLAIM, actor=ctx.actor)
        check_member(work_group(tx, catalog, task.work_group), ctx.actor)
        task.move(target, now=ctx.now, actor=ctx.actor)
        task.set("assignee", ctx.actor, now=ctx.now, actor=ctx.actor)
        return []

    return _on_task(store, task_id, step, ctx=ctx, catalog=catalog)


def start_task(store: Store, task_id: str, *, ctx: Context, catalog: Catalog | None) -> dict[str, Any]:
    """The member who holds the task starts it: not before its appointment, within capacity."""

    def step(tx: Transaction, order: ServiceOrder, plan: Plan, task: ManualTask) -> list[Activity]:
        target = task.check(TaskAction.START, actor=ctx.actor)
        check_appointment(task, parse_datetime(ctx.now))
        group = work_group(tx, catalog, task.work_group)
        check_capacity(
            group,
            ctx.actor,
            group_load=tx.tasks.in_progress(group.name),
            member_load=tx.tasks.in_progress(group.name, ctx.actor),
        )
        task.move(target, now=ctx.now, actor=ctx.actor)
        plan.activity(task.activity_id).work_started = ctx.now
        return []

    return _on_task(store, task_id, step, ctx=ctx, catalog=catalog)


def note_task(
    store: Store, task_id: str, text: str, *, ctx: Context, catalog: Catalog | None
) -> dict[str, Any]:
    def step(tx: Transaction, order: ServiceOrder, plan: Plan, task: ManualTask) -> list[Activity]:
        task.notes.append({"author": ctx.actor, "date": ctx.now, "text": text, "@type": "Note"})
        task.changes.append(Change(task.subject, "note", None, text, ctx.now, ctx.actor))
        return []

    return _on_task(store, task_id, step, ctx=ctx, catalog=catalog)


def complete_task(
    store: Store, task_id: str, checklist: Any, *, ctx: Context, catalog: Catalog | None
) -> dict[str, Any]:
    def step(tx: Transaction, order: ServiceOrder, plan: Plan, task: ManualTask) -> list[Activity]:
        return task_work.complete(plan, order, task, checklist, now=ctx.now, actor=ctx.actor)

    return _on_task(store, task_id, step, ctx=ctx, catalog=catalog)


def fail_task(
    store: Store, task_id: str, code: Any, reason: str | None, *, ctx: Context, catalog: Catalog | None
) -> dict[str, Any]:
    def step(tx: Transaction, order: ServiceOrder, plan: Plan, task: ManualTask) -> list[Activity]:
        return task_work.fail(plan, order, task, code, reason, now=ctx.now, actor=ctx.actor)

    return _on_task(store, task_id, step, ctx=ctx, catalog=catalog)


def hand_back_task(
    store: Store, task_id: str, reason: str | None, *, ctx: Context, catalog: Catalog | None
) -> dict[str, Any]:
    def step(tx: Transaction, order: ServiceOrder, plan: Plan, task: ManualTask) -> list[Activity]:
        task.check(TaskAction.HAND_BACK, actor=ctx.actor)
        _hand_back(plan, task, ctx, why=reason)
        return []

    return _on_task(store, task_id, step, ctx=ctx, catalog=catalog)


def request_information(
    store: Store, task_id: str, wanted: Any, *, ctx: Context, catalog: Catalog | None
) -> dict[str, Any]:
    def step(tx: Transaction, order: ServiceOrder, plan: Plan, task: ManualTask) -> list[Activity]:
        task_work.request_information(plan, order, task, wanted, now=ctx.now, actor=ctx.actor)
        return []

    return _on_task(store, task_id, step, ctx=ctx, catalog=catalog)


def _hand_back(plan: Plan, task: ManualTask, ctx: Context, *, why: str | None) -> None:
    task.move(TaskState.QUEUED, now=ctx.now, actor=ctx.actor)
    task.set("assignee", None, now=ctx.now, actor=ctx.actor)
    task.started = None
    plan.activity(task.activity_id).work_started = None
    if why:
        task.notes.append(
            {"author": ctx.actor, "date": ctx.now, "text": f"handed back: {why}", "@type": "Note"}
        )


def _on_task(
    store: Store, task_id: str, step: TaskStep, *, ctx: Context, catalog: Catalog | None
) -> dict[str, Any]:
    with store.transaction(write=False) as read:
        found = read.tasks.get(task_id)
    if found is None:
        raise ManualTaskNotFound(task_id)

    def change(tx: Transaction, order: ServiceOrder, plan: Plan) -> dict[str, Any]:
        task = tx.tasks.get(task_id)
        if task is None:
            raise ManualTaskNotFound(task_id)
        started = step(tx, order, plan, task)
        tx.tasks.save(task)
        hand_out(tx, order, plan, started, ctx)
        return task.to_document(parse_datetime(ctx.now))

    return change_plan(store, found.order_id, change, ctx=ctx, catalog=catalog, optimistic=False)
