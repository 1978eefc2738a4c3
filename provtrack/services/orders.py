"""Use cases on service orders: each function is one transaction with one commit."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from provtrack.domain.cancellation import (
    CancelServiceOrder,
    request_cancellation,
    validate_cancel_request,
)
from provtrack.domain.clock import parse_datetime
from provtrack.domain.jobs import JobRequest
from provtrack.domain.model import ServiceOrder
from provtrack.domain.patching import apply_json_patch, apply_update, merge_patch
from provtrack.domain.query import Query
from provtrack.domain.validation import validate_new_order
from provtrack.services.ports import ConcurrentUpdate, Page, Store

PLAN_ORDER_JOB = "provisioning.plan"  # the engine checks a new order against the catalog and plans it
SAVE_ATTEMPTS = 3  # optimistic concurrency: reload and reapply when another writer got there first


class OrderNotFound(LookupError):
    """No service order with that id."""

    def __init__(self, order_id: str) -> None:
        self.order_id = order_id
        super().__init__(f"no service order with id {order_id!r}")


class TaskNotFound(LookupError):
    """No cancel task with that id."""

    def __init__(self, task_id: str) -> None:
        super().__init__(f"no cancelServiceOrder with id {task_id!r}")


@dataclass(frozen=True, slots=True)
class Context:
    """Who acts, and when: entrypoints read the clock and pass it down."""

    now: str
    actor: str
    new_id: Callable[[], str]


def create_order(store: Store, body: Any, *, ctx: Context) -> ServiceOrder:
    checked = validate_new_order(body)
    order = ServiceOrder.accept(checked, order_id=ctx.new_id(), now=ctx.now, actor=ctx.actor)
    with store.transaction(write=True) as tx:
        tx.add_order(order)
        now = parse_datetime(ctx.now)
        tx.schedule_job(JobRequest(PLAN_ORDER_JOB, order.id, now), now=now)
    return order


def get_order_json(store: Store, order_id: str) -> str:
    with store.transaction(write=False) as tx:
        document = tx.get_order_json(order_id)
    if document is None:
        raise OrderNotFound(order_id)
    return document


def list_orders(store: Store, query: Query) -> Page:
    with store.transaction(write=False) as tx:
        return tx.list_orders(query)


def patch_order(store: Store, order_id: str, patch: Any, *, json_patch: bool, ctx: Context) -> ServiceOrder:
    for attempt in range(SAVE_ATTEMPTS):
        try:
            with store.transaction(write=True) as tx:
                order = tx.get_order(order_id)
                if order is None:
                    raise OrderNotFound(order_id)
                document = order.to_document()
                after = apply_json_patch(document, patch) if json_patch else merge_patch(document, patch)
                apply_update(order, after, now=ctx.now, actor=ctx.actor)
                if order.changes:
                    from provtrack.services import jeopardy  # jeopardy builds on these use cases

                    jeopardy.after_order_change(store, tx, order, ctx)
                tx.save_order(order)
                return order
        except ConcurrentUpdate:
            # The whole attempt rolled back (jobs and rows it wrote included): reload and reapply.
            if attempt == SAVE_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def delete_order(store: Store, order_id: str, *, ctx: Context) -> None:
    with store.transaction(write=True) as tx:
        order = tx.get_order(order_id)
        if order is None:
            raise OrderNotFound(order_id)
        order.record_deletion(now=ctx.now, actor=ctx.actor)
        tx.delete_order(order_id, at=ctx.now)
        tx.record_changes(order_id, order.changes)
        tx.record_events(order)


def request_order_cancellation(store: Store, body: Any, *, ctx: Context) -> CancelServiceOrder:
    checked = validate_cancel_request(body)
    task = CancelServiceOrder.accept(checked, task_id=ctx.new_id(), now=ctx.now, actor=ctx.actor)
    with store.transaction(write=True) as tx:
        order = tx.get_order(task.service_order_id)
        if order is None:
            raise OrderNotFound(task.service_order_id)
        request_cancellation(order, task, now=ctx.now, actor=ctx.actor)
        if order.changes:
            tx.save_order(order)
        tx.add_task(task, created_at=ctx.now)
    return task


def get_task_json(store: Store, task_id: str) -> str:
    with store.transaction(write=False) as tx:
        document = tx.get_task_json(task_id)
    if document is None:
        raise TaskNotFound(task_id)
    return document


def list_tasks(store: Store, query: Query) -> Page:
    with store.transaction(write=False) as tx:
        return tx.list_tasks(query)
