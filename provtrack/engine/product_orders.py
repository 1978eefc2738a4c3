"""Job handlers of TMF622: read a product order (and its cancel task) at the product ordering API and
cancel the service orders that came from it; register our listener with its hub.

A notification only makes provtrack look (`productOrdering.check`, at once): what the product
ordering API answers decides. The same job is the safety poll of the product orders open service
orders name, in case a notification is lost.
"""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta

import structlog

from provtrack.adapters.clock import new_id
from provtrack.adapters.tmf622 import ProductOrderingClient
from provtrack.adapters.tmf652 import DownstreamRefused, DownstreamUnavailable
from provtrack.domain.catalog import Catalog
from provtrack.domain.clock import format_datetime
from provtrack.domain.jobs import GiveUp, Job, RetryLater
from provtrack.domain.product_orders import (
    ProductOrderCancellation,
    cancellation_in_order,
    cancellation_in_task,
)
from provtrack.engine.worker import Handler
from provtrack.services import access, product_orders
from provtrack.services.ports import Context, Store

ACTOR = "provtrack-tmf622"
log = structlog.get_logger("provtrack.tmf622")


class ProductOrderingEngine:
    def __init__(
        self,
        store: Store,
        catalog: Catalog | None,
        client: ProductOrderingClient,
        *,
        url: str | None,
        listener_base_url: str | None,
        poll_interval: timedelta,
    ) -> None:
        self.store = store
        self.catalog = catalog
        self.client = client
        self.url = url.rstrip("/") if url else None
        self.listener_base_url = listener_base_url.rstrip("/") if listener_base_url else None
        self.poll_interval = poll_interval

    def handlers(self) -> dict[str, Handler]:
        return {product_orders.CHECK_JOB: self.check, product_orders.SUBSCRIBE_JOB: self.subscribe}

    def close(self) -> None:
        self.client.close()

    def check(self, job: Job, now: datetime) -> None:
        if self.url is None:
            return
        try:
            cancellation = self._read(job.key, job.payload.get("cancelProductOrder"))
        except DownstreamUnavailable as exc:
            raise RetryLater(str(exc)) from None
        except DownstreamRefused as exc:
            raise GiveUp(
                f"product order {job.key}: the product ordering API answered HTTP {exc.status}"
            ) from None
        ctx = Context(now=format_datetime(now), actor=ACTOR, new_id=new_id)
        if cancellation is not None:
            opened = product_orders.cancel_for_product_order(
                self.store, cancellation, ctx=ctx, catalog=self.catalog
            )
            log.info("product order cancelled", product_order=job.key, cancel_tasks=[t.id for t in opened])
        elif product_orders.still_followed(self.store, job.key):
            product_orders.schedule_check(self.store, job.key, due=now + self.poll_interval, now=now)

    def _read(self, product_order_id: str, cancel_id: object) -> ProductOrderCancellation | None:
        """The cancellation the product ordering API shows: a cancel task's (the one an event named,
        else those of the product order: they carry the reason and the requested date), else the
        order's own state."""
        assert self.url is not None
        tasks = (
            [self.client.get_cancellation(self.url, cancel_id)]
            if isinstance(cancel_id, str) and cancel_id
            else []
        )
        # An API that does not filter its cancel tasks: the product order's own state decides.
        with contextlib.suppress(DownstreamRefused):
            tasks += reversed(self.client.find_cancellations(self.url, product_order_id))  # newest first
        for task in tasks:
            found = cancellation_in_task(task)
            if found is not None and found.product_order_id == product_order_id:
                return found
        return cancellation_in_order(self.client.get_product_order(self.url, product_order_id))

    def subscribe(self, job: Job, now: datetime) -> None:
        if self.url is None or self.listener_base_url is None:
            return
        # The callback carries a token: only who has it can notify us.
        token = access.listener_token(self.store, product_orders.LISTENER_SOURCE, now=now)
        callback = f"{self.listener_base_url}/provtrack/v1/tmf622/{token}"
        try:
            self.client.subscribe(self.url, callback)
        except DownstreamUnavailable as exc:
            raise RetryLater(str(exc)) from None
        except DownstreamRefused as exc:
            raise GiveUp(
                f"the product ordering API refused the hub subscription: HTTP {exc.status}"
            ) from None
        log.info("subscribed to product order notifications", callback=callback)
