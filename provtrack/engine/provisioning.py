"""Job handlers of the provisioning engine: plan, start, dispatch resource orders, poll, subscribe.

Each handler is safe to run twice: the use cases re-read the state, and a re-sent resource order
carries the same externalId, which the downstream system recognises (docs/engine.md).

A handler that starts activities sends their resource orders itself, at once: their dispatch jobs
are committed already held by this engine (`Lease`), so no other worker takes them unless this one
dies first (then the lease expires), and none waits for a claim. A plan whose systems answer at
once runs from start to end in the job that planned it.
"""

from __future__ import annotations

import traceback
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import structlog

from provtrack.adapters import tracing
from provtrack.adapters.clock import new_id
from provtrack.adapters.tmf638 import ServiceInventoryClient
from provtrack.adapters.tmf652 import (
    DownstreamRefused,
    DownstreamUnavailable,
    OutcomeUnknown,
    ResourceOrderingClient,
)
from provtrack.domain.catalog import ActivityKind, Catalog, System
from provtrack.domain.clock import format_datetime
from provtrack.domain.jobs import GiveUp, Job, Lease, RetryLater, backoff
from provtrack.engine.worker import Handler
from provtrack.services import access, hub_subscriptions, provisioning
from provtrack.services.inventory import inventory_update, record_inventory
from provtrack.services.ports import Context, DownstreamSubscription, Store
from provtrack.services.provisioning import DispatchRequest

ACTOR = "provtrack-engine"
log = structlog.get_logger("provtrack.engine")


class ProvisioningEngine:
    def __init__(
        self,
        store: Store,
        catalog: Catalog | None,
        client: ResourceOrderingClient,
        *,
        listener_base_url: str | None = None,
        inventory_client: ServiceInventoryClient | None = None,
        lease: timedelta = timedelta(seconds=60),
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.store = store
        self.catalog = catalog
        self.client = client
        self.listener_base_url = listener_base_url.rstrip("/") if listener_base_url else None
        self.inventory = inventory_client or ServiceInventoryClient()
        self.owner = f"provtrack-engine-{uuid.uuid4().hex[:8]}"  # holds the dispatches it sends itself
        self.lease = lease
        # The time of each step after the first of a handler run; None: the run's time (tests).
        self.clock = clock

    def handlers(self) -> dict[str, Handler]:
        return {
            provisioning.PLAN_JOB: self.plan,
            provisioning.START_JOB: self.start,
            provisioning.DISPATCH_JOB: self.dispatch,
            provisioning.POLL_JOB: self.poll,
            provisioning.SUBSCRIBE_JOB: self.subscribe,
            provisioning.UNSUBSCRIBE_JOB: self.unsubscribe,
            provisioning.INVENTORY_JOB: self.update_inventory,
        }

    def close(self) -> None:
        self.client.close()
        self.inventory.close()

    def _catalog(self) -> Catalog:
        if self.catalog is None:
            raise GiveUp("no catalog is configured: start provtrack with --catalog FILE (or --demo)")
        return self.catalog

    def plan(self, job: Job, now: datetime) -> None:
        with tracing.for_order(job.key):
            planned = provisioning.plan_order(
                self.store, job.key, self._catalog(), ctx=_ctx(now), lease=self._lease(now)
            )
            log.debug("order planned", outcome=planned.outcome)
        self._send_now(planned.dispatch_now, now)

    def start(self, job: Job, now: datetime) -> None:
        with tracing.for_order(job.key):
            provisioning.start_order(self.store, job.key, ctx=_ctx(now), catalog=self.catalog)

    def dispatch(self, job: Job, now: datetime) -> None:
        request = provisioning.dispatch_request(self.store, job.key, job.payload)
        if request is not None:
            # An earlier run failed, or its holder died: its POST may have reached the system.
            unknown = job.attempts > 0 or job.taken_over
            with tracing.for_order(request.order_id):
                started = self._send(request, now, look_up_first=unknown)
            self._send_now(started, now)

    def _send_now(self, requests: list[DispatchRequest], now: datetime) -> None:
        """Send the resource orders whose dispatch jobs this engine holds, and those they start in
        turn. Each is checked first (an operator may have acted since it was handed out); one that
        is no longer to be sent, or would be sent late in its lease, is left to the workers; one
        that fails goes back to them with the job's backoff."""
        pending = [(request, now) for request in requests]
        while pending:
            request, held_since = pending.pop(0)
            if self.clock is not None:
                now = self.clock()
            if now - held_since > self.lease / 2 or not provisioning.still_to_send(self.store, request):
                provisioning.release_dispatch(self.store, request.activity_id, owner=self.owner)
                continue
            try:
                with tracing.for_order(request.order_id):
                    pending += [(started, now) for started in self._send(request, now)]
            except RetryLater as exc:  # as the worker does with a job that fails (worker.py)
                self._release(request, now + (exc.delay or backoff(0)), str(exc))
            except GiveUp as exc:
                self._release(request, now, str(exc), failed=now)
            except Exception as exc:
                log.exception("dispatch failed; the workers will retry it", activity=request.activity_id)
                self._release(
                    request, now + backoff(0), "".join(traceback.format_exception_only(exc)).strip()
                )

    def _release(
        self, request: DispatchRequest, due_at: datetime, error: str, *, failed: datetime | None = None
    ) -> None:
        provisioning.release_dispatch(
            self.store, request.activity_id, owner=self.owner, due_at=due_at, error=error, failed=failed
        )

    def _send(
        self, request: DispatchRequest, now: datetime, *, look_up_first: bool = False
    ) -> list[DispatchRequest]:
        """POST one resource order and record the answer; returns the dispatches it started."""
        catalog = self._catalog()
        system = catalog.systems.get(request.system)
        if system is None:
            raise GiveUp(f"activity {request.activity_id}: system {request.system!r} is not in the catalog")
        try:
            resource_order = self._create_once(system, request, look_up_first=look_up_first)
        except DownstreamUnavailable as exc:
            raise RetryLater(str(exc)) from None
        except DownstreamRefused as exc:
            provisioning.record_refusal(
                self.store,
                request.activity_id,
                request.attempt,
                exc.status,
                exc.body,
                ctx=_ctx(now),
                order_id=request.order_id,
            )
            return []
        return provisioning.record_resource_order(
            self.store,
            request.activity_id,
            request.attempt,
            resource_order,
            catalog,
            ctx=_ctx(now),
            order_id=request.order_id,
            lease=self._lease(now),
        )

    def _create_once(
        self, system: System, request: DispatchRequest, *, look_up_first: bool
    ) -> dict[str, Any]:
        """The resource order of this attempt at the system: the one there already, when a POST
        whose outcome is unknown may have created it, else a new one. A POST that gets no answer
        raises, and the job's next run looks first; one that met a connection the system had closed
        (most likely unread) is looked up and sent again at once. A system that cannot be searched
        (`searchable: false`) must drop a repeated externalId itself (docs/engine.md)."""
        if look_up_first and system.searchable:
            found = self.client.find(system.url, request.external_id)
            if found is not None:
                log.info(
                    "resource order found, not sent again", activity=request.activity_id, id=found.get("id")
                )
                return found
        try:
            return self.client.create(system.url, request.body)
        except OutcomeUnknown as exc:
            if not (exc.stale and system.searchable):
                raise
        found = self.client.find(system.url, request.external_id)
        return found if found is not None else self.client.create(system.url, request.body)

    def _lease(self, now: datetime) -> Lease:
        return Lease(self.owner, now + self.lease)

    def poll(self, job: Job, now: datetime) -> None:
        catalog = self._catalog()
        target = provisioning.poll_target(self.store, job.key)
        if target is None:
            return
        system_name, resource_order_id = target
        system = catalog.systems.get(system_name)
        if system is None:
            raise GiveUp(f"activity {job.key}: system {system_name!r} is not in the catalog")
        try:
            resource_order = self.client.get(system.url, resource_order_id)
        except (DownstreamUnavailable, DownstreamRefused) as exc:
            raise RetryLater(str(exc)) from None
        provisioning.record_notification(self.store, system_name, resource_order, catalog, ctx=_ctx(now))

    def update_inventory(self, job: Job, now: datetime) -> None:
        """TMF638: a completed item creates, updates or terminates its service in the inventory."""
        inventory_url = self._catalog().inventory_url
        order_id, _, item_id = job.key.rpartition("/")
        with tracing.for_order(order_id):
            self._update_inventory(order_id, item_id, inventory_url, job, now)

    def _update_inventory(
        self, order_id: str, item_id: str, inventory_url: str | None, job: Job, now: datetime
    ) -> None:
        update = inventory_update(self.store, order_id, item_id)
        if update is None or inventory_url is None:
            return
        try:
            if update.operation == "create":
                # An earlier run may have created it (a POST without an answer, a holder that died).
                unknown = job.attempts > 0 or job.taken_over
                found = self.inventory.find_service(inventory_url, order_id, item_id) if unknown else None
                service = found or self.inventory.create_service(inventory_url, update.body)
            else:
                assert update.service_id is not None
                service = self.inventory.update_service(inventory_url, update.service_id, update.body)
        except DownstreamUnavailable as exc:
            raise RetryLater(str(exc)) from None
        except DownstreamRefused as exc:
            raise GiveUp(f"the inventory refused item {item_id}: HTTP {exc.status} {exc.body}") from None
        record_inventory(self.store, order_id, item_id, service, ctx=_ctx(now))

    def subscribe(self, job: Job, now: datetime) -> None:
        """Our subscription at the system's hub: the one we have, if the system still has it and it
        still points at us; else a new one (the old one ended first). One per system, however often
        provtrack restarts."""
        system = self._catalog().systems.get(job.key)
        if system is None or self.listener_base_url is None:
            return
        # The callback carries the system's listener token: only who has it can notify us.
        token = access.listener_token(self.store, f"tmf652:{system.name}", now=now)
        callback = f"{self.listener_base_url}/provtrack/v1/tmf652/{system.name}/{token}"
        known = hub_subscriptions.downstream_subscription(self.store, system.name)
        try:
            if known is not None and (known.callback, known.base_url) == (callback, system.url):
                if self.client.subscription_exists(system.url, known.hub_id):
                    log.info("hub subscription in place", system=system.name, hub=known.hub_id)
                    return
            elif known is not None:
                self.client.unsubscribe(known.base_url, known.hub_id)
            answer = self.client.subscribe(system.url, callback)
        except DownstreamUnavailable as exc:
            raise RetryLater(str(exc)) from None
        except DownstreamRefused as exc:
            raise GiveUp(
                f"{system.name} refused the hub subscription: HTTP {exc.status} {exc.body}"
            ) from None
        hub_id = str(answer.get("id") or "")
        if hub_id:
            subscription = DownstreamSubscription(system.name, hub_id, callback, system.url)
            read_again = hub_subscriptions.record_subscription(
                self.store,
                subscription,
                owner=system.name,
                kind=ActivityKind.RESOURCE_ORDER,
                poll_job=provisioning.POLL_JOB,
                now=self.clock() if self.clock is not None else now,  # after the hub answered
            )
            log.info(
                "subscribed to resource order notifications",
                system=system.name,
                callback=callback,
                hub=hub_id,
                read_again=read_again,
            )

    def unsubscribe(self, job: Job, now: datetime) -> None:
        """The system left the catalog, or no longer notifies us by its hub: end our subscription."""
        known = hub_subscriptions.downstream_subscription(self.store, job.key)
        if known is None:
            return
        try:
            self.client.unsubscribe(known.base_url, known.hub_id)
        except DownstreamUnavailable as exc:
            raise RetryLater(str(exc)) from None
        except DownstreamRefused as exc:
            log.warning("hub subscription not ended", system=job.key, status=exc.status)
        hub_subscriptions.forget_subscription(self.store, job.key)
        log.info("hub subscription ended", system=job.key, hub=known.hub_id)


def _ctx(now: datetime) -> Context:
    return Context(now=format_datetime(now), actor=ACTOR, new_id=new_id)
