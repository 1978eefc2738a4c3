"""Job handlers of cancellation: start a cancellation at its requested date, stop a downstream order
(TMF652 cancelResourceOrder at a system, TMF641 cancelServiceOrder at a partner) and follow what its
owner does with it.

Each handler is safe to run twice: the use cases re-read the step, and a cancel is never sent twice
blindly: the owner is first asked whether it already has one for that order (a send whose outcome
was unknown, a worker that died after sending), and an order the activity never learned of is looked
up by the externalId its POST carried before anything is cancelled.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import structlog

from provtrack.adapters.clock import new_id
from provtrack.adapters.tmf641_partner import PartnerOrderingClient
from provtrack.adapters.tmf652 import DownstreamRefused, DownstreamUnavailable, ResourceOrderingClient
from provtrack.domain.catalog import ActivityKind, Catalog, System
from provtrack.domain.clock import format_datetime
from provtrack.domain.jobs import GiveUp, Job, RetryLater
from provtrack.domain.partners import Partner
from provtrack.engine.worker import Handler
from provtrack.services import cancellation, withdrawals
from provtrack.services.ports import Context, Store
from provtrack.services.provisioning import WITHDRAW_JOB
from provtrack.services.withdrawals import CANCEL_REFUSED, WithdrawalRequest

ACTOR = "provtrack-cancellation"
log = structlog.get_logger("provtrack.cancellation")


class Desk(Protocol):
    """Where a withdrawal is sent: one system's TMF652 API, or one partner's TMF641 API."""

    @property
    def name(self) -> str: ...
    @property
    def cancellable(self) -> bool:
        """False: the owner cannot cancel an order under way (the withdrawal waits for its end)."""
        ...

    def find_orders(self, external_id: str) -> list[dict[str, Any]]: ...
    def get_order(self, order_id: str) -> dict[str, Any]: ...
    def find_cancellations(self, order_id: str) -> list[dict[str, Any]]: ...
    def cancel(self, order_id: str, reason: str) -> dict[str, Any]: ...
    def get_cancellation(self, cancellation_id: str) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class SystemDesk:
    """TMF652 cancelResourceOrder at a system."""

    client: ResourceOrderingClient
    system: System

    @property
    def name(self) -> str:
        return self.system.name

    @property
    def cancellable(self) -> bool:
        return self.system.cancellable

    def find_orders(self, external_id: str) -> list[dict[str, Any]]:
        return self.client.find_resource_orders(self.system.url, external_id)

    def get_order(self, order_id: str) -> dict[str, Any]:
        return self.client.get(self.system.url, order_id)

    def find_cancellations(self, order_id: str) -> list[dict[str, Any]]:
        return self.client.find_cancellations(self.system.url, order_id)

    def cancel(self, order_id: str, reason: str) -> dict[str, Any]:
        return self.client.cancel(self.system.url, order_id, reason)

    def get_cancellation(self, cancellation_id: str) -> dict[str, Any]:
        return self.client.get_cancellation(self.system.url, cancellation_id)


@dataclass(frozen=True, slots=True)
class PartnerDesk:
    """TMF641 cancelServiceOrder at a partner: every partner order can be asked to stop."""

    client: PartnerOrderingClient
    partner: Partner
    cancellable: bool = True

    @property
    def name(self) -> str:
        return self.partner.name

    def find_orders(self, external_id: str) -> list[dict[str, Any]]:
        found = self.client.find(self.partner, external_id)
        return [] if found is None else [found]

    def get_order(self, order_id: str) -> dict[str, Any]:
        return self.client.get(self.partner, order_id)

    def find_cancellations(self, order_id: str) -> list[dict[str, Any]]:
        return self.client.find_cancellations(self.partner, order_id)

    def cancel(self, order_id: str, reason: str) -> dict[str, Any]:
        return self.client.cancel(self.partner, order_id, reason)

    def get_cancellation(self, cancellation_id: str) -> dict[str, Any]:
        return self.client.get_cancellation(self.partner, cancellation_id)


class CancellationEngine:
    def __init__(
        self,
        store: Store,
        catalog: Catalog | None,
        client: ResourceOrderingClient,
        partner_client: PartnerOrderingClient | None = None,
    ) -> None:
        self.store = store
        self.catalog = catalog
        self.client = client
        self.partner_client = partner_client or PartnerOrderingClient()

    def handlers(self) -> dict[str, Handler]:
        return {
            cancellation.START_CANCELLATION_JOB: self.start,
            WITHDRAW_JOB: self.withdraw,
            withdrawals.FOLLOW_JOB: self.follow,
        }

    def close(self) -> None:
        self.client.close()
        self.partner_client.close()

    def _catalog(self) -> Catalog:
        if self.catalog is None:
            raise GiveUp("no catalog is configured: start provtrack with --catalog FILE (or --demo)")
        return self.catalog

    def _desk(self, kind: ActivityKind, owner: str) -> Desk:
        """The desk of the activity's owner: its partner for a partner order, else its system."""
        catalog = self._catalog()
        if kind is ActivityKind.PARTNER_ORDER:
            partner = catalog.partners.get(owner)
            if partner is None:
                raise GiveUp(f"partner {owner!r} is not in the catalog")
            return PartnerDesk(self.partner_client, partner)
        system = catalog.systems.get(owner)
        if system is None:
            raise GiveUp(f"system {owner!r} is not in the catalog")
        return SystemDesk(self.client, system)

    def start(self, job: Job, now: datetime) -> None:
        cancellation.start_requested_cancellation(self.store, job.key, ctx=_ctx(now), catalog=self.catalog)

    def withdraw(self, job: Job, now: datetime) -> None:
        request = withdrawals.withdrawal_request(self.store, job.key)
        if request is None:
            return
        catalog, desk = self._catalog(), self._desk(request.kind, request.owner)
        try:
            order_id = request.resource_order_id or self._look_up(request, desk, now)
            if order_id is None:
                return
            if not desk.cancellable:
                withdrawals.record_waiting(self.store, request, catalog, ctx=_ctx(now))
                return
            task = self._cancel(desk, order_id, request.reason)
        except DownstreamUnavailable as exc:
            raise RetryLater(str(exc)) from None
        except DownstreamRefused as exc:
            withdrawals.record_withdrawal_refused(self.store, request, exc.status, exc.body, ctx=_ctx(now))
            return
        withdrawals.record_withdrawal_sent(self.store, request, order_id, task, catalog, ctx=_ctx(now))
        log.info("cancellation sent", step=request.step_id, owner=desk.name, state=task.get("state"))

    def _look_up(self, request: WithdrawalRequest, desk: Desk, now: datetime) -> str | None:
        """The order the stopped activity's POST may have created: recorded if found."""
        found = desk.find_orders(request.request_external_id)
        if not found:
            withdrawals.record_nothing_to_withdraw(self.store, request, ctx=_ctx(now))
            return None
        withdrawals.record_found_order(self.store, request, found[0], self._catalog(), ctx=_ctx(now))
        return str(found[0].get("id") or "")

    @staticmethod
    def _cancel(desk: Desk, order_id: str, reason: str) -> dict[str, Any]:
        """The owner's cancel task for the order: one it has already (not refused), or a new one."""
        for existing in desk.find_cancellations(order_id):
            if existing.get("state") != CANCEL_REFUSED:
                return existing
        return desk.cancel(order_id, reason)

    def follow(self, job: Job, now: datetime) -> None:
        target = withdrawals.follow_target(self.store, job.key)
        if target is None:
            return
        catalog, desk = self._catalog(), self._desk(target.kind, target.owner)
        try:
            if target.cancellation_id is not None:
                task = desk.get_cancellation(target.cancellation_id)
                withdrawals.record_cancellation_state(self.store, desk.name, task, catalog, ctx=_ctx(now))
            if target.resource_order_id is not None:
                order = desk.get_order(target.resource_order_id)
                withdrawals.record_withdrawn_order(self.store, job.key, order, catalog, ctx=_ctx(now))
        except (DownstreamUnavailable, DownstreamRefused) as exc:
            raise RetryLater(str(exc)) from None


def _ctx(now: datetime) -> Context:
    return Context(now=format_datetime(now), actor=ACTOR, new_id=new_id)
