"""The ServiceOrder aggregate: acceptance, item progress rolled up to the order, and the audit trail."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from provtrack.domain.model import (
    ORDER_LEVEL_STATES,
    EventType,
    ItemNotFound,
    ServiceOrder,
)
from provtrack.domain.states import TERMINAL_STATES, TRANSITIONS, IllegalTransition, OrderState, roll_up
from tests.factories import item, order_body
from tests.unit.builders import (
    ACTOR,
    PROPERTY,
    T0,
    WALK,
    accepted_order,
    at,
    order_in,
    order_with_items,
    state_changes,
)

S = OrderState


def item_states(order: ServiceOrder) -> dict[str, OrderState]:
    return {i.id: i.state for i in order.all_items()}


# --- acceptance --------------------------------------------------------------------------------


def test_an_accepted_order_and_all_its_items_are_acknowledged() -> None:
    order = accepted_order(item("1"), item("2", action="modify"))
    assert order.state == S.ACKNOWLEDGED
    assert item_states(order) == {"1": S.ACKNOWLEDGED, "2": S.ACKNOWLEDGED}
    assert order.order_date == T0
    assert order.start_date is None
    assert order.completion_date is None


def test_nested_items_are_acknowledged_too() -> None:
    order = accepted_order(item("1", serviceOrderItem=[item("1.1", serviceOrderItem=[item("1.1.1")])]))
    assert item_states(order) == {"1": S.ACKNOWLEDGED, "1.1": S.ACKNOWLEDGED, "1.1.1": S.ACKNOWLEDGED}
    nested = order.to_document()["serviceOrderItem"][0]["serviceOrderItem"][0]["serviceOrderItem"][0]
    assert nested["state"] == "acknowledged"
    assert nested["@type"] == "ServiceOrderItem"


def test_acceptance_defaults_the_type_of_the_order_and_its_items() -> None:
    document = accepted_order(item("1")).to_document()
    assert document["@type"] == "ServiceOrder"
    assert document["serviceOrderItem"][0]["@type"] == "ServiceOrderItem"


def test_acceptance_keeps_a_type_the_client_gave() -> None:
    order = accepted_order(item("1", **{"@type": "FtthItem"}), **{"@type": "FtthOrder"})
    document = order.to_document()
    assert document["@type"] == "FtthOrder"
    assert document["serviceOrderItem"][0]["@type"] == "FtthItem"


def test_acceptance_records_the_first_state_and_a_create_event() -> None:
    order = accepted_order()
    assert [(c.subject, c.attribute, c.old, c.new, c.at, c.actor) for c in order.changes] == [
        ("serviceOrder", "state", None, "acknowledged", T0, ACTOR)
    ]
    assert [(e.event_type, e.at) for e in order.events] == [(EventType.ORDER_CREATE, T0)]


def test_acceptance_does_not_change_the_body_it_was_given() -> None:
    body = order_body(item("1", serviceOrderItem=[item("1.1")]))
    untouched = copy.deepcopy(body)
    ServiceOrder.accept(body, order_id="so-1", now=T0, actor=ACTOR)
    assert body == untouched


def test_acceptance_keeps_every_client_field() -> None:
    body = order_body(note=[{"text": "call first"}], requestedStartDate="2026-12-01T08:00:00.000Z")
    document = ServiceOrder.accept(body, order_id="so-1", now=T0, actor=ACTOR).to_document()
    for name, value in body.items():
        if name != "serviceOrderItem":
            assert document[name] == value
    assert document["id"] == "so-1"
    assert "href" not in document


def test_an_unknown_item_is_reported_by_id() -> None:
    with pytest.raises(ItemNotFound, match="'9'"):
        accepted_order().item("9")


# --- items drive the order ---------------------------------------------------------------------


def test_the_first_item_in_progress_starts_the_order() -> None:
    order = order_with_items(2)
    order.move_item("1", S.IN_PROGRESS, now=at(5), actor=ACTOR)
    assert order.state == S.IN_PROGRESS
    assert order.start_date == at(5)
    order.move_item("2", S.IN_PROGRESS, now=at(6), actor=ACTOR)
    assert order.start_date == at(5)


def test_the_last_item_completed_completes_the_order() -> None:
    order = order_with_items(2)
    for n, item_id in enumerate(("1", "2")):
        order.move_item(item_id, S.IN_PROGRESS, now=at(n), actor=ACTOR)
    order.move_item("1", S.COMPLETED, now=at(10), actor=ACTOR)
    assert order.state == S.IN_PROGRESS
    assert order.completion_date is None
    order.move_item("2", S.COMPLETED, now=at(11), actor=ACTOR)
    assert order.state == S.COMPLETED
    assert order.completion_date == at(11)


def test_one_completed_and_one_failed_item_make_the_order_partial() -> None:
    order = order_with_items(2)
    for item_id, outcome in (("1", S.COMPLETED), ("2", S.FAILED)):
        order.move_item(item_id, S.IN_PROGRESS, now=at(1), actor=ACTOR)
        order.move_item(item_id, outcome, now=at(2), actor=ACTOR)
    assert order.state == S.PARTIAL
    assert order.completion_date is None


def test_one_rejected_item_rejects_the_order_and_its_other_items() -> None:
    order = accepted_order(item("1"), item("2"), item("3", serviceOrderItem=[item("3.1")]))
    order.move_item("2", S.REJECTED, now=at(1), actor=ACTOR)
    assert order.state == S.REJECTED
    assert set(item_states(order).values()) == {S.REJECTED}
    assert order.start_date is None


def test_an_item_under_cancellation_is_cancelled_when_another_rejects_the_order() -> None:
    order = order_with_items(2)
    order.move_item("1", S.ASSESSING_CANCELLATION, now=at(1), actor=ACTOR)
    order.move_item("2", S.REJECTED, now=at(2), actor=ACTOR)
    assert order.state == S.REJECTED
    assert item_states(order) == {"1": S.CANCELLED, "2": S.REJECTED}
    _assert_history_follows_the_table(order)


def test_nested_items_take_part_in_the_roll_up() -> None:
    order = accepted_order(item("1", serviceOrderItem=[item("1.1")]))
    order.move_item("1.1", S.IN_PROGRESS, now=at(1), actor=ACTOR)
    assert order.state == S.IN_PROGRESS
    order.move_item("1.1", S.COMPLETED, now=at(2), actor=ACTOR)
    assert order.state == S.IN_PROGRESS
    order.move_item("1", S.IN_PROGRESS, now=at(3), actor=ACTOR)
    order.move_item("1", S.COMPLETED, now=at(4), actor=ACTOR)
    assert order.state == S.COMPLETED


def test_an_order_finished_by_one_step_of_its_items_passes_through_in_progress() -> None:
    order = accepted_order()
    order.move_item("1", S.IN_PROGRESS, now=at(1), actor=ACTOR)
    order.move_item("1", S.COMPLETED, now=at(2), actor=ACTOR)
    assert state_changes(order) == [
        (None, "acknowledged"),
        ("acknowledged", "inProgress"),
        ("inProgress", "completed"),
    ]


def test_an_item_move_outside_the_table_is_refused_and_changes_nothing() -> None:
    order = order_with_items(2)
    before = order.to_document()
    with pytest.raises(IllegalTransition, match=r"serviceOrderItem\[1\] cannot move from acknowledged"):
        order.move_item("1", S.COMPLETED, now=at(1), actor=ACTOR)
    assert order.to_document() == before
    assert len(order.changes) == 1


def test_an_order_the_operator_holds_stays_held_while_its_items_progress() -> None:
    order = order_with_items(2)
    order.move_item("1", S.IN_PROGRESS, now=at(1), actor=ACTOR)
    order.move_to(S.HELD, now=at(2), actor=ACTOR)
    order.move_item("2", S.IN_PROGRESS, now=at(3), actor=ACTOR)
    order.move_item("1", S.COMPLETED, now=at(4), actor=ACTOR)
    assert order.state == S.HELD


def test_an_order_held_by_the_operator_still_finishes_when_its_items_do() -> None:
    order = order_with_items(2)
    order.move_item("1", S.IN_PROGRESS, now=at(1), actor=ACTOR)
    order.move_item("2", S.IN_PROGRESS, now=at(1), actor=ACTOR)
    order.move_to(S.HELD, now=at(2), actor=ACTOR)
    order.move_item("1", S.COMPLETED, now=at(3), actor=ACTOR)
    order.move_item("2", S.COMPLETED, now=at(4), actor=ACTOR)
    assert order.state == S.COMPLETED
    assert state_changes(order)[-2:] == [("held", "inProgress"), ("inProgress", "completed")]
    assert order.completion_date == at(4)


def test_an_item_on_hold_does_not_hold_the_order() -> None:
    order = order_with_items(2)
    order.move_item("1", S.IN_PROGRESS, now=at(1), actor=ACTOR)
    order.move_item("1", S.HELD, now=at(2), actor=ACTOR)
    assert roll_up(i.state for i in order.all_items()) == S.HELD
    assert order.state == S.IN_PROGRESS
    order.move_item("1", S.IN_PROGRESS, now=at(3), actor=ACTOR)
    order.move_item("1", S.COMPLETED, now=at(4), actor=ACTOR)
    assert order.state == S.IN_PROGRESS


def test_an_item_being_cancelled_does_not_put_the_order_under_cancellation() -> None:
    order = order_with_items(2)
    order.move_item("1", S.ASSESSING_CANCELLATION, now=at(1), actor=ACTOR)
    order.move_item("1", S.PENDING_CANCELLATION, now=at(2), actor=ACTOR)
    assert order.state == S.ACKNOWLEDGED
    order.move_item("2", S.IN_PROGRESS, now=at(3), actor=ACTOR)
    assert order.state == S.IN_PROGRESS
    order.move_item("1", S.CANCELLED, now=at(4), actor=ACTOR)
    order.move_item("2", S.COMPLETED, now=at(5), actor=ACTOR)
    assert order.state == S.PARTIAL


def test_items_finishing_during_a_cancellation_assessment_end_it_and_finish_the_order() -> None:
    order = order_with_items(1)
    order.move_item("1", S.IN_PROGRESS, now=at(1), actor=ACTOR)
    order.move_to(S.ASSESSING_CANCELLATION, now=at(2), actor=ACTOR)
    order.move_item("1", S.COMPLETED, now=at(3), actor=ACTOR)
    assert order.state == S.COMPLETED
    assert state_changes(order)[-2:] == [("assessingCancellation", "inProgress"), ("inProgress", "completed")]
    assert order.state_before_cancellation is None


def test_an_item_cannot_be_rejected_once_the_order_is_under_way() -> None:
    order = order_with_items(2)
    order.move_item("1", S.IN_PROGRESS, now=at(1), actor=ACTOR)
    before = order.to_document()
    with pytest.raises(IllegalTransition, match="serviceOrder cannot move from inProgress to rejected"):
        order.move_item("2", S.REJECTED, now=at(2), actor=ACTOR)
    assert order.to_document() == before


def test_an_order_being_cancelled_refuses_items_that_complete() -> None:
    order = order_with_items(1)
    order.move_item("1", S.IN_PROGRESS, now=at(1), actor=ACTOR)
    order.move_to(S.ASSESSING_CANCELLATION, now=at(2), actor=ACTOR)
    order.move_to(S.PENDING_CANCELLATION, now=at(3), actor=ACTOR)
    with pytest.raises(IllegalTransition, match="serviceOrder cannot move from pendingCancellation"):
        order.move_item("1", S.COMPLETED, now=at(4), actor=ACTOR)
    assert order.item("1").state == S.IN_PROGRESS
    order.move_item("1", S.CANCELLED, now=at(5), actor=ACTOR)
    assert order.state == S.CANCELLED


@st.composite
def legal_item_moves(draw: st.DrawFn) -> tuple[int, list[tuple[int, int]]]:
    """An item count (1-4) and up to 30 (item index, choice) pairs read against the table as it goes."""
    count = draw(st.integers(min_value=1, max_value=4))
    moves = draw(st.lists(st.tuples(st.integers(0, count - 1), st.integers(0, 6)), max_size=30))
    return count, moves


@WALK
@given(legal_item_moves())
def test_legal_item_moves_keep_the_order_in_the_state_its_items_imply(
    scenario: tuple[int, list[tuple[int, int]]],
) -> None:
    count, moves = scenario
    order = order_with_items(count)
    for step, (index, choice) in enumerate(moves, start=1):
        item_ = order.items[index]
        options = sorted(TRANSITIONS[item_.state])
        if not options:
            continue
        target = options[choice % len(options)]
        before = order.to_document()
        implied = roll_up(target if i is item_ else i.state for i in order.all_items())
        refused: IllegalTransition | None = None
        try:
            order.move_item(item_.id, target, now=at(step), actor=ACTOR)
        except IllegalTransition as exc:
            refused = exc
        if refused is not None:
            # The item may move, but the order cannot follow it to what it implies: nothing changes.
            assert (refused.subject, refused.current, refused.target) == (
                "serviceOrder",
                order.state,
                implied,
            )
            assert order.to_document() == before
            continue
        derived = roll_up(i.state for i in order.all_items())
        started = "inProgress" in (new for _, new in state_changes(order))
        explained = f"items {item_states(order)} imply {derived}, order is {order.state}"
        if derived in TERMINAL_STATES:
            assert order.state == derived, explained
        else:
            # Short of finishing, the order differs from its items only where an order-level state
            # is involved, or where it has started and its items are back to not started.
            assert order.state not in TERMINAL_STATES, explained
            assert (
                order.state == derived
                or ORDER_LEVEL_STATES & {order.state, derived}
                or (started and derived == S.ACKNOWLEDGED)
            ), explained
        if S.IN_PROGRESS in item_states(order).values():
            assert started, explained
        if order.is_terminal:
            assert set(item_states(order).values()) <= TERMINAL_STATES, explained
        assert (order.start_date is not None) == started
        assert (order.completion_date is not None) == (order.state == S.COMPLETED)
    _assert_history_follows_the_table(order)


def _assert_history_follows_the_table(order: ServiceOrder) -> None:
    """Each recorded state change of the order and its items is a move of the table."""
    last: dict[str, OrderState] = {}
    for change in order.changes:
        if change.attribute != "state":
            continue
        if change.old is not None:
            assert OrderState(change.new) in TRANSITIONS[OrderState(change.old)], change
            assert last.get(change.subject, S.ACKNOWLEDGED) == change.old, change
        last[change.subject] = OrderState(change.new)
    assert last["serviceOrder"] == order.state
    order_moves = [c for c in order.changes if c.subject == "serviceOrder" and c.attribute == "state"]
    announced = [e for e in order.events if e.event_type == EventType.ORDER_STATE_CHANGE]
    assert [c.at for c in order_moves[1:]] == [e.at for e in announced]
    for it in order.all_items():
        assert last.get(f"serviceOrderItem[{it.id}]", S.ACKNOWLEDGED) == it.state


# --- the order moved as a whole ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "items_end"),
    [(S.COMPLETED, S.COMPLETED), (S.FAILED, S.FAILED), (S.PARTIAL, S.FAILED), (S.CANCELLED, S.CANCELLED)],
)
def test_an_order_moved_to_an_end_closes_its_open_items(target: OrderState, items_end: OrderState) -> None:
    order = accepted_order(item("1"), item("2"), item("3", serviceOrderItem=[item("3.1")]))
    order.move_to(S.IN_PROGRESS, now=at(1), actor=ACTOR)
    order.move_item("1", S.IN_PROGRESS, now=at(2), actor=ACTOR)
    order.move_item("1", S.COMPLETED, now=at(3), actor=ACTOR)
    order.move_item("2", S.IN_PROGRESS, now=at(4), actor=ACTOR)
    order.move_item("2", S.HELD, now=at(5), actor=ACTOR)
    order.move_item("3", S.IN_PROGRESS, now=at(5), actor=ACTOR)
    assert order.state == S.IN_PROGRESS
    order.move_to(target, now=at(6), actor=ACTOR)
    assert order.state == target
    assert item_states(order) == {"1": S.COMPLETED, "2": items_end, "3": items_end, "3.1": items_end}
    _assert_history_follows_the_table(order)


def test_rejecting_an_order_rejects_its_items() -> None:
    order = accepted_order(item("1", serviceOrderItem=[item("1.1")]))
    order.move_to(S.REJECTED, now=at(1), actor=ACTOR)
    assert item_states(order) == {"1": S.REJECTED, "1.1": S.REJECTED}


def test_cancelling_an_order_cancels_items_under_cancellation_assessment() -> None:
    order = order_with_items(2)
    order.move_item("1", S.IN_PROGRESS, now=at(1), actor=ACTOR)
    order.move_item("2", S.ASSESSING_CANCELLATION, now=at(2), actor=ACTOR)
    order.move_to(S.CANCELLED, now=at(3), actor=ACTOR)
    assert item_states(order) == {"1": S.CANCELLED, "2": S.CANCELLED}
    assert state_changes(order, "serviceOrderItem[2]")[-2:] == [
        ("assessingCancellation", "pendingCancellation"),
        ("pendingCancellation", "cancelled"),
    ]


def test_completing_an_order_completes_items_under_cancellation_assessment() -> None:
    order = order_with_items(2)
    order.move_item("1", S.IN_PROGRESS, now=at(1), actor=ACTOR)
    order.move_item("2", S.ASSESSING_CANCELLATION, now=at(2), actor=ACTOR)
    order.move_to(S.COMPLETED, now=at(3), actor=ACTOR)
    assert item_states(order) == {"1": S.COMPLETED, "2": S.COMPLETED}
    _assert_history_follows_the_table(order)


def test_an_order_move_its_items_cannot_follow_is_refused_and_changes_nothing() -> None:
    order = order_with_items(2)
    order.move_item("1", S.IN_PROGRESS, now=at(1), actor=ACTOR)
    order.move_item("2", S.ASSESSING_CANCELLATION, now=at(2), actor=ACTOR)
    order.move_item("2", S.PENDING_CANCELLATION, now=at(3), actor=ACTOR)
    before, changes = order.to_document(), len(order.changes)
    with pytest.raises(
        IllegalTransition, match=r"serviceOrderItem\[2\] cannot move from pendingCancellation"
    ):
        order.move_to(S.COMPLETED, now=at(4), actor=ACTOR)
    assert order.to_document() == before
    assert len(order.changes) == changes


def test_an_order_move_outside_the_table_lists_the_allowed_states() -> None:
    order = accepted_order()
    with pytest.raises(
        IllegalTransition,
        match="allowed next states: assessingCancellation, cancelled, inProgress, rejected",
    ):
        order.move_to(S.COMPLETED, now=at(1), actor=ACTOR)
    assert order.state == S.ACKNOWLEDGED


def test_a_finished_order_cannot_move_again() -> None:
    order = order_in(S.COMPLETED)
    with pytest.raises(IllegalTransition, match=r"none \(completed is terminal\)"):
        order.move_to(S.IN_PROGRESS, now=at(9), actor=ACTOR)


def test_moving_to_the_current_state_changes_and_records_nothing() -> None:
    order = accepted_order()
    order.move_to(S.ACKNOWLEDGED, now=at(1), actor=ACTOR)
    assert len(order.changes) == 1
    assert len(order.events) == 1


def test_every_state_change_is_recorded_with_its_time_and_actor() -> None:
    order = accepted_order()
    order.move_to(S.IN_PROGRESS, now=at(1), actor="engine")
    order.move_to(S.PENDING, now=at(2), actor="alice")
    assert [(c.old, c.new, c.at, c.actor) for c in order.changes if c.attribute == "state"] == [
        (None, "acknowledged", T0, ACTOR),
        ("acknowledged", "inProgress", at(1), "engine"),
        ("inProgress", "pending", at(2), "alice"),
    ]
    assert [(c.attribute, c.new) for c in order.changes if c.attribute == "startDate"] == [
        ("startDate", at(1))
    ]


def test_every_order_state_change_emits_a_state_change_event() -> None:
    order = accepted_order()
    order.move_to(S.IN_PROGRESS, now=at(1), actor=ACTOR)
    order.move_to(S.COMPLETED, now=at(2), actor=ACTOR)
    assert [(e.event_type, e.at) for e in order.events] == [
        (EventType.ORDER_CREATE, T0),
        (EventType.ORDER_STATE_CHANGE, at(1)),
        (EventType.ORDER_STATE_CHANGE, at(2)),
    ]


def test_an_item_move_emits_an_attribute_value_change_event() -> None:
    order = order_with_items(2)
    order.move_item("1", S.IN_PROGRESS, now=at(1), actor=ACTOR)
    assert [e.event_type for e in order.events] == [
        EventType.ORDER_CREATE,
        EventType.ORDER_ATTRIBUTE_VALUE_CHANGE,
        EventType.ORDER_STATE_CHANGE,
    ]


def test_a_cancelled_order_gets_its_cancellation_date_on_the_record() -> None:
    order = accepted_order()
    order.move_to(S.CANCELLED, now=at(3), actor=ACTOR)
    assert order.to_document()["cancellationDate"] == at(3)
    assert [(c.old, c.new, c.at) for c in order.changes if c.attribute == "cancellationDate"] == [
        (None, at(3), at(3))
    ]


@pytest.mark.parametrize(
    ("end", "expected"),
    [
        (S.COMPLETED, at(6)),
        (S.PARTIAL, at(6)),
        (S.FAILED, at(6)),
        (S.CANCELLED, None),  # it will never complete: cancellationDate says when it stopped
    ],
)
def test_a_finished_order_expects_its_completion_when_it_ended_or_not_at_all(
    end: OrderState, expected: str | None
) -> None:
    order = order_in(S.IN_PROGRESS)
    order.set_expected_completion(at(30), now=at(2), actor=ACTOR)  # the last projection

    order.move_to(end, now=at(6), actor=ACTOR)

    assert order.expected_completion_date == expected
    assert order.to_document().get("expectedCompletionDate") == expected
    assert [(c.old, c.new, c.at) for c in order.changes if c.attribute == "expectedCompletionDate"][-1] == (
        at(30),
        expected,
        at(6),
    )
    if end is S.COMPLETED:
        assert order.completion_date == order.expected_completion_date


def test_an_order_rejected_before_any_projection_expects_no_completion() -> None:
    order = accepted_order()
    order.move_to(S.REJECTED, now=at(1), actor=ACTOR)
    assert order.expected_completion_date is None
    assert not [c for c in order.changes if c.attribute == "expectedCompletionDate"]


def test_an_order_its_items_complete_expects_its_completion_when_it_completed() -> None:
    order = order_with_items(1)
    order.set_expected_completion(at(30), now=at(1), actor=ACTOR)
    order.move_item("1", S.IN_PROGRESS, now=at(2), actor=ACTOR)

    order.move_item("1", S.COMPLETED, now=at(7), actor=ACTOR)

    assert order.completion_date == order.expected_completion_date == at(7)


# --- cancellation assessment -------------------------------------------------------------------


@pytest.mark.parametrize("origin", [S.ACKNOWLEDGED, S.IN_PROGRESS, S.PENDING, S.HELD])
def test_a_denied_cancellation_returns_only_to_its_origin(origin: OrderState) -> None:
    order = order_in(origin)
    order.move_to(S.ASSESSING_CANCELLATION, now=at(10), actor=ACTOR)
    assert order.state_before_cancellation == origin
    for elsewhere in sorted(TRANSITIONS[S.ASSESSING_CANCELLATION] - {origin, S.PENDING_CANCELLATION}):
        with pytest.raises(IllegalTransition) as refused:
            order.move_to(elsewhere, now=at(11), actor=ACTOR)
        assert refused.value.allowed == sorted({origin, S.PENDING_CANCELLATION})
        assert order.state == S.ASSESSING_CANCELLATION
    order.move_to(origin, now=at(12), actor=ACTOR)
    assert order.state == origin
    assert order.state_before_cancellation is None


def test_an_accepted_cancellation_goes_on_to_cancelled() -> None:
    order = order_in(S.HELD, items=2)
    order.move_to(S.ASSESSING_CANCELLATION, now=at(10), actor=ACTOR)
    order.move_to(S.PENDING_CANCELLATION, now=at(11), actor=ACTOR)
    assert order.state_before_cancellation is None
    order.move_to(S.CANCELLED, now=at(12), actor=ACTOR)
    assert set(item_states(order).values()) == {S.CANCELLED}


def test_the_origin_of_an_assessment_survives_a_reload() -> None:
    order = order_in(S.PENDING)
    order.move_to(S.ASSESSING_CANCELLATION, now=at(10), actor=ACTOR)
    reloaded = ServiceOrder.from_document(order.to_document(), state_before_cancellation="pending")
    with pytest.raises(IllegalTransition):
        reloaded.move_to(S.IN_PROGRESS, now=at(11), actor=ACTOR)
    reloaded.move_to(S.PENDING, now=at(11), actor=ACTOR)
    assert reloaded.state == S.PENDING


# --- documents ---------------------------------------------------------------------------------

texts = st.text(alphabet="abcXYZ -_.09", max_size=8)
scalars = st.one_of(texts, st.integers(-5, 5), st.booleans())
json_values = st.one_of(
    scalars,
    st.lists(scalars, max_size=3),
    st.dictionaries(texts, st.one_of(scalars, st.none()), max_size=3),
)
ids = st.text(alphabet="abc123", min_size=1, max_size=4)


@st.composite
def create_bodies(draw: st.DrawFn) -> dict[str, Any]:
    """A valid create body: unique item ids, optional nesting and extra client fields."""
    prefix = draw(ids)
    numbers = iter(range(100))

    def an_item(depth: int) -> dict[str, Any]:
        action = draw(st.sampled_from(["add", "modify", "delete", "noChange"]))
        extra = draw(st.dictionaries(st.sampled_from(["quantity", "appointment", "x-note"]), json_values))
        if depth < 2 and draw(st.booleans()):
            extra["serviceOrderItem"] = [an_item(depth + 1) for _ in range(draw(st.integers(1, 2)))]
        return item(f"{prefix}{next(numbers)}", action=action, **extra)

    items = [an_item(0) for _ in range(draw(st.integers(1, 3)))]
    fields = draw(
        st.dictionaries(
            st.sampled_from(["description", "externalId", "priority", "note", "relatedParty", "category"]),
            json_values,
        )
    )
    return order_body(*items, **fields)


@PROPERTY
@given(create_bodies())
def test_an_order_survives_a_round_trip_through_its_document(body: dict[str, Any]) -> None:
    order = ServiceOrder.accept(body, order_id="so-1", now=T0, actor=ACTOR)
    document = order.to_document()
    reloaded = ServiceOrder.from_document(copy.deepcopy(document), version=3)
    assert reloaded.to_document() == document
    assert reloaded.version == 3
    assert item_states(reloaded) == item_states(order)
    for name, value in body.items():
        if name != "serviceOrderItem":
            assert document[name] == value


def test_server_dates_and_lists_survive_a_round_trip() -> None:
    order = order_with_items(2)
    order.move_item("1", S.IN_PROGRESS, now=at(1), actor=ACTOR)
    order.move_to(S.COMPLETED, now=at(2), actor=ACTOR)
    order.expected_completion_date = at(3)
    order.milestones.append({"id": "m1", "name": "site survey"})
    order.jeopardy_alerts.append({"id": "j1", "jeopardyType": "Hazard"})
    order.error_messages.append({"code": "E1"})
    order.item("2").error_messages.append({"code": "E2"})
    document = order.to_document()
    assert document["startDate"] == at(1)
    assert document["completionDate"] == at(2)
    reloaded = ServiceOrder.from_document(copy.deepcopy(document))
    assert reloaded.to_document() == document
    assert reloaded.start_date == at(1)
    assert reloaded.item("2").error_messages == [{"code": "E2"}]
    assert reloaded.changes == []
    assert reloaded.events == []
