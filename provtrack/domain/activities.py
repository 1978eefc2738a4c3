"""Provisioning activities: their life cycle (one table) and what the plan knows about each.

An activity is one unit of provisioning work for one order item: a resource order to a downstream
system, a manual task for a work group or a partner order. Its state changes only through
`Activity.move`, which checks `ACTIVITY_TRANSITIONS` and records an audit `Change`. What an operator
may do to it is a second table, `OPERATOR_ACTIONS`, checked by `Activity.check_action` before the
action changes anything.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from provtrack.domain.catalog import ActivityKind
from provtrack.domain.clock import parse_datetime
from provtrack.domain.model import Change
from provtrack.domain.work_groups import TaskTerms
from provtrack.domain.working_hours import WorkingHours


class ActivityState(StrEnum):
    """States of a provisioning activity."""

    PLANNED = "planned"  # waiting for its predecessors or for the order's start
    IN_PROGRESS = "inProgress"  # handed (or being handed) to its owner
    BLOCKED = "blocked"  # the owner reports it held or pending; `reason` says why
    FALLOUT = "fallout"  # failed; the order is held until an operator retries, skips or fails it
    DONE = "done"  # delivered
    SKIPPED = "skipped"  # an operator decided it is not needed (`skip_reason`)
    FAILED = "failed"  # given up for good: the item fails
    CANCELLED = "cancelled"  # will never run: a predecessor failed for good, or the order was cancelled


ACTIVITY_TRANSITIONS: dict[ActivityState, frozenset[ActivityState]] = {
    ActivityState.PLANNED: frozenset(
        {ActivityState.IN_PROGRESS, ActivityState.SKIPPED, ActivityState.CANCELLED}
    ),
    # An operator may skip or fail work that never answers; retry is only for fallout.
    ActivityState.IN_PROGRESS: frozenset(
        {
            ActivityState.BLOCKED,
            ActivityState.FALLOUT,
            ActivityState.DONE,
            ActivityState.SKIPPED,
            ActivityState.FAILED,
            ActivityState.CANCELLED,
        }
    ),
    ActivityState.BLOCKED: frozenset(
        {
            ActivityState.IN_PROGRESS,
            ActivityState.FALLOUT,
            ActivityState.DONE,
            ActivityState.SKIPPED,
            ActivityState.FAILED,
            ActivityState.CANCELLED,
        }
    ),
    ActivityState.FALLOUT: frozenset(
        {ActivityState.IN_PROGRESS, ActivityState.SKIPPED, ActivityState.FAILED, ActivityState.CANCELLED}
    ),
    ActivityState.DONE: frozenset(),
    ActivityState.SKIPPED: frozenset(),
    ActivityState.FAILED: frozenset(),
    ActivityState.CANCELLED: frozenset(),
}

FINISHED = frozenset({ActivityState.DONE, ActivityState.SKIPPED})  # successors may start
ACTIVITY_TERMINAL = frozenset(s for s, nxt in ACTIVITY_TRANSITIONS.items() if not nxt)
OPEN = frozenset({ActivityState.IN_PROGRESS, ActivityState.BLOCKED})  # waiting on the owner


def waiting_of(documents: Iterable[dict[str, Any]], kind: ActivityKind) -> list[tuple[str, bool]]:
    """Of open activities' documents, the `kind` ones whose order the owner has taken (it has an id
    there): (activity id, whether it is a withdrawal step, whose order there is a cancel task)."""
    return [
        (str(d["id"]), d.get("withdraws") is not None)
        for d in documents
        if d["kind"] == kind.value and d.get("externalId")
    ]


class OperatorAction(StrEnum):
    """What an operator may do to an activity (`POST /provtrack/v1/activity/{id}/<action>`)."""

    RETRY = "retry"  # send a fallen-out activity again, as a new attempt (a new downstream order)
    SKIP = "skip"  # not needed (done by hand, or elsewhere): its successors go ahead
    FAIL = "fail"  # give it up for good: its item fails and what depends on it never runs


@dataclass(frozen=True, slots=True)
class ActionRule:
    target: ActivityState  # where the action moves the activity
    allowed_from: frozenset[ActivityState]


# Each action is a move of ACTIVITY_TRANSITIONS from the states listed, none of them its target: an
# action repeated on an activity already there is refused, not done twice (tests/unit/test_operator_actions.py).
OPERATOR_ACTIONS: dict[OperatorAction, ActionRule] = {
    # Only for fallout: work still in flight has a downstream order open, a retry would send another.
    OperatorAction.RETRY: ActionRule(ActivityState.IN_PROGRESS, frozenset({ActivityState.FALLOUT})),
    # Ahead of its turn, or work that never answers.
    OperatorAction.SKIP: ActionRule(
        ActivityState.SKIPPED,
        frozenset(
            {ActivityState.PLANNED, ActivityState.IN_PROGRESS, ActivityState.BLOCKED, ActivityState.FALLOUT}
        ),
    ),
    OperatorAction.FAIL: ActionRule(
        ActivityState.FAILED,
        frozenset({ActivityState.IN_PROGRESS, ActivityState.BLOCKED, ActivityState.FALLOUT}),
    ),
}


class IllegalActivityTransition(Exception):
    """The activity's state does not allow what was asked (the API answers 409); `current` is that state."""

    def __init__(self, message: str, current: ActivityState) -> None:
        super().__init__(message)
        self.current = current


class ActionRefused(IllegalActivityTransition):
    """An operator action the activity's state does not allow; refused before anything changed."""

    def __init__(self, activity_id: str, current: ActivityState, action: OperatorAction) -> None:
        allowed = ", ".join(sorted(OPERATOR_ACTIONS[action].allowed_from))
        super().__init__(
            f"cannot {action} activity {activity_id}: it is {current}; {action} is allowed from {allowed}",
            current,
        )
        self.action = action


@dataclass(eq=False, slots=True)
class Activity:
    id: str
    order_id: str
    item_id: str
    name: str  # the catalog activity id, e.g. reserve-port
    kind: ActivityKind
    owner: str  # target system, work group or partner
    predecessors: list[str]
    expected_seconds: float
    state: ActivityState = ActivityState.PLANNED
    description: str = ""
    point_of_no_return: bool = False
    undo: str | None = None
    resource_specification: str | None = None
    resource_action: str = "add"
    characteristics: dict[str, Any] = field(default_factory=dict)
    planned_start: str | None = None
    planned_end: str | None = None
    actual_start: str | None = None
    actual_end: str | None = None
    attempt: int = 0  # dispatches so far; each attempt is a distinct downstream order
    external_id: str | None = None  # the downstream resource order id of this attempt
    external_state: str | None = None
    reason: str | None = None  # why it is blocked or failed, as the owner said it
    error: dict[str, Any] | None = None  # the downstream answer kept for a refused request
    skip_reason: str | None = None
    # Coordination (docs/coordination.md): what a manual task asks, when its group works, the
    # appointment that bounds its start; a partner order's specification and the partner's own date.
    task: TaskTerms | None = None
    working_hours: WorkingHours | None = None
    appointment: dict[str, Any] | None = None
    earliest_start: str | None = None
    work_started: str | None = None  # when the person started the task (after the hand-out)
    service_specification: str | None = None  # at the partner
    owner_expected_end: str | None = None  # the partner's expectedCompletionDate
    # Characteristics taken from an earlier task's checklist, filled when this activity starts.
    deferred_characteristics: dict[str, Any] = field(default_factory=dict)

    def finish_after(self, begin: datetime, seconds: float | None = None) -> datetime:
        """When this activity, begun (or waiting to begin) at `begin`, is expected to end: the owner's
        own date when it gave one, else `seconds` (the expected duration) of its group's working
        time, not before its appointment."""
        if self.owner_expected_end is not None:
            return parse_datetime(self.owner_expected_end)
        if self.earliest_start is not None:
            begin = max(begin, parse_datetime(self.earliest_start))
        work = timedelta(seconds=self.expected_seconds if seconds is None else seconds)
        if self.working_hours is None:
            return begin + work
        return self.working_hours.finish(begin, work)

    # Cancellation steps (docs/cancellation.md): the activity whose downstream order this one cancels
    # (TMF652 cancelResourceOrder), or the done activity this one undoes (its catalog `undo`).
    withdraws: str | None = None
    undoes: str | None = None
    fallouts: int = 0  # how often it fell out, retries included: the fallout rate counts it

    @property
    def subject(self) -> str:
        return f"activity[{self.id}]"

    @property
    def request_id(self) -> str:
        """The externalId of this attempt's resource order: a retried POST carries the same one."""
        return f"{self.id}.{self.attempt}"

    def move(self, target: ActivityState, *, now: str, actor: str, changes: list[Change]) -> None:
        """Move along ACTIVITY_TRANSITIONS and record it. A move into the state the activity is in is
        not a move: the table lists no state after itself, so it is refused like any other."""
        current = self.state
        if target not in ACTIVITY_TRANSITIONS[current]:
            allowed = ", ".join(sorted(ACTIVITY_TRANSITIONS[current])) or f"none ({current} is final)"
            raise IllegalActivityTransition(
                f"activity {self.id} cannot move from {current} to {target}; allowed next states: {allowed}",
                current,
            )
        self.state = target
        changes.append(Change(self.subject, "state", current.value, target.value, now, actor))
        if target == ActivityState.IN_PROGRESS and current in (ActivityState.PLANNED, ActivityState.FALLOUT):
            self.actual_start = now
            self.actual_end = None
        if target in ACTIVITY_TERMINAL:
            self.actual_end = now
        if target == ActivityState.FALLOUT:
            self.fallouts += 1

    def check_action(self, action: OperatorAction) -> ActivityState:
        """The state `action` moves this activity to; ActionRefused when its state does not allow it.
        Called before the action changes anything, so a refused action leaves nothing behind."""
        rule = OPERATOR_ACTIONS[action]
        if self.state not in rule.allowed_from:
            raise ActionRefused(self.id, self.state, action)
        return rule.target

    def begin_new_attempt(self) -> None:
        """Forget the previous attempt's downstream order: the next dispatch sends a new one."""
        self.attempt += 1
        self.external_id = None
        self.external_state = None
        self.reason = None
        self.error = None

    def to_document(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "id": self.id,
            "serviceOrderId": self.order_id,
            "serviceOrderItemId": self.item_id,
            "name": self.name,
            "kind": self.kind.value,
            "owner": self.owner,
            "state": self.state.value,
            "predecessors": self.predecessors,
            "expectedDurationSeconds": self.expected_seconds,
            "pointOfNoReturn": self.point_of_no_return,
            "attempt": self.attempt,
        }
        optional = {
            "description": self.description or None,
            "undo": self.undo,
            "resourceSpecification": self.resource_specification,
            "resourceAction": self.resource_action if self.resource_specification else None,
            "characteristics": self.characteristics or None,
            "plannedStartDate": self.planned_start,
            "plannedEndDate": self.planned_end,
            "actualStartDate": self.actual_start,
            "actualEndDate": self.actual_end,
            "externalId": self.external_id,
            "externalState": self.external_state,
            "reason": self.reason,
            "error": self.error,
            "skipReason": self.skip_reason,
            "task": self.task.to_document() if self.task else None,
            "workingHours": self.working_hours.to_document() if self.working_hours else None,
            "appointment": self.appointment,
            "earliestStartDate": self.earliest_start,
            "workStartDate": self.work_started,
            "serviceSpecification": self.service_specification,
            "ownerExpectedEndDate": self.owner_expected_end,
            "deferredCharacteristics": self.deferred_characteristics or None,
            "withdraws": self.withdraws,
            "undoes": self.undoes,
            "fallouts": self.fallouts or None,
        }
        doc.update({k: v for k, v in optional.items() if v is not None})
        return doc

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> Activity:
        return cls(
            id=doc["id"],
            order_id=doc["serviceOrderId"],
            item_id=doc["serviceOrderItemId"],
            name=doc["name"],
            kind=ActivityKind(doc["kind"]),
            owner=doc["owner"],
            predecessors=list(doc["predecessors"]),
            expected_seconds=float(doc["expectedDurationSeconds"]),
            state=ActivityState(doc["state"]),
            description=doc.get("description", ""),
            point_of_no_return=bool(doc.get("pointOfNoReturn", False)),
            undo=doc.get("undo"),
            resource_specification=doc.get("resourceSpecification"),
            resource_action=doc.get("resourceAction", "add"),
            characteristics=dict(doc.get("characteristics") or {}),
            planned_start=doc.get("plannedStartDate"),
            planned_end=doc.get("plannedEndDate"),
            actual_start=doc.get("actualStartDate"),
            actual_end=doc.get("actualEndDate"),
            attempt=int(doc.get("attempt", 0)),
            external_id=doc.get("externalId"),
            external_state=doc.get("externalState"),
            reason=doc.get("reason"),
            error=doc.get("error"),
            skip_reason=doc.get("skipReason"),
            task=TaskTerms.from_document(doc["task"]) if doc.get("task") else None,
            working_hours=WorkingHours.from_document(doc["workingHours"])
            if doc.get("workingHours")
            else None,
            appointment=doc.get("appointment"),
            earliest_start=doc.get("earliestStartDate"),
            work_started=doc.get("workStartDate"),
            service_specification=doc.get("serviceSpecification"),
            owner_expected_end=doc.get("ownerExpectedEndDate"),
            deferred_characteristics=dict(doc.get("deferredCharacteristics") or {}),
            withdraws=doc.get("withdraws"),
            undoes=doc.get("undoes"),
            fallouts=int(doc.get("fallouts", 0)),
        )


def resource_order_request(activity: Activity, order_attributes: dict[str, Any]) -> dict[str, Any]:
    """The TMF652 v4 ResourceOrder_Create body for this attempt of a resource-order activity."""
    characteristics = [{"name": k, "value": v} for k, v in activity.characteristics.items()]
    resource: dict[str, Any] = {
        "@type": "LogicalResource",
        "resourceSpecification": {
            "id": activity.resource_specification,
            "name": activity.resource_specification,
        },
    }
    if characteristics:
        resource["resourceCharacteristic"] = characteristics
    body: dict[str, Any] = {
        "@type": "ResourceOrder",
        "externalId": activity.request_id,
        "externalReference": [
            {"externalReferenceType": "provtrackActivity", "name": activity.id},
            {"externalReferenceType": "provtrackServiceOrder", "name": activity.order_id},
        ],
        "description": f"{activity.name} for service order {activity.order_id} item {activity.item_id}",
        "orderType": activity.name,
        "orderItem": [
            {
                "id": "1",
                "action": activity.resource_action,
                "quantity": 1,
                "resource": resource,
                "resourceSpecification": {"id": activity.resource_specification},
            }
        ],
    }
    priority = order_attributes.get("priority")
    if isinstance(priority, str) and priority.isdigit():
        body["priority"] = int(priority)  # TMF652 types priority as an integer, TMF641 as a string
    if order_attributes.get("category"):
        body["category"] = order_attributes["category"]
    return body


def activity_of_request(external_id: str | None, references: list[Any] | None) -> tuple[str, int] | None:
    """(activity id, attempt) a resource order was created for, from its externalId or references."""
    if external_id and "." in external_id:
        activity_id, _, attempt = external_id.rpartition(".")
        if attempt.isdigit():
            return activity_id, int(attempt)
    for ref in references or []:
        if isinstance(ref, dict) and ref.get("externalReferenceType") == "provtrackActivity":
            return str(ref.get("name")), 0  # attempt unknown
    return None
