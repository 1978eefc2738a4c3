"""TMF641 life cycles: the order/item state table, the roll-up rules and the cancel task states.

The transition table is read from the TMF641 v4.1 life-cycle diagram (TMF641-NOTES §3). Orders and
items share it: the v4.1 item state type has the same eleven values.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum


class OrderState(StrEnum):
    """States of a service order and of its items (ServiceOrderStateType / ServiceOrderItemStateType)."""

    ACKNOWLEDGED = "acknowledged"  # accepted after the surface check, not started
    REJECTED = "rejected"  # failed business validation
    PENDING = "pending"  # waiting for information or an action from outside
    HELD = "held"  # blocked by an issue (fallout, infrastructure)
    IN_PROGRESS = "inProgress"  # being delivered
    CANCELLED = "cancelled"  # cancelled before completion
    COMPLETED = "completed"  # everything delivered
    FAILED = "failed"  # nothing could be delivered
    PARTIAL = "partial"  # some items delivered, some failed
    ASSESSING_CANCELLATION = "assessingCancellation"  # checking the point of no return
    PENDING_CANCELLATION = "pendingCancellation"  # cancellation accepted, being carried out


TRANSITIONS: dict[OrderState, frozenset[OrderState]] = {
    OrderState.ACKNOWLEDGED: frozenset(
        {OrderState.REJECTED, OrderState.IN_PROGRESS, OrderState.CANCELLED, OrderState.ASSESSING_CANCELLATION}
    ),
    OrderState.IN_PROGRESS: frozenset(
        {
            OrderState.PENDING,
            OrderState.HELD,
            OrderState.COMPLETED,
            OrderState.FAILED,
            OrderState.PARTIAL,
            OrderState.CANCELLED,
            OrderState.ASSESSING_CANCELLATION,
        }
    ),
    OrderState.PENDING: frozenset(
        {OrderState.IN_PROGRESS, OrderState.CANCELLED, OrderState.ASSESSING_CANCELLATION}
    ),
    # provtrack extension: a cancellation held by a step that failed (a downstream refused to cancel,
    # an undo failed) goes back to pendingCancellation once an operator has acted (docs/cancellation.md).
    OrderState.HELD: frozenset(
        {
            OrderState.IN_PROGRESS,
            OrderState.CANCELLED,
            OrderState.ASSESSING_CANCELLATION,
            OrderState.PENDING_CANCELLATION,
        }
    ),
    # Denial returns to the state the order came from; which one is checked by the caller
    # against the recorded origin (see ServiceOrder.deny_cancellation).
    OrderState.ASSESSING_CANCELLATION: frozenset(
        {
            OrderState.ACKNOWLEDGED,
            OrderState.IN_PROGRESS,
            OrderState.PENDING,
            OrderState.HELD,
            OrderState.PENDING_CANCELLATION,
        }
    ),
    # provtrack extension: the v4.1 diagram leaves pendingCancellation only to cancelled; a step of the
    # cancellation that fails holds the order for an operator (docs/cancellation.md).
    OrderState.PENDING_CANCELLATION: frozenset({OrderState.CANCELLED, OrderState.HELD}),
    OrderState.REJECTED: frozenset(),
    OrderState.CANCELLED: frozenset(),
    OrderState.COMPLETED: frozenset(),
    OrderState.FAILED: frozenset(),
    OrderState.PARTIAL: frozenset(),
}

TERMINAL_STATES: frozenset[OrderState] = frozenset(s for s, nxt in TRANSITIONS.items() if not nxt)
INITIAL_STATE = OrderState.ACKNOWLEDGED


class IllegalTransition(Exception):
    """A move that the TMF641 life cycle does not allow."""

    def __init__(
        self,
        subject: str,
        current: OrderState,
        target: OrderState,
        *,
        allowed: Iterable[OrderState] | None = None,
    ) -> None:
        self.subject = subject
        self.current = current
        self.target = target
        self.allowed = sorted(TRANSITIONS[current] if allowed is None else allowed)
        listed = ", ".join(self.allowed) if self.allowed else f"none ({current} is terminal)"
        super().__init__(f"{subject} cannot move from {current} to {target}; allowed next states: {listed}")


def can_move(current: OrderState, target: OrderState) -> bool:
    return target in TRANSITIONS[current]


def check_transition(subject: str, current: OrderState, target: OrderState) -> None:
    if not can_move(current, target):
        raise IllegalTransition(subject, current, target)


# What a subject passes through when it follows its items (or its order) to a state the table does
# not reach in one move: the cancellation was accepted in between, or the work was under way.
PASS_THROUGH: tuple[OrderState, ...] = (OrderState.PENDING_CANCELLATION, OrderState.IN_PROGRESS)


def route(
    current: OrderState,
    target: OrderState,
    *,
    first_steps: frozenset[OrderState] | None = None,
) -> tuple[OrderState, ...] | None:
    """The moves of the table that take `current` to `target`, shortest first, passing only through
    PASS_THROUGH states; None when there is no such way. `first_steps` narrows the first move (an
    order leaving a cancellation assessment) and may be passed through too.
    """
    if target == current:
        return ()
    firsts = TRANSITIONS[current] if first_steps is None else TRANSITIONS[current] & first_steps
    via = set(PASS_THROUGH) if first_steps is None else set(PASS_THROUGH) | firsts
    paths: list[tuple[OrderState, ...]] = [(s,) for s in _by_preference(firsts)]
    seen = {current}
    while paths:
        for path in paths:
            if path[-1] == target:
                return path
        seen.update(path[-1] for path in paths)
        paths = [
            (*path, nxt)
            for path in paths
            if path[-1] in via
            for nxt in _by_preference(TRANSITIONS[path[-1]])
            if nxt not in seen
        ]
    return None


def _by_preference(states: Iterable[OrderState]) -> list[OrderState]:
    rank = {s: n for n, s in enumerate(PASS_THROUGH)}
    return sorted(states, key=lambda s: (rank.get(s, len(PASS_THROUGH)), s.value))


def roll_up(item_states: Iterable[OrderState]) -> OrderState:
    """The order state the item states imply (TMF641 user guide, "Service Order Life Cycle").

    One rejected item rejects the order; one item in progress makes the order in progress; all
    completed is completed, all failed is failed, a finished mix with something delivered is partial.
    """
    states = list(item_states)
    if not states:
        raise ValueError("an order has at least one item")
    present = set(states)
    if OrderState.REJECTED in present:
        return OrderState.REJECTED
    if len(present) == 1:
        return states[0]
    if OrderState.IN_PROGRESS in present:
        return OrderState.IN_PROGRESS
    for waiting in (
        OrderState.PENDING_CANCELLATION,
        OrderState.ASSESSING_CANCELLATION,
        OrderState.HELD,
        OrderState.PENDING,
    ):
        if waiting in present:
            return waiting
    if present <= TERMINAL_STATES:
        if OrderState.COMPLETED in present or OrderState.PARTIAL in present:
            return OrderState.PARTIAL
        if OrderState.FAILED in present:
            return OrderState.FAILED
        return OrderState.CANCELLED
    # Some items finished, the others not started yet: the order is under way.
    return OrderState.IN_PROGRESS


class TaskState(StrEnum):
    """States of a CancelServiceOrder task.

    TMF641 v4.1's enum names the entry state `accepted`; its life-cycle diagram, the v5 guide, TMF622
    and TMF652 call it `acknowledged`. provtrack emits `acknowledged` and reads `accepted` (a v4.0/v4.1
    client's filter or document) as its synonym (docs/tmf641.md).
    """

    ACKNOWLEDGED = "acknowledged"  # the request is recorded
    IN_PROGRESS = "inProgress"  # the cancellation is being assessed or carried out
    DONE = "done"  # the order is cancelled
    TERMINATED_WITH_ERROR = "terminatedWithError"  # the order could not be cancelled

    @classmethod
    def _missing_(cls, value: object) -> TaskState | None:
        return cls.ACKNOWLEDGED if value == ACCEPTED else None


ACCEPTED = "accepted"  # TMF641 v4.1's enum name for the entry state: read as acknowledged


TASK_TRANSITIONS: dict[TaskState, frozenset[TaskState]] = {
    TaskState.ACKNOWLEDGED: frozenset(
        {TaskState.IN_PROGRESS, TaskState.DONE, TaskState.TERMINATED_WITH_ERROR}
    ),
    TaskState.IN_PROGRESS: frozenset({TaskState.DONE, TaskState.TERMINATED_WITH_ERROR}),
    TaskState.DONE: frozenset(),
    TaskState.TERMINATED_WITH_ERROR: frozenset(),
}
