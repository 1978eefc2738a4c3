"""The one way an order changes: load it (and its plan), apply the change, run the hooks features
registered at assembly, save with the version check, and start over on a concurrent update.

Every use case that changes an existing order goes through `change_order`; a new feature plugs in
by giving the store an `AfterChange` hook in the assembly (`bootstrap.Assembly`), not by being
called from here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from provtrack.domain.model import ServiceOrder
from provtrack.domain.plan import Plan
from provtrack.services.ports import (
    ConcurrentUpdate,
    Context,
    OrderNotFound,
    PlanNotFound,
    Store,
    Transaction,
)

T = TypeVar("T")
SAVE_ATTEMPTS = 5  # optimistic concurrency: reload and reapply when another writer got there first

Change = Callable[[Transaction, ServiceOrder, Plan | None], T]
NewPlan = Callable[[Transaction, ServiceOrder, Plan | None], tuple[Plan | None, T]]


def change_order(
    store: Store,
    order_id: str,
    change: Change[T],
    *,
    ctx: Context,
    changes_plan: bool = False,
    plan_optional: bool = False,
    optimistic: bool = False,
) -> T:
    """Run `change` on the order and its plan (None before planning), then the after-change hooks,
    then save what changed. With `changes_plan` the plan must exist (PlanNotFound), unless
    `plan_optional` (an order not planned yet is changed alone), and is saved too; otherwise the
    hooks only read it.

    `optimistic` (the engine's changes): on SQLite the change is decided without the writer lock,
    which is held only to write it (SqlStore.transaction); a concurrent change makes it start over.
    The API's changes hold the lock throughout, so a PATCH never fails because the engine moved
    the order meanwhile."""

    def attempt(tx: Transaction, order: ServiceOrder, plan: Plan | None) -> T:
        if plan is None and changes_plan and not plan_optional:
            raise PlanNotFound(order.id)
        result = change(tx, order, plan)
        _finish_change(store, tx, order, plan, ctx, save_plan=changes_plan)
        return result

    return _retried(store, order_id, attempt, optimistic=optimistic)


def plan_order_change(store: Store, order_id: str, build: NewPlan[T], *, ctx: Context) -> T:
    """`change_order` for the change that gives an order its plan: `build` returns the new plan
    (or None, and the order is changed without one) with its result."""

    def attempt(tx: Transaction, order: ServiceOrder, plan: Plan | None) -> T:
        new_plan, result = build(tx, order, plan)
        _finish_change(store, tx, order, new_plan or plan, ctx, new_plan=new_plan is not None)
        return result

    return _retried(store, order_id, attempt, optimistic=True)


def _retried(store: Store, order_id: str, attempt: Change[T], *, optimistic: bool) -> T:
    """One transaction per attempt, started over on a concurrent update."""
    for number in range(SAVE_ATTEMPTS):
        try:
            with store.transaction(write=True, optimistic_on=order_id if optimistic else None) as tx:
                order = tx.get_order(order_id)
                if order is None:
                    raise OrderNotFound(order_id)
                return attempt(tx, order, tx.plans.get(order_id))
        except ConcurrentUpdate:
            # The whole attempt rolled back (jobs and rows it wrote included): reload and reapply.
            if number == SAVE_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def _finish_change(
    store: Store,
    tx: Transaction,
    order: ServiceOrder,
    plan: Plan | None,
    ctx: Context,
    *,
    save_plan: bool = False,
    new_plan: bool = False,
) -> None:
    """The end of every change of an order: the hooks, then the plan and the order saved. A deleted
    order is removed; an order left as it was is checked unchanged at commit (the change was
    decided on it)."""
    for hook in store.after_change:
        hook(tx, order, plan, ctx)
    if plan is not None and new_plan:
        tx.plans.add(plan)
    elif plan is not None and (save_plan or plan.changes):
        # A hook that moved an activity (a task resumed by a PATCH) has the plan saved too.
        tx.plans.save(plan)
    if order.deleted:
        tx.delete_order(order.id, at=ctx.now)
        tx.record_changes(order.id, order.changes)
        tx.record_events(order)
    elif order.changes or order.events:
        tx.save_order(order)
    else:
        tx.expect_unchanged(order)
