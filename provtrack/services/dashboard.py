"""What the operations dashboard reads (docs/dashboard.md): the order list with its counts by state,
the jeopardy board, the fallout queue, the order page, subscription health, and the mark that
tells a page something changed. Reads only; every action of the dashboard is an existing use case
(services/orders.py, activities.py, jeopardy.py, events.py), plus `retry_group` and `add_note`
here, which go through the unit of work like them."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

import orjson

from provtrack.domain.activities import Activity, ActivityState, IllegalActivityTransition
from provtrack.domain.catalog import Catalog
from provtrack.domain.clock import format_datetime, parse_datetime
from provtrack.domain.durations import humane_duration
from provtrack.domain.escalation import Escalation, order_facts
from provtrack.domain.model import ServiceOrder
from provtrack.domain.plan import Plan
from provtrack.domain.policy import Policy
from provtrack.domain.query import Query
from provtrack.domain.tasks import TASK_FINAL, TaskState
from provtrack.services import activities
from provtrack.services.escalation import add_note as note_on
from provtrack.services.jeopardy import commitment_of
from provtrack.services.ports import ConcurrentUpdate, Context, Page, Transaction
from provtrack.services.ports import Store as OrderStore
from provtrack.services.unit_of_work import change_order

# The board shows the most urgent first.
LEVEL_RANK = {"late": 0, "inJeopardy": 1, "atRisk": 2}
BOARD_LIMIT = 50  # orders per level on the board, the most urgent; the counts say how many in all
FALLOUT_LIMIT = 2000  # activities in fallout read for the fallout page (grouped; a group retries all)
HELD_LIMIT = 100  # held orders listed, the longest held first; the count says how many in all


@dataclass(frozen=True, slots=True)
class FalloutRow:
    activity: dict[str, Any]  # the activity document
    order_id: str
    external_id: str | None
    order_state: str


@dataclass(frozen=True, slots=True)
class SubscriptionHealth:
    subscription_id: str
    streams: int  # orders it has been sent events of
    failing: int  # streams failing now
    dead_letters: int  # not delivered (nor queued for a replay)
    replaying: int  # queued for a replay
    redelivered: int  # delivered by a replay
    last_error: str | None


class DashboardRecords(Protocol):
    def list_orders(self, query: Query) -> Page:
        """As `Transaction.list_orders`, with `jeopardyLevel` (the level now) as a filter too."""
        ...

    def count_by_state(self, query: Query) -> dict[str, int]: ...
    def board(self, level: str, *, limit: int) -> tuple[int, list[str]]:
        """Open orders at that jeopardy level: how many, and the documents of the most urgent."""
        ...

    def running_activities(self, order_ids: Sequence[str]) -> dict[str, list[Activity]]: ...
    def escalations(self, order_ids: Sequence[str]) -> dict[str, list[Escalation]]: ...
    def fallout(self, *, limit: int) -> list[FalloutRow]: ...
    def held_orders(self, *, limit: int) -> tuple[int, list[str]]: ...
    def subscription_health(self) -> list[SubscriptionHealth]: ...
    def change_mark(self, order_id: str | None) -> int:
        """The newest outbox event (of the order, or of any): it moves whenever something changed."""
        ...

    def task_counts(self, work_groups: Sequence[str], states: Sequence[str]) -> dict[tuple[str, str], int]:
        """Manual tasks of those groups in those states: (group, state) -> how many."""
        ...

    def trail_mark(self, order_id: str | None) -> int:
        """The newest audit record (of the order, or of any): it moves with a manual task's move
        too, which is recorded in its order's trail but changes no order, so writes no event."""
        ...


class DashboardTransaction(Transaction, Protocol):
    @property
    def dashboard(self) -> DashboardRecords: ...


class Store(OrderStore, Protocol):
    def transaction(
        self, *, write: bool, optimistic_on: str | None = None
    ) -> AbstractContextManager[DashboardTransaction]: ...


# --- the order list ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OrderList:
    page: Page
    by_state: dict[str, int]  # under the same filter, whatever the state filter says


def order_list(store: Store, query: Query, *, counts_query: Query) -> OrderList:
    with store.transaction(write=False) as tx:
        page = tx.dashboard.list_orders(query)
        counts = tx.dashboard.count_by_state(counts_query)
    return OrderList(page, counts)


# --- the jeopardy board --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BoardEntry:
    order: dict[str, Any]
    level: str
    why: str  # the message of the alert that set the level
    commitment: str | None
    overrun: str | None = None  # the open activity furthest over its expected duration, by how much
    escalations: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class BoardLevel:
    level: str
    total: int
    entries: list[BoardEntry]


def jeopardy_board(
    store: Store, policy: Policy | None, *, now: datetime, limit: int = BOARD_LIMIT
) -> list[BoardLevel]:
    """Open orders at risk, in jeopardy or late: the most urgent level first, and in each level the
    order whose commitment is nearest (or furthest behind) first."""
    rules = {r.name: r for r in policy.rules} if policy is not None else {}
    levels = []
    with store.transaction(write=False) as tx:
        for level in sorted(LEVEL_RANK, key=LEVEL_RANK.__getitem__):
            total, documents = tx.dashboard.board(level, limit=limit)
            orders = [ServiceOrder.from_document(orjson.loads(text)) for text in documents]
            ids = [o.id for o in orders]
            running = tx.dashboard.running_activities(ids)
            escalations = tx.dashboard.escalations(ids)
            entries = []
            for order in orders:
                commitment = None
                if policy is not None:
                    facts = order_facts(order, level=level, now=now, state_since=now)
                    commitment = format_datetime(commitment_of(order, policy, facts))
                entries.append(
                    BoardEntry(
                        order.to_document(),
                        level,
                        str((order.jeopardy_alerts or [{}])[-1].get("message", "")),
                        commitment or order.attributes.get("requestedCompletionDate"),
                        overrun=worst_overrun(running.get(order.id, []), now),
                        escalations=[
                            with_next_step(e.to_document(rules.get(e.rule)), policy)
                            for e in escalations.get(order.id, [])
                        ],
                    )
                )
            entries.sort(key=lambda e: e.commitment or "9999")
            levels.append(BoardLevel(level, total, entries))
    return levels


def worst_overrun(running: Sequence[Activity], now: datetime) -> str | None:
    """`site-survey has run 1h 55min, expected 1h: 55min over`, for the running activity furthest
    past its expected duration; None when none is."""
    worst: tuple[timedelta, str] | None = None
    for a in running:
        if a.state not in (ActivityState.IN_PROGRESS, ActivityState.BLOCKED) or a.actual_start is None:
            continue
        ran = now - parse_datetime(a.actual_start)
        expected = timedelta(seconds=a.expected_seconds)
        if ran > expected and (worst is None or ran - expected > worst[0]):
            text = (
                f"{a.name} ({a.owner}) has run {humane_duration(ran)}, expected "
                f"{humane_duration(expected)}: {humane_duration(ran - expected)} over"
            )
            worst = (ran - expected, text)
    return worst[1] if worst else None


def with_next_step(escalation: dict[str, Any], policy: Policy | None) -> dict[str, Any]:
    """An escalation document with `nextStep`: what its ladder does next, unless acknowledged."""
    rule = next((r for r in policy.rules if r.name == escalation["rule"]), None) if policy else None
    fired = int(escalation.get("stepsFired", 0))
    if rule is not None and fired < len(rule.ladder) and not escalation.get("acknowledgedAt"):
        actions = ", ".join(a.describe() for a in rule.ladder[fired].actions)
        return {**escalation, "nextStep": f"step {fired + 1} of {len(rule.ladder)}: {actions}"}
    return escalation


# --- fallout -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FalloutGroup:
    system: str
    error: str
    rows: list[FalloutRow]


@dataclass(frozen=True, slots=True)
class FalloutQueue:
    groups: list[FalloutGroup]
    held_total: int
    held: list[dict[str, Any]]  # held orders (fallout or not): an operator, an escalation or fallout


def fallout_queue(store: Store, *, limit: int = FALLOUT_LIMIT) -> FalloutQueue:
    """Activities in fallout grouped by system and error (the biggest group first), and the orders
    that are held."""
    with store.transaction(write=False) as tx:
        rows = tx.dashboard.fallout(limit=limit)
        held_total, held = tx.dashboard.held_orders(limit=HELD_LIMIT)
    groups: dict[tuple[str, str], list[FalloutRow]] = {}
    for row in rows:
        groups.setdefault((row.activity["owner"], error_of(row.activity)), []).append(row)
    ordered = sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    return FalloutQueue(
        [FalloutGroup(system, error, members) for (system, error), members in ordered],
        held_total,
        [orjson.loads(d) for d in held],
    )


def error_of(activity: dict[str, Any]) -> str:
    """What went wrong, without the parts that differ from order to order (ids)."""
    reason = str(activity.get("reason") or "no reason given")
    owner = str(activity.get("owner"))
    return reason.removeprefix(f"{owner} reports the resource order ").strip() or reason


@dataclass(frozen=True, slots=True)
class GroupRetry:
    retried: list[str]  # activity ids sent again
    refused: dict[str, str]  # activity id -> why not (no longer in fallout, changed meanwhile)


def retry_group(
    store: Store, system: str, error: str, *, ctx: Context, catalog: Catalog | None
) -> GroupRetry:
    """Retry every activity in fallout at `system` with `error`, after a downstream outage: each one
    its own change of its order (services/activities.retry_activity), so one refusal stops none."""
    retried, refused = [], {}
    for row in fallout_queue(store).groups:
        if (row.system, row.error) != (system, error):
            continue
        for member in row.rows:
            activity_id = member.activity["id"]
            try:
                activities.retry_activity(store, activity_id, ctx=ctx, catalog=catalog)
                retried.append(activity_id)
            except (IllegalActivityTransition, ConcurrentUpdate) as exc:
                refused[activity_id] = str(exc)
    return GroupRetry(retried, refused)


# --- the order page ------------------------------------------------------------------------------


def add_note(store: Store, order_id: str, text: str, *, ctx: Context) -> ServiceOrder:
    """Append a TMF641 note by the operator (an attribute change: audited, announced)."""

    def change(_tx: Transaction, order: ServiceOrder, _plan: Plan | None) -> ServiceOrder:
        note_on(order, text, now=ctx.now, actor=ctx.actor)
        return order

    return change_order(store, order_id, change, ctx=ctx)


def fallout_activities(plan: dict[str, Any] | None) -> list[dict[str, Any]]:
    if plan is None:
        return []
    return [a for a in plan.get("activity", []) if a.get("state") == ActivityState.FALLOUT.value]


# --- the work queues ----------------------------------------------------------------------------


def open_task_counts(store: Store, work_groups: Sequence[str]) -> dict[str, dict[str, int]]:
    """Each group's open manual tasks by state (every open state, 0 included), counted on the queue's
    index: the work queues page's load figures, whatever its filter shows."""
    states = [s.value for s in TaskState if s not in TASK_FINAL]
    with store.transaction(write=False) as tx:
        counted = tx.dashboard.task_counts(work_groups, states) if work_groups else {}
    return {g: {s: counted.get((g, s), 0) for s in states} for g in work_groups}


# --- events and changes --------------------------------------------------------------------------


def subscription_health(store: Store) -> list[SubscriptionHealth]:
    with store.transaction(write=False) as tx:
        return tx.dashboard.subscription_health()


def change_mark(store: Store, order_id: str | None = None) -> int:
    with store.transaction(write=False) as tx:
        return tx.dashboard.change_mark(order_id)


def work_mark(store: Store, order_id: str | None = None) -> str:
    """The change mark of a page that shows manual tasks (the work queues, an order): it moves
    when an order changed or when a task moved."""
    with store.transaction(write=False) as tx:
        return f"{tx.dashboard.change_mark(order_id)}.{tx.dashboard.trail_mark(order_id)}"
