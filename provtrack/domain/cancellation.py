"""CancelServiceOrder: the task that asks for an order to be cancelled, and what it does today.

An order that has not started (`acknowledged`) is cancelled at once. Cancelling an order in flight
(assessment against the point of no return, undo of done activities) comes with the cancellation
work; until then the task ends `terminatedWithError` and its message says so.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from provtrack.domain.model import Change, EventType, OrderEvent, ServiceOrder
from provtrack.domain.states import TASK_TRANSITIONS, TERMINAL_STATES, OrderState, TaskState
from provtrack.domain.validation import InvalidOrder, ServerOwnedField, normalise_dates

SERVER_OWNED_TASK_FIELDS = frozenset(
    {"id", "href", "state", "effectiveCancellationDate", "completionMessage", "errorMessage"}
)
IN_FLIGHT_NOT_YET_SUPPORTED = (
    "cancellation of an order that has started is not available in this release: provtrack "
    "cancels orders in state acknowledged only; the order was left unchanged in state {state}"
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

    def finish(self, target: TaskState, *, now: str, actor: str) -> None:
        if target not in TASK_TRANSITIONS[self.state]:
            raise TaskError(f"cancelServiceOrder {self.id} cannot move from {self.state} to {target}")
        self.changes.append(Change("cancelServiceOrder", "state", self.state.value, target.value, now, actor))
        self.state = target
        self.events.append(OrderEvent(EventType.CANCEL_STATE_CHANGE, now))


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


def request_cancellation(order: ServiceOrder, task: CancelServiceOrder, *, now: str, actor: str) -> None:
    """Carry out what the cancellation can do now, and say in the task what happened."""
    if order.state == OrderState.ACKNOWLEDGED:
        reason = task.attributes.get("cancellationReason")
        if reason:
            order.set_attribute("cancellationReason", reason, now=now, actor=actor)
        order.move_to(OrderState.CANCELLED, now=now, actor=actor)
        task.effective_cancellation_date = now
        task.completion_message = f"service order {order.id} cancelled before it started"
        task.finish(TaskState.DONE, now=now, actor=actor)
        return
    if order.state in TERMINAL_STATES:
        message = f"service order {order.id} is {order.state}: there is nothing left to cancel"
        code = "ORDER_FINISHED"
    elif order.state in (OrderState.ASSESSING_CANCELLATION, OrderState.PENDING_CANCELLATION):
        message = f"service order {order.id} is already being cancelled ({order.state})"
        code = "CANCELLATION_UNDER_WAY"
    else:
        message = IN_FLIGHT_NOT_YET_SUPPORTED.format(state=order.state)
        code = "IN_FLIGHT_CANCELLATION_UNAVAILABLE"
    task.error_message = {
        "code": code,
        "reason": "cancellation refused",
        "message": message,
        "@type": "ErrorMessage",
    }
    task.finish(TaskState.TERMINATED_WITH_ERROR, now=now, actor=actor)
