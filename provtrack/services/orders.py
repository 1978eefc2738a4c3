"""Use cases on service orders: each function is one transaction with one commit."""

from __future__ import annotations

from typing import Any

from provtrack.domain.clock import parse_datetime
from provtrack.domain.jobs import JobRequest
from provtrack.domain.model import ServiceOrder
from provtrack.domain.patching import apply_json_patch, apply_update, merge_patch
from provtrack.domain.plan import Plan
from provtrack.domain.query import Query
from provtrack.domain.validation import validate_new_order
from provtrack.services.ports import Context, OrderNotFound, Page, Store, TaskNotFound, Transaction
from provtrack.services.unit_of_work import change_order

PLAN_ORDER_JOB = "provisioning.plan"  # the engine checks a new order against the catalog and plans it


class NoCatalog(Exception):
    """This process has no provisioning catalog: an order accepted now could never be planned."""

    def __init__(self) -> None:
        super().__init__(
            "provtrack has no provisioning catalog, so it cannot plan orders and accepts none: "
            "start it with --catalog FILE (or --demo); orders will be taken as soon as it has one"
        )


def create_order(store: Store, body: Any, *, ctx: Context, catalog_configured: bool = True) -> ServiceOrder:
    """Accept an order and schedule its planning; refused (NoCatalog) where no catalog could plan it."""
    if not catalog_configured:
        raise NoCatalog()
    checked = validate_new_order(body)
    order = ServiceOrder.accept(checked, order_id=ctx.new_id(), now=ctx.now, actor=ctx.actor)
    with store.transaction(write=True) as tx:
        tx.add_order(order)
        now = parse_datetime(ctx.now)
        tx.schedule_job(JobRequest(PLAN_ORDER_JOB, order.id, now), now=now)
    return order


def get_order_json(store: Store, order_id: str) -> str:
    """The order's document, from the hot table or, finished long ago, the archive."""
    with store.transaction(write=False) as tx:
        document = tx.get_order_json(order_id)
        if document is None:
            document = tx.archive.get_order_json(order_id)
    if document is None:
        raise OrderNotFound(order_id)
    return document


def list_orders(store: Store, query: Query) -> Page:
    with store.transaction(write=False) as tx:
        return tx.list_orders(query)


def patch_order(store: Store, order_id: str, patch: Any, *, json_patch: bool, ctx: Context) -> ServiceOrder:
    def change(_tx: Transaction, order: ServiceOrder, _plan: Plan | None) -> ServiceOrder:
        document = order.to_document()
        after = apply_json_patch(document, patch) if json_patch else merge_patch(document, patch)
        apply_update(order, after, now=ctx.now, actor=ctx.actor)
        return order

    return change_order(store, order_id, change, ctx=ctx)


def delete_order(store: Store, order_id: str, *, ctx: Context) -> None:
    def change(_tx: Transaction, order: ServiceOrder, _plan: Plan | None) -> None:
        order.record_deletion(now=ctx.now, actor=ctx.actor)

    change_order(store, order_id, change, ctx=ctx)


def get_task_json(store: Store, task_id: str) -> str:
    with store.transaction(write=False) as tx:
        document = tx.get_task_json(task_id)
    if document is None:
        raise TaskNotFound(task_id)
    return document


def list_tasks(store: Store, query: Query) -> Page:
    with store.transaction(write=False) as tx:
        return tx.list_tasks(query)
