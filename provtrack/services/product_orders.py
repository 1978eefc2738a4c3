"""Use cases of TMF622: a cancelled customer (product) order cancels the service orders that came
from it (docs/cancellation.md, "When the customer order is cancelled").

Each service order that names the product order gets one cancel task, opened in the change of that
order, with a row that says the product order opened it: an event delivered twice, or late, or a
safety poll after the event, finds the row and opens nothing again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson

from provtrack.domain.cancellation import CancelServiceOrder, validate_cancel_request
from provtrack.domain.catalog import Catalog
from provtrack.domain.clock import parse_datetime
from provtrack.domain.jobs import JobRequest
from provtrack.domain.model import ServiceOrder
from provtrack.domain.plan import Plan
from provtrack.domain.product_orders import (
    REFERENCE_PATHS,
    ProductOrderCancellation,
    ProductOrderSignal,
    product_orders_of,
)
from provtrack.domain.query import Condition, Query, Value
from provtrack.domain.validation import InvalidOrder
from provtrack.services.cancellation import open_cancellation
from provtrack.services.ports import Context, OrderNotFound, Store, Transaction
from provtrack.services.unit_of_work import change_order

CHECK_JOB = "productOrdering.check"  # key: product order id; read it at the product ordering API
SUBSCRIBE_JOB = "productOrdering.subscribe"  # key: "hub"; register our listener with its hub
LISTENER_SOURCE = "tmf622"  # whose listener token the callback we register there carries
REFERRING_LIMIT = 1000  # service orders one product order can cancel at once


@dataclass(frozen=True, slots=True)
class ProductOrderWatch:
    """TMF622 as a feature: with a product ordering API configured, the after-change hook keeps a
    safety poll (CHECK_JOB) of the product orders an open service order names, in case an event is
    lost; it is scheduled when an order's state changes, and ends when no order naming it is open."""

    poll_interval: timedelta | None  # None: no product ordering API, nothing to poll

    def after_change(self, tx: Transaction, order: ServiceOrder, plan: Plan | None, ctx: Context) -> None:
        if self.poll_interval is None or order.is_terminal or order.deleted or not _state_changed(order):
            return
        now = parse_datetime(ctx.now)
        for product_order_id in product_orders_of(order):
            request = JobRequest(CHECK_JOB, product_order_id, now + self.poll_interval)
            tx.schedule_job(request, now=now, replace=False)


def cancel_for_product_order(
    store: Store, cancellation: ProductOrderCancellation, *, ctx: Context, catalog: Catalog | None
) -> list[CancelServiceOrder]:
    """Open a cancel task for every service order that names the product order and has none from it
    yet; returns the tasks opened (none the second time)."""
    opened = []
    for order_id in referring_orders(store, cancellation.product_order_id):
        task = _open_for(store, order_id, cancellation, ctx=ctx, catalog=catalog)
        if task is not None:
            opened.append(task)
    return opened


def receive_event(
    store: Store,
    signal: ProductOrderSignal,
    *,
    confirm: bool,
    ctx: Context,
    catalog: Catalog | None,
) -> str:
    """A TMF622 notification. With `confirm` (a product ordering API is configured) it is only a
    reason to read the product order there (CHECK_JOB, at once); without, its content is acted on.
    Returns what was done: `checking`, `cancelling`, or `ignored` (not a cancellation)."""
    if confirm:
        now = parse_datetime(ctx.now)
        payload = {"cancelProductOrder": signal.cancel_id} if signal.cancel_id else {}
        with store.transaction(write=True) as tx:
            tx.schedule_job(JobRequest(CHECK_JOB, signal.product_order_id, now, payload), now=now)
        return "checking"
    if signal.cancellation is None:
        return "ignored"
    cancel_for_product_order(store, signal.cancellation, ctx=ctx, catalog=catalog)
    return "cancelling"


def referring_orders(store: Store, product_order_id: str) -> list[str]:
    """The service orders that name the product order (domain.product_orders.REFERENCE_PATHS)."""
    found: list[str] = []
    with store.transaction(write=False) as tx:
        for path in REFERENCE_PATHS:
            query = Query(
                conditions=(Condition(path, "eq", (Value("text", product_order_id),)),),
                limit=REFERRING_LIMIT,
            )
            for document in tx.list_orders(query).documents:
                order_id = str(orjson.loads(document)["id"])
                if order_id not in found:
                    found.append(order_id)
    return found


def still_followed(store: Store, product_order_id: str) -> bool:
    """Whether an open service order names the product order (its safety poll goes on)."""
    referring = referring_orders(store, product_order_id)
    with store.transaction(write=False) as tx:
        for order_id in referring:
            order = tx.get_order(order_id)
            if order is not None and not order.is_terminal:
                return True
    return False


def subscribe_to_hub(store: Store, *, ctx: Context) -> None:
    """At start: a job registers our TMF622 listener with the product ordering API's hub."""
    now = parse_datetime(ctx.now)
    with store.transaction(write=True) as tx:
        tx.schedule_job(JobRequest(SUBSCRIBE_JOB, "hub", now), now=now)


def schedule_check(store: Store, product_order_id: str, *, due: datetime, now: datetime) -> None:
    with store.transaction(write=True) as tx:
        tx.schedule_job(JobRequest(CHECK_JOB, product_order_id, due), now=now)


def _open_for(
    store: Store,
    order_id: str,
    cancellation: ProductOrderCancellation,
    *,
    ctx: Context,
    catalog: Catalog | None,
) -> CancelServiceOrder | None:
    body = _cancel_body(order_id, cancellation)

    def change(tx: Transaction, order: ServiceOrder, plan: Plan | None) -> CancelServiceOrder | None:
        if tx.cancellations.product_order_link(cancellation.product_order_id, order.id) is not None:
            return None  # opened already: a repeated or late event
        task = CancelServiceOrder.accept(body, task_id=ctx.new_id(), now=ctx.now, actor=ctx.actor)
        tx.cancellations.link_product_order(cancellation.product_order_id, order.id, task.id, at=ctx.now)
        open_cancellation(tx, order, plan, task, catalog=catalog, ctx=ctx)
        return task

    try:
        return change_order(store, order_id, change, ctx=ctx, changes_plan=True, plan_optional=True)
    except OrderNotFound:
        return None  # deleted meanwhile


def _cancel_body(order_id: str, cancellation: ProductOrderCancellation) -> dict[str, Any]:
    body: dict[str, Any] = {
        "serviceOrder": {"id": order_id, "@referredType": "ServiceOrder"},
        "cancellationReason": cancellation.service_cancellation_reason(),
    }
    if cancellation.requested_date:
        body["requestedCancellationDate"] = cancellation.requested_date
    try:
        return validate_cancel_request(body)
    except InvalidOrder:
        del body["requestedCancellationDate"]  # a date provtrack cannot read: cancel now
        return validate_cancel_request(body)


def _state_changed(order: ServiceOrder) -> bool:
    return any(c.subject == "serviceOrder" and c.attribute == "state" for c in order.changes)
