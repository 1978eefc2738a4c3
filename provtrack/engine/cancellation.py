"""Job handlers of cancellation: start a cancellation at its requested date, stop a downstream order
(TMF652 cancelResourceOrder) and follow what its system does with it.

Each handler is safe to run twice: the use cases re-read the step, and a cancel is never sent twice
blindly: the system is first asked whether it already has one for that order (a send whose outcome
was unknown, a worker that died after sending), and an order the activity never learned of is looked
up by the externalId its POST carried before anything is cancelled.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import structlog

from provtrack.adapters.clock import new_id
from provtrack.adapters.tmf652 import DownstreamRefused, DownstreamUnavailable, ResourceOrderingClient
from provtrack.domain.catalog import Catalog, System
from provtrack.domain.clock import format_datetime
from provtrack.domain.jobs import GiveUp, Job, RetryLater
from provtrack.engine.worker import Handler
from provtrack.services import cancellation, withdrawals
from provtrack.services.ports import Context, Store
from provtrack.services.provisioning import WITHDRAW_JOB
from provtrack.services.withdrawals import CANCEL_REFUSED, WithdrawalRequest

ACTOR = "provtrack-cancellation"
log = structlog.get_logger("provtrack.cancellation")


class CancellationEngine:
    def __init__(self, store: Store, catalog: Catalog | None, client: ResourceOrderingClient) -> None:
        self.store = store
        self.catalog = catalog
        self.client = client

    def handlers(self) -> dict[str, Handler]:
        return {
            cancellation.START_CANCELLATION_JOB: self.start,
            WITHDRAW_JOB: self.withdraw,
            withdrawals.FOLLOW_JOB: self.follow,
        }

    def close(self) -> None:
        self.client.close()

    def _catalog(self) -> Catalog:
        if self.catalog is None:
            raise GiveUp("no catalog is configured: start provtrack with --catalog FILE (or --demo)")
        return self.catalog

    def _system(self, name: str) -> System:
        system = self._catalog().systems.get(name)
        if system is None:
            raise GiveUp(f"system {name!r} is not in the catalog")
        return system

    def start(self, job: Job, now: datetime) -> None:
        cancellation.start_requested_cancellation(self.store, job.key, ctx=_ctx(now), catalog=self.catalog)

    def withdraw(self, job: Job, now: datetime) -> None:
        request = withdrawals.withdrawal_request(self.store, job.key)
        if request is None:
            return
        catalog, system = self._catalog(), self._system(request.system)
        try:
            resource_order_id = request.resource_order_id or self._look_up(request, system, now)
            if resource_order_id is None:
                return
            if not system.cancellable:
                withdrawals.record_waiting(self.store, request, catalog, ctx=_ctx(now))
                return
            task = self._cancel(system, resource_order_id, request.reason)
        except DownstreamUnavailable as exc:
            raise RetryLater(str(exc)) from None
        except DownstreamRefused as exc:
            withdrawals.record_withdrawal_refused(self.store, request, exc.status, exc.body, ctx=_ctx(now))
            return
        withdrawals.record_withdrawal_sent(
            self.store, request, resource_order_id, task, catalog, ctx=_ctx(now)
        )
        log.info("resource order cancellation sent", step=request.step_id, state=task.get("state"))

    def _look_up(self, request: WithdrawalRequest, system: System, now: datetime) -> str | None:
        """The order the stopped activity's POST may have created: recorded if found."""
        found = self.client.find_resource_orders(system.url, request.request_external_id)
        if not found:
            withdrawals.record_nothing_to_withdraw(self.store, request, ctx=_ctx(now))
            return None
        withdrawals.record_found_order(self.store, request, found[0], self._catalog(), ctx=_ctx(now))
        return str(found[0].get("id") or "")

    def _cancel(self, system: System, resource_order_id: str, reason: str) -> dict[str, Any]:
        """The system's cancel task for the order: one it has already (not refused), or a new one."""
        for existing in self.client.find_cancellations(system.url, resource_order_id):
            if existing.get("state") != CANCEL_REFUSED:
                return existing
        return self.client.cancel(system.url, resource_order_id, reason)

    def follow(self, job: Job, now: datetime) -> None:
        target = withdrawals.follow_target(self.store, job.key)
        if target is None:
            return
        catalog, system = self._catalog(), self._system(target.system)
        try:
            if target.cancellation_id is not None:
                task = self.client.get_cancellation(system.url, target.cancellation_id)
                withdrawals.record_cancellation_state(self.store, system.name, task, catalog, ctx=_ctx(now))
            if target.resource_order_id is not None:
                order = self.client.get(system.url, target.resource_order_id)
                withdrawals.record_withdrawn_order(self.store, job.key, order, catalog, ctx=_ctx(now))
        except (DownstreamUnavailable, DownstreamRefused) as exc:
            raise RetryLater(str(exc)) from None


def _ctx(now: datetime) -> Context:
    return Context(now=format_datetime(now), actor=ACTOR, new_id=new_id)
