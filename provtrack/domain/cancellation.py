"""CancelServiceOrder: the task that asks for an order to be cancelled, its life cycle and its request.

The task is `acknowledged` when it is recorded, `inProgress` while the cancellation is assessed and
carried out, and ends `done` (the order is cancelled) or `terminatedWithError` (it could not be). What
a cancellation does to the order is provtrack.domain.cancellation_impact (the assessment) and
provtrack.domain.cancellation_steps (carrying it out).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from provtrack.domain.model import Change, EventType, OrderEvent
from provtrack.domain.states import TASK_TRANSITIONS, TaskState
from provtrack.domain.validation import InvalidOrder, ServerOwnedField, normalise_dates

SERVER_OWNED_TASK_FIELDS = frozenset(
    {"id", "href", "state", "effectiveCancellationDate", "completionMessage", "errorMessage"}
)


class TaskError(Exception):
    """A task move outside its life cycle."""


@dataclass(eq=False, slots=True)
class CancelServiceOrder:
    id: str
    state: TaskState
    service_order_id: str
    attributes: dict[str, Any]  # cancellationReason, requestedCancellationDate, serviceOrder, @type
    effective_cancellation_date: str | None = None
    completion_message: str | None = None
    error_message: dict[str, Any] | None = None
    changes: list[Change] = field(default_factory=list)
    events: list[OrderEvent] = field(default_factory=list)

    @classmethod
    def accept(cls, body: dict[str, Any], *, task_id: str, now: str, actor: str) -> CancelServiceOrder:
        body = copy.deepcopy(body)
        body.setdefault("@type", "CancelServiceOrder")
        task = cls(
            id=task_id,
            state=TaskState.ACKNOWLEDGED,
            service_order_id=str(body["serviceOrder"]["id"]),
            attributes=body,
        )
        task.changes.append(Change("cancelServiceOrder", "state", None, task.state.value, now, actor))
        task.events.append(OrderEvent(EventType.CANCEL_CREATE, now))
        return task

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> CancelServiceOrder:
        reserved = {"id", "href", "state", "effectiveCancellationDate", "completionMessage", "errorMessage"}
        return cls(
            id=doc["id"],
            state=TaskState(doc["state"]),
            service_order_id=doc["serviceOrder"]["id"],
            attributes={k: v for k, v in doc.items() if k not in reserved},
            effective_cancellation_date=doc.get("effectiveCancellationDate"),
            completion_message=doc.get("completionMessage"),
            error_message=doc.get("errorMessage"),
        )

    def to_document(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"id": self.id}
        doc.update(self.attributes)
        doc["state"] = self.state.value
        if self.effective_cancellation_date:
            doc["effectiveCancellationDate"] = self.effective_cancellation_date
        if self.completion_message:
            doc["completionMessage"] = self.completion_message
        if self.error_message:
            doc["errorMessage"] = self.error_message
        return doc

    @property
    def reason(self) -> str | None:
        value = self.attributes.get("cancellationReason")
        return str(value) if value else None

    @property
    def requested_date(self) -> str | None:
        value = self.attributes.get("requestedCancellationDate")
        return str(value) if value else None

    @property
    def is_open(self) -> bool:
        return bool(TASK_TRANSITIONS[self.state])

    def finish(self, target: TaskState, *, now: str, actor: str) -> None:
        """Move the task along TASK_TRANSITIONS (inProgress, done, terminatedWithError), announced."""
        if target not in TASK_TRANSITIONS[self.state]:
            raise TaskError(f"cancelServiceOrder {self.id} cannot move from {self.state} to {target}")
        self.changes.append(Change("cancelServiceOrder", "state", self.state.value, target.value, now, actor))
        self.state = target
        self.events.append(OrderEvent(EventType.CANCEL_STATE_CHANGE, now))

    def refuse(self, code: str, message: str, *, now: str, actor: str) -> None:
        """The order could not be cancelled: terminatedWithError, saying why."""
        self.error_message = _error(code, "cancellation refused", message)
        self.finish(TaskState.TERMINATED_WITH_ERROR, now=now, actor=actor)

    def complete(self, message: str, *, now: str, actor: str) -> None:
        """The order is cancelled: done, with the effective date."""
        self.effective_cancellation_date = now
        self.completion_message = message
        self.error_message = None
        self.finish(TaskState.DONE, now=now, actor=actor)

    def require_information(self, code: str, message: str, *, now: str, actor: str) -> None:
        """The cancellation waits on a decision (a step fell out): the requester is told, with why."""
        self.error_message = _error(code, "cancellation held", message)
        self.changes.append(
            Change("cancelServiceOrder", "errorMessage", None, self.error_message, now, actor)
        )
        self.events.append(OrderEvent(EventType.CANCEL_INFORMATION_REQUIRED, now))

    def resume(self, *, now: str, actor: str) -> None:
        """The decision was taken: the cancellation goes on."""
        if self.error_message is not None:
            self.changes.append(
                Change("cancelServiceOrder", "errorMessage", self.error_message, None, now, actor)
            )
            self.error_message = None


def _error(code: str, reason: str, message: str) -> dict[str, Any]:
    return {"code": code, "reason": reason, "message": message, "@type": "ErrorMessage"}


def validate_cancel_request(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise InvalidOrder("cancelServiceOrder", "the body must be a JSON object")
    for name in body:
        if name in SERVER_OWNED_TASK_FIELDS:
            raise ServerOwnedField(name, "is set by the server and must not be sent")
    ref = body.get("serviceOrder")
    if ref is None:
        raise InvalidOrder("serviceOrder", "is required")
    if not isinstance(ref, dict) or not ref.get("id"):
        raise InvalidOrder("serviceOrder.id", "is required: it names the order to cancel")
    checked: dict[str, Any] = dict(body)
    normalise_dates(checked, ("requestedCancellationDate",), prefix="")
    return checked
