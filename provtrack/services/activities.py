"""Operators' use cases on provisioning activities (docs/engine.md): read a plan or an activity,
and retry, skip or fail an activity. Each action is one change of the order through the unit of
work; the activity's state table decides whether it is allowed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from provtrack.domain import plan as planning
from provtrack.domain.activities import Activity
from provtrack.domain.catalog import Catalog
from provtrack.domain.model import ServiceOrder
from provtrack.domain.plan import Plan
from provtrack.services.ports import (
    ActivityNotFound,
    Context,
    OrderNotFound,
    PlanNotFound,
    Store,
    Transaction,
)
from provtrack.services.provisioning import change_plan, hand_out, order_of

PlanOperation = Callable[[Plan, ServiceOrder, Activity], list[Activity]]


def retry_activity(
    store: Store, activity_id: str, *, ctx: Context, catalog: Catalog | None = None
) -> dict[str, Any]:
    return _operate(
        store,
        activity_id,
        lambda p, o, a: planning.retry(p, o, a, now=ctx.now, actor=ctx.actor),
        ctx,
        catalog,
    )


def skip_activity(
    store: Store, activity_id: str, *, reason: str, ctx: Context, catalog: Catalog | None = None
) -> dict[str, Any]:
    return _operate(
        store,
        activity_id,
        lambda p, o, a: planning.skip(p, o, a, reason=reason, now=ctx.now, actor=ctx.actor),
        ctx,
        catalog,
    )


def fail_activity(
    store: Store,
    activity_id: str,
    *,
    reason: str | None = None,
    ctx: Context,
    catalog: Catalog | None = None,
) -> dict[str, Any]:
    return _operate(
        store,
        activity_id,
        lambda p, o, a: planning.fail(p, o, a, reason=reason, now=ctx.now, actor=ctx.actor),
        ctx,
        catalog,
    )


def get_plan(store: Store, order_id: str) -> dict[str, Any]:
    with store.transaction(write=False) as tx:
        document = tx.plans.get_json(order_id)
        if document is None:
            if tx.get_order_json(order_id) is None:
                raise OrderNotFound(order_id)
            raise PlanNotFound(order_id)
        return document


def get_activity(store: Store, activity_id: str) -> dict[str, Any]:
    with store.transaction(write=False) as tx:
        activity = tx.plans.get_activity(activity_id)
    if activity is None:
        raise ActivityNotFound(activity_id)
    return activity.to_document()


def _operate(
    store: Store, activity_id: str, action: PlanOperation, ctx: Context, catalog: Catalog | None
) -> dict[str, Any]:
    def change(tx: Transaction, order: ServiceOrder, plan: Plan) -> dict[str, Any]:
        activity = plan.activity(activity_id)
        hand_out(tx, order, plan, action(plan, order, activity), ctx)
        return activity.to_document()

    return change_plan(store, order_of(store, activity_id), change, ctx=ctx, catalog=catalog)
