"""Use cases on service orders: each function is one transaction with one commit."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from provtrack.domain.clock import parse_datetime
from provtrack.domain.jobs import JobRequest
from provtrack.domain.limits import DEFAULT_LIMITS, Limits
from provtrack.domain.model import ServiceOrder
from provtrack.domain.patching import apply_json_patch, apply_update, merge_patch
from provtrack.domain.plan import Plan
from provtrack.domain.query import Query
from provtrack.domain.validation import validate_new_order
from provtrack.services.ports import (
    Context,
    Guard,
    OrderEntry,
    OrderNotFound,
    Page,
    Store,
    TaskNotFound,
    Then,
    Transaction,
)
from provtrack.services.unit_of_work import change_order

PLAN_ORDER_JOB = "provisioning.plan"  # the engine checks a new order against the catalog and plans it


class NoCatalog(Exception):
    """This process has no provisioning catalog: an order accepted now could never be planned."""

    def __init__(self) -> None:
        super().__init__(
            "provtrack has no provisioning catalog, so it cannot plan orders and accepts none: "
            "start it with --catalog FILE (or --demo); orders will be taken as soon as it has one"
        )


def create_order(
    store: Store,
    body: Any,
    *,
    ctx: Context,
    catalog_configured: bool = True,
    client: str | None = None,
    then: Then[ServiceOrder] | None = None,
) -> ServiceOrder:
    """Accept an order placed by `client` and schedule its planning; refused (NoCatalog) where no
    catalog could plan it. `then` runs in the same transaction (the Idempotency-Key's answer)."""
    if not catalog_configured:
        raise NoCatalog()
    checked = validate_new_order(body)
    order = ServiceOrder.accept(checked, order_id=ctx.new_id(), now=ctx.now, actor=ctx.actor, client=client)
    with store.transaction(write=True) as tx:
        tx.add_order(order)
        now = parse_datetime(ctx.now)
        tx.schedule_job(JobRequest(PLAN_ORDER_JOB, order.id, now), now=now)
        if then is not None:
            then(tx, order)
    return order


def get_order_entry(store: Store, order_id: str) -> OrderEntry:
    """The order as stored, with its version and owner (OrderNotFound)."""
    with store.transaction(write=False) as tx:
        entry = tx.get_order_entry(order_id)
        if entry is None:
            entry = tx.archive.get_order_entry(order_id)
    if entry is None:
        raise OrderNotFound(order_id)
    return entry


def get_order_json(store: Store, order_id: str) -> str:
    """The order's document, from the hot table or, finished long ago, the archive."""
    with store.transaction(write=False) as tx:
        document = tx.get_order_json(order_id)
        if document is None:
            document = tx.archive.get_order_json(order_id)
    if document is None:
        raise OrderNotFound(order_id)
    return document


def list_orders(store: Store, query: Query, *, client: str | None = None) -> Page:
    """A page of orders; with `client`, of that client's only."""
    with store.transaction(write=False) as tx:
        return tx.list_orders(query, client=client)


def patch_order(
    store: Store,
    order_id: str,
    patch: Any,
    *,
    json_patch: bool,
    ctx: Context,
    limits: Limits = DEFAULT_LIMITS,
    check: Callable[[dict[str, Any]], None] | None = None,
    guard: Guard | None = None,
) -> ServiceOrder:
    """A merge patch or a JSON patch; either way the attributes it changes are checked as they come
    out of it (`check`: the API's schema of ServiceOrder_Update, then the TMF641 rules). `guard`
    sees the order first, in the transaction (who may change it, If-Match)."""

    def change(_tx: Transaction, order: ServiceOrder, _plan: Plan | None) -> ServiceOrder:
        if guard is not None:
            guard(order)
        document = order.to_document()
        after = apply_json_patch(document, patch, limits) if json_patch else merge_patch(document, patch)
        if check is not None:
            check({k: v for k, v in after.items() if v is not None and document.get(k) != v})
        apply_update(order, after, now=ctx.now, actor=ctx.actor, limits=limits)
        return order

    return change_order(store, order_id, change, ctx=ctx)


def delete_order(store: Store, order_id: str, *, ctx: Context, guard: Guard | None = None) -> None:
    def change(_tx: Transaction, order: ServiceOrder, _plan: Plan | None) -> None:
        if guard is not None:
            guard(order)
        order.record_deletion(now=ctx.now, actor=ctx.actor)

    change_order(store, order_id, change, ctx=ctx)


def get_task_json(store: Store, task_id: str) -> str:
    with store.transaction(write=False) as tx:
        document = tx.get_task_json(task_id)
    if document is None:
        raise TaskNotFound(task_id)
    return document


def list_tasks(store: Store, query: Query, *, client: str | None = None) -> Page:
    with store.transaction(write=False) as tx:
        return tx.list_tasks(query, client=client)
