"""CancelServiceOrder: what a cancellation request does to the order today, and what it says."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from provtrack.domain.cancellation import (
    SERVER_OWNED_TASK_FIELDS,
    CancelServiceOrder,
    TaskError,
    request_cancellation,
    validate_cancel_request,
)
from provtrack.domain.model import EventType
from provtrack.domain.states import TERMINAL_STATES, OrderState, TaskState
from provtrack.domain.validation import InvalidOrder, ServerOwnedField
from tests.factories import item
from tests.unit.builders import ACTOR, accepted_order, at, order_in

S = OrderState
IN_FLIGHT = [S.IN_PROGRESS, S.PENDING, S.HELD]
BEING_CANCELLED = [S.ASSESSING_CANCELLATION, S.PENDING_CANCELLATION]


def cancel_body(order_id: str = "so-1", **fields: Any) -> dict[str, Any]:
    return {"serviceOrder": {"id": order_id}, "cancellationReason": "customer moved house", **fields}


def new_task(body: dict[str, Any] | None = None, *, now: str = at(20)) -> CancelServiceOrder:
    checked = validate_cancel_request(cancel_body() if body is None else body)
    return CancelServiceOrder.accept(checked, task_id="cso-1", now=now, actor=ACTOR)


# --- the request -------------------------------------------------------------------------------


def test_a_cancellation_request_is_acknowledged_and_announced() -> None:
    task = new_task()
    assert task.state == TaskState.ACKNOWLEDGED
    assert task.service_order_id == "so-1"
    assert task.to_document()["@type"] == "CancelServiceOrder"
    assert [(c.old, c.new, c.at) for c in task.changes] == [(None, "acknowledged", at(20))]
    assert [e.event_type for e in task.events] == [EventType.CANCEL_CREATE]


@pytest.mark.parametrize("name", sorted(SERVER_OWNED_TASK_FIELDS))
def test_a_server_owned_task_field_is_refused_by_name(name: str) -> None:
    with pytest.raises(ServerOwnedField) as refused:
        validate_cancel_request(cancel_body(**{name: "x"}))
    assert refused.value.path == name


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ([], "cancelServiceOrder"),
        ({"cancellationReason": "x"}, "serviceOrder"),
        ({"serviceOrder": "so-1"}, "serviceOrder.id"),
        ({"serviceOrder": {"href": "http://h/serviceOrder/so-1"}}, "serviceOrder.id"),
        ({"serviceOrder": {"id": "so-1"}, "requestedCancellationDate": "soon"}, "requestedCancellationDate"),
    ],
)
def test_a_malformed_request_names_the_offending_path(body: Any, path: str) -> None:
    with pytest.raises(InvalidOrder) as refused:
        validate_cancel_request(body)
    assert refused.value.path == path


def test_the_requested_cancellation_date_is_normalised() -> None:
    checked = validate_cancel_request(cancel_body(requestedCancellationDate="2026-12-01T12:00:00+01:00"))
    assert checked["requestedCancellationDate"] == "2026-12-01T11:00:00.000Z"


def test_a_task_survives_a_round_trip_through_its_document() -> None:
    order, task = accepted_order(), new_task()
    request_cancellation(order, task, now=at(21), actor=ACTOR)
    document = task.to_document()
    assert CancelServiceOrder.from_document(copy.deepcopy(document)).to_document() == document


# --- an order that has not started -------------------------------------------------------------


def test_an_acknowledged_order_is_cancelled_at_once() -> None:
    order = accepted_order(item("1"), item("2", serviceOrderItem=[item("2.1")]))
    task = new_task()
    request_cancellation(order, task, now=at(21), actor=ACTOR)
    assert order.state == S.CANCELLED
    assert {i.state for i in order.all_items()} == {S.CANCELLED}
    document = order.to_document()
    assert document["cancellationDate"] == at(21)
    assert document["cancellationReason"] == "customer moved house"


def test_the_task_of_a_cancelled_order_is_done_and_says_so() -> None:
    order, task = accepted_order(), new_task()
    request_cancellation(order, task, now=at(21), actor=ACTOR)
    assert task.state == TaskState.DONE
    document = task.to_document()
    assert document["effectiveCancellationDate"] == at(21)
    assert document["completionMessage"] == "service order so-1 cancelled before it started"
    assert "errorMessage" not in document
    assert [(c.old, c.new) for c in task.changes][-1] == ("acknowledged", "done")
    assert task.events[-1].event_type == EventType.CANCEL_STATE_CHANGE


def test_the_cancellation_is_recorded_on_the_order() -> None:
    order, task = accepted_order(), new_task()
    request_cancellation(order, task, now=at(21), actor="bss")
    recorded = [(c.subject, c.attribute, c.new, c.actor) for c in order.changes[1:]]
    assert ("serviceOrder", "cancellationReason", "customer moved house", "bss") in recorded
    assert ("serviceOrder", "state", "cancelled", "bss") in recorded
    assert ("serviceOrderItem[1]", "state", "cancelled", "bss") in recorded
    assert EventType.ORDER_STATE_CHANGE in [e.event_type for e in order.events]


def test_a_request_without_a_reason_leaves_the_reason_unset() -> None:
    order = accepted_order()
    body = cancel_body()
    del body["cancellationReason"]
    request_cancellation(order, new_task(body), now=at(21), actor=ACTOR)
    assert order.state == S.CANCELLED
    assert "cancellationReason" not in order.to_document()


# --- orders in flight, being cancelled, or finished --------------------------------------------


@pytest.mark.parametrize("state", IN_FLIGHT)
def test_an_order_in_flight_is_left_alone_and_the_task_says_why(state: OrderState) -> None:
    order = order_in(state, items=2)
    before, changes, events = order.to_document(), len(order.changes), len(order.events)
    task = new_task()
    request_cancellation(order, task, now=at(21), actor=ACTOR)
    assert (order.to_document(), len(order.changes), len(order.events)) == (before, changes, events)
    assert task.state == TaskState.TERMINATED_WITH_ERROR
    assert task.effective_cancellation_date is None
    assert task.error_message is not None
    assert task.error_message["code"] == "IN_FLIGHT_CANCELLATION_UNAVAILABLE"
    assert task.error_message["message"] == (
        "cancellation of an order that has started is not available in this release: provtrack "
        f"cancels orders in state acknowledged only; the order was left unchanged in state {state}"
    )


@pytest.mark.parametrize("state", BEING_CANCELLED)
def test_an_order_already_being_cancelled_is_not_cancelled_twice(state: OrderState) -> None:
    order = order_in(state)
    before = order.to_document()
    task = new_task()
    request_cancellation(order, task, now=at(21), actor=ACTOR)
    assert order.to_document() == before
    assert task.state == TaskState.TERMINATED_WITH_ERROR
    assert task.error_message is not None
    assert task.error_message["code"] == "CANCELLATION_UNDER_WAY"
    assert f"already being cancelled ({state})" in task.error_message["message"]


@pytest.mark.parametrize("state", sorted(TERMINAL_STATES))
def test_a_finished_order_has_nothing_left_to_cancel(state: OrderState) -> None:
    order = order_in(state)
    before = order.to_document()
    task = new_task()
    request_cancellation(order, task, now=at(21), actor=ACTOR)
    assert order.to_document() == before
    assert task.state == TaskState.TERMINATED_WITH_ERROR
    assert task.error_message == {
        "code": "ORDER_FINISHED",
        "reason": "cancellation refused",
        "message": f"service order so-1 is {state}: there is nothing left to cancel",
        "@type": "ErrorMessage",
    }


def test_a_finished_task_cannot_move_again() -> None:
    order, task = accepted_order(), new_task()
    request_cancellation(order, task, now=at(21), actor=ACTOR)
    with pytest.raises(TaskError, match="cannot move from done to terminatedWithError"):
        task.finish(TaskState.TERMINATED_WITH_ERROR, now=at(22), actor=ACTOR)
