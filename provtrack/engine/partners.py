"""Job handlers of partner orders: send (looked up first), read, subscribe (docs/coordination.md).

Each handler is safe to run twice. A send looks the order up at the partner by its externalId
before it POSTs, so a send whose outcome is unknown (a timeout, a worker killed mid-request, a
lease that expired) is never repeated into a second order at the partner.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import structlog

from provtrack.adapters.clock import new_id
from provtrack.adapters.tmf641_partner import PartnerOrderingClient
from provtrack.adapters.tmf652 import DownstreamRefused, DownstreamUnavailable
from provtrack.domain.catalog import ActivityKind, Catalog
from provtrack.domain.clock import format_datetime
from provtrack.domain.jobs import GiveUp, Job, RetryLater
from provtrack.domain.partners import DISPATCH_JOB, POLL_JOB, SUBSCRIBE_JOB, Partner, partner_subscription_key
from provtrack.engine.worker import Handler
from provtrack.services import access, hub_subscriptions, partners
from provtrack.services.ports import ActivityNotFound, Context, DownstreamSubscription, OrderNotFound, Store

ACTOR = "provtrack-partners"
LISTENER_PATH = "/provtrack/v1/partner"
log = structlog.get_logger("provtrack.partners")


class PartnerEngine:
    def __init__(
        self,
        store: Store,
        catalog: Catalog | None,
        client: PartnerOrderingClient,
        *,
        listener_base_url: str | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.store = store
        self.catalog = catalog
        self.client = client
        self.listener_base_url = listener_base_url.rstrip("/") if listener_base_url else None
        self.clock = clock  # when a subscription was made: after the hub answered, not the job's start

    def handlers(self) -> dict[str, Handler]:
        return {DISPATCH_JOB: self.send, POLL_JOB: self.read, SUBSCRIBE_JOB: self.subscribe}

    def close(self) -> None:
        self.client.close()

    def _partner(self, name: str) -> tuple[Catalog, Partner]:
        if self.catalog is None:
            raise GiveUp("no catalog is configured: start provtrack with --catalog FILE (or --demo)")
        partner = self.catalog.partners.get(name)
        if partner is None:
            raise GiveUp(f"partner {name!r} is not in the catalog")
        return self.catalog, partner

    def send(self, job: Job, now: datetime) -> None:
        send = partners.send_request(self.store, job.key, job.payload)
        if send is None:
            return
        catalog, partner = self._partner(send.partner)
        try:
            partner_order = self.client.find(partner, send.external_id)
            if partner_order is None:
                partner_order = self.client.create(partner, send.body)
            else:
                log.info(
                    "partner order found, not sent again", partner=partner.name, external_id=send.external_id
                )
        except DownstreamUnavailable as exc:
            raise RetryLater(str(exc)) from None
        except DownstreamRefused as exc:
            partners.record_partner_refusal(self.store, send, exc.status, exc.body, ctx=_ctx(now))
            return
        partners.record_partner_order(self.store, send, partner_order, catalog, ctx=_ctx(now))

    def read(self, job: Job, now: datetime) -> None:
        target = partners.poll_target(self.store, job.key)
        if target is None:
            return
        catalog, partner = self._partner(target[0])
        try:
            partner_order = self.client.get(partner, target[1])
        except (DownstreamUnavailable, DownstreamRefused) as exc:
            raise RetryLater(str(exc)) from None
        try:
            partners.record_partner_state(self.store, job.key, partner_order, catalog, ctx=_ctx(now))
        except (ActivityNotFound, OrderNotFound):
            return  # the order was deleted meanwhile: nothing to follow

    def subscribe(self, job: Job, now: datetime) -> None:
        """Our subscription at the partner's hub: the one we have while the partner still has it and
        it still points at us, else a new one; one per partner however often provtrack starts."""
        _catalog, partner = self._partner(job.key)
        if self.listener_base_url is None:
            return
        key = partner_subscription_key(partner.name)
        # The callback carries the partner's listener token: only who has it can notify us.
        token = access.listener_token(self.store, key, now=now)
        callback = f"{self.listener_base_url}{LISTENER_PATH}/{partner.name}/{token}"
        known = hub_subscriptions.downstream_subscription(self.store, key)
        try:
            if known is not None and (known.callback, known.base_url) == (callback, partner.url):
                if self.client.subscription_exists(partner, known.hub_id):
                    log.info("partner hub subscription in place", partner=partner.name, hub=known.hub_id)
                    return
            elif known is not None:
                self.client.unsubscribe(partner, known.hub_id)
            answer = self.client.subscribe(partner, callback)
        except DownstreamUnavailable as exc:
            raise RetryLater(str(exc)) from None  # meanwhile the safety poll follows its orders
        except DownstreamRefused as exc:
            raise GiveUp(
                f"{partner.name} refused the hub subscription: HTTP {exc.status} {exc.body}"
            ) from None
        if hub_id := str(answer.get("id") or ""):
            subscription = DownstreamSubscription(key, hub_id, callback, partner.url)
            read_again = hub_subscriptions.record_subscription(
                self.store,
                subscription,
                owner=partner.name,
                kind=ActivityKind.PARTNER_ORDER,
                poll_job=POLL_JOB,
                now=self.clock() if self.clock is not None else now,
            )
            log.info(
                "subscribed to partner order notifications",
                partner=partner.name,
                callback=callback,
                read_again=read_again,
            )


def _ctx(now: datetime) -> Context:
    return Context(now=format_datetime(now), actor=ACTOR, new_id=new_id)
