"""Manual tasks: work for a person of a work group, in the group's queue (docs/coordination.md).

A manual-task activity that starts opens a task. Its life cycle is one table, `TASK_TRANSITIONS`;
what people (and provtrack) may do to it is a second table, `TASK_ACTIONS`, checked by
`ManualTask.check` before anything changes, so a refused action leaves nothing behind. No action
moves a task into the state it is in: reassigning is a hand-back and an assignment, both recorded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from provtrack.domain.activities import Activity
from provtrack.domain.clock import format_datetime, parse_datetime
from provtrack.domain.model import Change, ServiceOrder
from provtrack.domain.work_groups import TaskTerms, WorkGroup, validate_checklist
from provtrack.domain.working_hours import WorkingHours


class TaskState(StrEnum):
    """States of a manual task."""

    QUEUED = "queued"  # in its group's queue; nobody holds it
    ASSIGNED = "assigned"  # a member holds it (assigned or claimed); not started
    IN_PROGRESS = "inProgress"  # the member works on it
    WAITING = "waitingForInformation"  # the customer was asked for missing information; the order is pending
    COMPLETED = "completed"  # done, checklist filled
    FAILED = "failed"  # could not be done (a reason code); its activity falls out
    WITHDRAWN = "withdrawn"  # no longer needed: its activity was skipped, failed or cancelled


TASK_TRANSITIONS: dict[TaskState, frozenset[TaskState]] = {
    TaskState.QUEUED: frozenset({TaskState.ASSIGNED, TaskState.WITHDRAWN}),
    TaskState.ASSIGNED: frozenset(
        {TaskState.QUEUED, TaskState.IN_PROGRESS, TaskState.FAILED, TaskState.WITHDRAWN}
    ),
    TaskState.IN_PROGRESS: frozenset(
        {TaskState.QUEUED, TaskState.WAITING, TaskState.COMPLETED, TaskState.FAILED, TaskState.WITHDRAWN}
    ),
    TaskState.WAITING: frozenset({TaskState.IN_PROGRESS, TaskState.WITHDRAWN}),
    TaskState.COMPLETED: frozenset(),
    TaskState.FAILED: frozenset(),
    TaskState.WITHDRAWN: frozenset(),
}
TASK_FINAL = frozenset(s for s, nxt in TASK_TRANSITIONS.items() if not nxt)
HELD = frozenset({TaskState.ASSIGNED, TaskState.IN_PROGRESS, TaskState.WAITING})  # a member holds it
JEOPARDY_RANK = {"onTrack": 0, "atRisk": 1, "inJeopardy": 2, "late": 3}


class TaskAction(StrEnum):
    """What may be done to a task (`POST /provtrack/v1/task/{id}/<action>`, and provtrack's own)."""

    ASSIGN = "assign"  # a dispatcher gives a queued task to a member
    CLAIM = "claim"  # a member takes a queued task
    START = "start"  # the member who holds it starts it
    COMPLETE = "complete"  # the member finishes it, with the checklist
    FAIL = "fail"  # the member gives it up, with a reason code
    HAND_BACK = "handBack"  # back to the queue (the member cannot do it, or it is to be reassigned)
    REQUEST_INFORMATION = "requestInformation"  # the customer must supply something first
    RESUME = "resume"  # provtrack: the information came (a PATCH of the order)
    WITHDRAW = "withdraw"  # provtrack: the activity no longer needs it


@dataclass(frozen=True, slots=True)
class TaskRule:
    target: TaskState
    allowed_from: frozenset[TaskState]
    by_holder: bool = False  # only the member who holds the task may do it


TASK_ACTIONS: dict[TaskAction, TaskRule] = {
    TaskAction.ASSIGN: TaskRule(TaskState.ASSIGNED, frozenset({TaskState.QUEUED})),
    TaskAction.CLAIM: TaskRule(TaskState.ASSIGNED, frozenset({TaskState.QUEUED})),
    TaskAction.START: TaskRule(TaskState.IN_PROGRESS, frozenset({TaskState.ASSIGNED}), by_holder=True),
    TaskAction.COMPLETE: TaskRule(TaskState.COMPLETED, frozenset({TaskState.IN_PROGRESS}), by_holder=True),
    TaskAction.FAIL: TaskRule(
        TaskState.FAILED, frozenset({TaskState.ASSIGNED, TaskState.IN_PROGRESS}), by_holder=True
    ),
    TaskAction.HAND_BACK: TaskRule(TaskState.QUEUED, frozenset({TaskState.ASSIGNED, TaskState.IN_PROGRESS})),
    TaskAction.REQUEST_INFORMATION: TaskRule(
        TaskState.WAITING, frozenset({TaskState.IN_PROGRESS}), by_holder=True
    ),
    TaskAction.RESUME: TaskRule(TaskState.IN_PROGRESS, frozenset({TaskState.WAITING})),
    TaskAction.WITHDRAW: TaskRule(TaskState.WITHDRAWN, frozenset(TASK_TRANSITIONS) - TASK_FINAL),
}


class TaskRefused(Exception):
    """What was asked of the task cannot be done now (the API answers 409 with this reason)."""


class IllegalTaskMove(TaskRefused):
    """The task's state does not allow the action (TASK_ACTIONS)."""


class CapacityReached(TaskRefused):
    """Starting the task would put more tasks in progress than the group (or the member) takes."""


class InvalidTaskInput(ValueError):
    """The request names something the task does not know (a failure code, a field): HTTP 400."""


def priority_rank(priority: Any) -> int:
    """TMF641 priority as a number, lower first (a priority that is not a number comes last)."""
    text = str(priority) if priority is not None else ""
    return int(text) if text.isdigit() else 99


@dataclass(eq=False, slots=True)
class ManualTask:
    id: str
    order_id: str
    item_id: str
    activity_id: str
    attempt: int
    name: str  # the catalog activity, e.g. install-ont
    work_group: str
    expected_seconds: float
    created: str
    terms: TaskTerms = field(default_factory=TaskTerms)
    description: str = ""
    working_hours: WorkingHours | None = None
    appointment: dict[str, Any] | None = None
    earliest_start: str | None = None
    state: TaskState = TaskState.QUEUED
    assignee: str | None = None
    priority: str | None = None
    jeopardy: str = "onTrack"
    due: str | None = None
    started: str | None = None
    ended: str | None = None
    notes: list[dict[str, Any]] = field(default_factory=list)
    failure: dict[str, Any] | None = None
    information_required: list[dict[str, Any]] = field(default_factory=list)
    checklist_values: dict[str, Any] = field(default_factory=dict)
    version: int = 0
    changes: list[Change] = field(default_factory=list)

    @property
    def subject(self) -> str:
        return f"task[{self.id}]"

    @property
    def is_open(self) -> bool:
        return self.state not in TASK_FINAL

    def queue_key(self) -> tuple[int, int, str, str]:
        """The queue's order: the order's priority, then jeopardy (worst first), then due date."""
        return (
            priority_rank(self.priority),
            -JEOPARDY_RANK.get(self.jeopardy, 0),
            self.due or "~",
            self.created,
        )

    # --- the tables ------------------------------------------------------------------------------

    def check(self, action: TaskAction, *, actor: str) -> TaskState:
        """The state `action` moves the task to; IllegalTaskMove, saying why, when it may not."""
        rule = TASK_ACTIONS[action]
        if self.state not in rule.allowed_from:
            held = f" (held by {self.assignee})" if self.state in HELD and self.assignee else ""
            allowed = ", ".join(sorted(rule.allowed_from))
            raise IllegalTaskMove(
                f"cannot {action} task {self.id}: it is {self.state}{held}; {action} is allowed from {allowed}"
            )
        if rule.by_holder and actor != self.assignee:
            raise IllegalTaskMove(
                f"cannot {action} task {self.id}: it is held by {self.assignee}, not {actor}; "
                "they may hand it back first"
            )
        return rule.target

    def move(self, target: TaskState, *, now: str, actor: str) -> None:
        current = self.state
        if target not in TASK_TRANSITIONS[current]:
            allowed = ", ".join(sorted(TASK_TRANSITIONS[current])) or f"none ({current} is final)"
            raise IllegalTaskMove(
                f"task {self.id} cannot move from {current} to {target}; allowed: {allowed}"
            )
        self.state = target
        self.changes.append(Change(self.subject, "state", current.value, target.value, now, actor))
        if target == TaskState.IN_PROGRESS and self.started is None:
            self.started = now
        if target in TASK_FINAL:
            self.ended = now

    def act(self, action: TaskAction, *, now: str, actor: str) -> None:
        self.move(self.check(action, actor=actor), now=now, actor=actor)

    def set(self, attribute: str, value: Any, *, now: str, actor: str) -> None:
        """Change a recorded attribute (assignee, failure, ...) with its audit entry."""
        old = getattr(self, attribute)
        if old != value:
            setattr(self, attribute, value)
            self.changes.append(Change(self.subject, attribute, old, value, now, actor))

    # --- times -----------------------------------------------------------------------------------

    def expected_start(self, now: datetime) -> datetime:
        if self.started is not None:
            return parse_datetime(self.started)
        begin = now if self.earliest_start is None else max(now, parse_datetime(self.earliest_start))
        return self.working_hours.next_working_instant(begin) if self.working_hours else begin

    def expected_finish(self, now: datetime) -> datetime:
        begin = self.expected_start(now)
        work = timedelta(seconds=self.expected_seconds)
        return self.working_hours.finish(begin, work) if self.working_hours else begin + work

    # --- documents -------------------------------------------------------------------------------

    def to_document(self, now: datetime | None = None) -> dict[str, Any]:
        """The task as stored; with `now`, as the API shows it: its expected start and finish."""
        doc: dict[str, Any] = {
            "id": self.id,
            "state": self.state.value,
            "name": self.name,
            "workGroup": self.work_group,
            "serviceOrder": {"id": self.order_id, "serviceOrderItemId": self.item_id},
            "activity": {"id": self.activity_id, "attempt": self.attempt},
            "expectedDurationSeconds": self.expected_seconds,
            "jeopardyLevel": self.jeopardy,
            "createdDate": self.created,
            "instructions": self.terms.instructions,
            "checklist": [f.to_document() for f in self.terms.checklist],
            "failureCodes": list(self.terms.failure_codes),
            "note": self.notes,
        }
        optional = {
            "description": self.description or None,
            "assignee": self.assignee,
            "priority": self.priority,
            "dueDate": self.due,
            "appointment": self.appointment,
            "earliestStartDate": self.earliest_start,
            "workingHours": self.working_hours.to_document() if self.working_hours else None,
            "startDate": self.started,
            "endDate": self.ended,
            "failure": self.failure,
            "informationRequired": self.information_required or None,
            "checklistValues": self.checklist_values or None,
        }
        doc.update({k: v for k, v in optional.items() if v is not None})
        if now is not None and self.is_open:
            doc["expectedStartDate"] = format_datetime(self.expected_start(now))
            doc["expectedCompletionDate"] = format_datetime(self.expected_finish(now))
        return doc

    @classmethod
    def from_document(cls, doc: dict[str, Any], *, version: int = 0) -> ManualTask:
        return cls(
            id=doc["id"],
            order_id=doc["serviceOrder"]["id"],
            item_id=doc["serviceOrder"]["serviceOrderItemId"],
            activity_id=doc["activity"]["id"],
            attempt=int(doc["activity"]["attempt"]),
            name=doc["name"],
            work_group=doc["workGroup"],
            expected_seconds=float(doc["expectedDurationSeconds"]),
            created=doc["createdDate"],
            terms=TaskTerms.from_document(doc),
            description=doc.get("description", ""),
            working_hours=WorkingHours.from_document(doc["workingHours"])
            if doc.get("workingHours")
            else None,
            appointment=doc.get("appointment"),
            earliest_start=doc.get("earliestStartDate"),
            state=TaskState(doc["state"]),
            assignee=doc.get("assignee"),
            priority=doc.get("priority"),
            jeopardy=doc.get("jeopardyLevel", "onTrack"),
            due=doc.get("dueDate"),
            started=doc.get("startDate"),
            ended=doc.get("endDate"),
            notes=list(doc.get("note") or []),
            failure=doc.get("failure"),
            information_required=list(doc.get("informationRequired") or []),
            checklist_values=dict(doc.get("checklistValues") or {}),
            version=version,
        )


def open_task(activity: Activity, order: ServiceOrder, *, task_id: str, now: str, actor: str) -> ManualTask:
    """The task a manual-task activity opens when it starts, queued in its group."""
    task = ManualTask(
        id=task_id,
        order_id=order.id,
        item_id=activity.item_id,
        activity_id=activity.id,
        attempt=activity.attempt,
        name=activity.name,
        work_group=activity.owner,
        expected_seconds=activity.expected_seconds,
        created=now,
        terms=activity.task or TaskTerms(),
        description=activity.description,
        working_hours=activity.working_hours,
        appointment=activity.appointment,
        earliest_start=activity.earliest_start,
    )
    follow_order(task, order)
    task.changes.append(Change(task.subject, "state", None, TaskState.QUEUED.value, now, actor))
    return task


def follow_order(task: ManualTask, order: ServiceOrder) -> bool:
    """Take the order's priority, jeopardy level and due date (the queue's order); True if changed."""
    due = order.attributes.get("requestedCompletionDate")
    current = (order.attributes.get("priority"), order.jeopardy_level, str(due) if due else None)
    if current == (task.priority, task.jeopardy, task.due):
        return False
    task.priority, task.jeopardy, task.due = current
    return True


def ordered_queue(tasks: list[ManualTask]) -> list[ManualTask]:
    return sorted(tasks, key=ManualTask.queue_key)


def check_checklist(task: ManualTask, values: Any) -> dict[str, Any]:
    return validate_checklist(task.terms.checklist, values)


def check_failure_code(task: ManualTask, code: Any) -> str:
    if not isinstance(code, str) or code not in task.terms.failure_codes:
        raise InvalidTaskInput(f"reasonCode: must be one of {', '.join(task.terms.failure_codes)}")
    return code


def check_member(group: WorkGroup, person: str) -> None:
    if not group.admits(person):
        raise TaskRefused(f"{person} is not a member of {group.name} ({', '.join(group.members)})")


def check_capacity(group: WorkGroup, person: str, *, group_load: int, member_load: int) -> None:
    """Before a start: the group's and the member's tasks in progress must leave room for one more."""
    if group.capacity is not None and group_load >= group.capacity:
        raise CapacityReached(
            f"{group.name} has {group_load} tasks in progress, its capacity; finish or hand one back first"
        )
    if group.member_capacity is not None and member_load >= group.member_capacity:
        raise CapacityReached(
            f"{person} has {member_load} tasks in progress, as many as a member of {group.name} takes"
        )


def check_appointment(task: ManualTask, now: datetime) -> None:
    if task.earliest_start is not None and now < parse_datetime(task.earliest_start):
        raise TaskRefused(f"cannot start task {task.id} before its appointment at {task.earliest_start}")
