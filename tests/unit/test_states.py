"""The TMF641 life cycle as one table (TMF641-NOTES §3) and the roll-up of item states."""

from __future__ import annotations

import random
import re
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from provtrack.domain.states import (
    INITIAL_STATE,
    TASK_TRANSITIONS,
    TERMINAL_STATES,
    TRANSITIONS,
    IllegalTransition,
    OrderState,
    TaskState,
    can_move,
    check_transition,
    roll_up,
    route,
)
from tests.unit.builders import PROPERTY, WALK

S = OrderState

# TMF641-NOTES §3 "Order transitions", row by row.
SPEC_MOVES = {
    (S.ACKNOWLEDGED, S.REJECTED),
    (S.ACKNOWLEDGED, S.IN_PROGRESS),
    (S.ACKNOWLEDGED, S.CANCELLED),
    (S.ACKNOWLEDGED, S.ASSESSING_CANCELLATION),
    (S.IN_PROGRESS, S.PENDING),
    (S.PENDING, S.IN_PROGRESS),
    (S.PENDING, S.CANCELLED),
    (S.IN_PROGRESS, S.HELD),
    (S.HELD, S.IN_PROGRESS),
    (S.HELD, S.CANCELLED),
    (S.IN_PROGRESS, S.COMPLETED),
    (S.IN_PROGRESS, S.FAILED),
    (S.IN_PROGRESS, S.PARTIAL),
    (S.IN_PROGRESS, S.CANCELLED),
    (S.IN_PROGRESS, S.ASSESSING_CANCELLATION),
    (S.PENDING, S.ASSESSING_CANCELLATION),
    (S.HELD, S.ASSESSING_CANCELLATION),
    (S.ASSESSING_CANCELLATION, S.ACKNOWLEDGED),
    (S.ASSESSING_CANCELLATION, S.IN_PROGRESS),
    (S.ASSESSING_CANCELLATION, S.PENDING),
    (S.ASSESSING_CANCELLATION, S.HELD),
    (S.ASSESSING_CANCELLATION, S.PENDING_CANCELLATION),
    (S.PENDING_CANCELLATION, S.CANCELLED),
}
# provtrack's extension (docs/cancellation.md): a cancellation step that falls out holds the order,
# and the cancellation goes on once an operator has acted.
EXTENSION_MOVES = {(S.PENDING_CANCELLATION, S.HELD), (S.HELD, S.PENDING_CANCELLATION)}
TABLE_MOVES = SPEC_MOVES | EXTENSION_MOVES
SPEC_TERMINALS = {S.COMPLETED, S.FAILED, S.PARTIAL, S.CANCELLED, S.REJECTED}
ALL_PAIRS = [(a, b) for a in OrderState for b in OrderState]

states = st.sampled_from(list(OrderState))
item_states = st.lists(states, min_size=1, max_size=8)


def item_states_without(*excluded: OrderState) -> st.SearchStrategy[list[OrderState]]:
    return st.lists(st.sampled_from([s for s in OrderState if s not in excluded]), min_size=1, max_size=8)


# --- the table ---------------------------------------------------------------------------------


def test_the_eleven_tmf641_states_all_have_a_row() -> None:
    assert len(OrderState) == 11
    assert set(TRANSITIONS) == set(OrderState)


def test_the_table_holds_exactly_the_moves_of_the_spec_and_the_extension() -> None:
    table_moves = {(a, b) for a, targets in TRANSITIONS.items() for b in targets}
    assert table_moves == TABLE_MOVES
    assert not EXTENSION_MOVES & SPEC_MOVES


@pytest.mark.parametrize(("current", "target"), sorted(TABLE_MOVES))
def test_every_move_of_the_spec_is_allowed(current: OrderState, target: OrderState) -> None:
    assert can_move(current, target)
    check_transition("serviceOrder", current, target)


@pytest.mark.parametrize(("current", "target"), sorted(set(ALL_PAIRS) - TABLE_MOVES))
def test_every_move_outside_the_spec_is_refused(current: OrderState, target: OrderState) -> None:
    assert not can_move(current, target)
    with pytest.raises(IllegalTransition):
        check_transition("serviceOrder", current, target)


def test_the_terminal_states_are_those_of_the_spec_and_have_no_exits() -> None:
    assert TERMINAL_STATES == SPEC_TERMINALS
    for state in SPEC_TERMINALS:
        assert TRANSITIONS[state] == frozenset()


def test_an_order_starts_acknowledged() -> None:
    assert INITIAL_STATE == S.ACKNOWLEDGED


def test_an_illegal_move_says_which_states_are_allowed_next() -> None:
    with pytest.raises(IllegalTransition) as caught:
        check_transition("serviceOrder", S.ACKNOWLEDGED, S.COMPLETED)
    message = str(caught.value)
    assert "serviceOrder cannot move from acknowledged to completed" in message
    assert message.endswith("allowed next states: assessingCancellation, cancelled, inProgress, rejected")
    assert caught.value.allowed == [S.ASSESSING_CANCELLATION, S.CANCELLED, S.IN_PROGRESS, S.REJECTED]


def test_a_move_out_of_a_terminal_state_says_the_state_is_terminal() -> None:
    with pytest.raises(IllegalTransition, match=r"allowed next states: none \(completed is terminal\)"):
        check_transition("serviceOrder", S.COMPLETED, S.IN_PROGRESS)


def test_every_state_reachable_from_acknowledged_can_still_finish() -> None:
    reachable = _reachable_from(S.ACKNOWLEDGED)
    assert reachable == set(OrderState)
    for state in reachable:
        assert _reachable_from(state) & TERMINAL_STATES, f"{state} cannot reach a terminal state"


def _reachable_from(start: OrderState) -> set[OrderState]:
    seen, frontier = {start}, [start]
    while frontier:
        frontier = [t for s in frontier for t in TRANSITIONS[s] if t not in seen]
        seen.update(frontier)
    return seen


@WALK
@given(st.data())
def test_a_random_walk_from_acknowledged_stays_in_the_table(data: st.DataObject) -> None:
    current = S.ACKNOWLEDGED
    for _ in range(data.draw(st.integers(min_value=0, max_value=25), label="length")):
        if current in TERMINAL_STATES:
            break
        outside = sorted(set(OrderState) - TRANSITIONS[current])
        refused = data.draw(st.sampled_from(outside), label=f"refused from {current}")
        with pytest.raises(IllegalTransition) as caught:
            check_transition("serviceOrder", current, refused)
        assert caught.value.allowed == sorted(TRANSITIONS[current])
        target = data.draw(st.sampled_from(sorted(TRANSITIONS[current])), label=f"from {current}")
        check_transition("serviceOrder", current, target)
        assert (current, target) in TABLE_MOVES
        current = target
    # A walk ends finished, or somewhere it can still move on from.
    assert current in TERMINAL_STATES or TRANSITIONS[current]


@WALK
@given(st.lists(states, max_size=25))
def test_a_path_succeeds_exactly_when_each_of_its_moves_is_in_the_table(path: list[OrderState]) -> None:
    current = S.ACKNOWLEDGED
    for target in path:
        legal = (current, target) in TABLE_MOVES
        if legal:
            check_transition("serviceOrder", current, target)
            current = target
        else:
            with pytest.raises(IllegalTransition):
                check_transition("serviceOrder", current, target)
    assert current in TERMINAL_STATES or TRANSITIONS[current]


# --- routes through the table ------------------------------------------------------------------


def test_a_route_is_the_direct_move_when_the_table_has_it() -> None:
    assert route(S.IN_PROGRESS, S.COMPLETED) == (S.COMPLETED,)
    assert route(S.HELD, S.HELD) == ()


def test_a_route_to_an_end_passes_through_in_progress() -> None:
    assert route(S.ACKNOWLEDGED, S.COMPLETED) == (S.IN_PROGRESS, S.COMPLETED)
    assert route(S.HELD, S.PARTIAL) == (S.IN_PROGRESS, S.PARTIAL)


def test_a_route_to_cancelled_out_of_an_assessment_accepts_the_cancellation() -> None:
    assert route(S.ASSESSING_CANCELLATION, S.CANCELLED) == (S.PENDING_CANCELLATION, S.CANCELLED)


def test_a_route_out_of_an_assessment_can_be_narrowed_to_its_origin() -> None:
    origin_held = frozenset({S.HELD, S.PENDING_CANCELLATION})
    assert route(S.ASSESSING_CANCELLATION, S.COMPLETED, first_steps=origin_held) == (
        S.HELD,
        S.IN_PROGRESS,
        S.COMPLETED,
    )
    assert route(S.ASSESSING_CANCELLATION, S.IN_PROGRESS, first_steps=origin_held) == (S.HELD, S.IN_PROGRESS)


@pytest.mark.parametrize(
    ("current", "target"),
    [(S.IN_PROGRESS, S.REJECTED), (S.PENDING_CANCELLATION, S.COMPLETED), (S.COMPLETED, S.IN_PROGRESS)],
)
def test_there_is_no_route_the_table_does_not_allow(current: OrderState, target: OrderState) -> None:
    assert route(current, target) is None


@PROPERTY
@given(states, states)
def test_every_route_is_a_walk_along_the_table(current: OrderState, target: OrderState) -> None:
    steps = route(current, target)
    if steps is None:
        return
    walk = [current, *steps]
    assert walk[-1] == target
    assert all((a, b) in TABLE_MOVES for a, b in pairwise(walk))
    assert set(walk[1:-1]) <= {S.IN_PROGRESS, S.PENDING_CANCELLATION}


# --- roll-up -----------------------------------------------------------------------------------


def test_an_order_without_items_has_no_state() -> None:
    with pytest.raises(ValueError, match="at least one item"):
        roll_up([])


@PROPERTY
@given(item_states)
def test_the_roll_up_is_always_an_order_state(states_: list[OrderState]) -> None:
    assert roll_up(states_) in set(OrderState)


@PROPERTY
@given(item_states, st.randoms(use_true_random=False))
def test_the_roll_up_does_not_depend_on_the_order_of_the_items(
    states_: list[OrderState], rnd: random.Random
) -> None:
    shuffled = list(states_)
    rnd.shuffle(shuffled)
    assert roll_up(shuffled) == roll_up(states_)


@PROPERTY
@given(item_states, st.integers(min_value=0, max_value=8))
def test_one_rejected_item_rejects_the_order(states_: list[OrderState], position: int) -> None:
    states_.insert(min(position, len(states_)), S.REJECTED)
    assert roll_up(states_) == S.REJECTED


@PROPERTY
@given(states, st.integers(min_value=1, max_value=6))
def test_items_all_in_one_state_give_the_order_that_state(state: OrderState, count: int) -> None:
    assert roll_up([state] * count) == state


@PROPERTY
@given(item_states_without(S.REJECTED), st.integers(min_value=0, max_value=8))
def test_any_item_in_progress_makes_the_order_in_progress(states_: list[OrderState], position: int) -> None:
    states_.insert(min(position, len(states_)), S.IN_PROGRESS)
    assert roll_up(states_) == S.IN_PROGRESS


@PROPERTY
@given(st.lists(st.sampled_from(sorted(SPEC_TERMINALS - {S.REJECTED})), max_size=6))
def test_finished_items_some_completed_some_failed_make_the_order_partial(others: list[OrderState]) -> None:
    assert roll_up([S.COMPLETED, S.FAILED, *others]) == S.PARTIAL


@PROPERTY
@given(item_states)
def test_finished_items_roll_up_to_a_finished_order(states_: list[OrderState]) -> None:
    finished = [s for s in states_ if s in TERMINAL_STATES]
    if finished:
        assert roll_up(finished) in TERMINAL_STATES


@PROPERTY
@given(item_states_without(S.REJECTED, S.IN_PROGRESS))
def test_a_waiting_item_keeps_the_order_waiting(states_: list[OrderState]) -> None:
    waiting = [
        s for s in (S.PENDING_CANCELLATION, S.ASSESSING_CANCELLATION, S.HELD, S.PENDING) if s in states_
    ]
    if waiting:
        assert roll_up(states_) == waiting[0]


def test_finished_items_beside_items_not_started_mean_the_order_is_under_way() -> None:
    assert roll_up([S.COMPLETED, S.ACKNOWLEDGED]) == S.IN_PROGRESS


def test_all_items_cancelled_cancel_the_order_and_cancelled_beside_failed_is_failed() -> None:
    assert roll_up([S.CANCELLED, S.CANCELLED]) == S.CANCELLED
    assert roll_up([S.CANCELLED, S.FAILED]) == S.FAILED
    assert roll_up([S.CANCELLED, S.COMPLETED]) == S.PARTIAL


# --- the cancel task ---------------------------------------------------------------------------


def test_the_cancel_task_life_cycle_is_that_of_the_diagram() -> None:
    moves = {(a, b) for a, targets in TASK_TRANSITIONS.items() for b in targets}
    assert moves == {
        (TaskState.ACKNOWLEDGED, TaskState.IN_PROGRESS),
        (TaskState.ACKNOWLEDGED, TaskState.DONE),
        (TaskState.ACKNOWLEDGED, TaskState.TERMINATED_WITH_ERROR),
        (TaskState.IN_PROGRESS, TaskState.DONE),
        (TaskState.IN_PROGRESS, TaskState.TERMINATED_WITH_ERROR),
    }


def test_the_task_enters_as_acknowledged_not_accepted() -> None:
    assert {s.value for s in TaskState} == {"acknowledged", "inProgress", "done", "terminatedWithError"}


def test_the_state_values_are_the_camel_case_enum_of_the_spec() -> None:
    camel = re.compile(r"^[a-z]+([A-Z][a-z]+)*$")
    values = {s.value for s in OrderState}
    assert all(camel.match(v) for v in values)
    assert "inProgress" in values
