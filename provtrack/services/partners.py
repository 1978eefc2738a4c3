"""Partner orders (docs/coordination.md): the use cases between the engine's TMF641 calls to a
partner. Nothing here talks to the network.

A notification from a partner is not trusted to say anything: it only makes provtrack read the
partner's order at once (`nudge`), and what the read says is applied. Polling is the same read,
on a timer: every `pollInterval` while the partner order is open, as the safety net of the hub.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from provtrack.domain import partners
from provtrack.domain import plan as planning
from provtrack.domain.activities import OPEN, Activity, ActivityState, activity_of_request
from provtrack.domain.catalog import ActivityKind, Catalog, Progress
from provtrack.domain.clock import parse_datetime
from provtrack.domain.jobs import JobRequest
from provtrack.domain.model import Change, ServiceOrder
from provtrack.domain.partners import DISPATCH_JOB, POLL_JOB, SUBSCRIBE_JOB, PartnerReport
from provtrack.domain.plan import Plan
from provtrack.services import provisioning
from provtrack.services.ports import Context, Store, Transaction
from provtrack.services.provisioning import change_plan, hand_out


@dataclass(frozen=True, slots=True)
class PartnerSend:
    """One attempt of a partner order, as the engine sends it."""

    activity_id: str
    order_id: str
    attempt: int
    partner: str
    body: dict[str, Any]

    @property
    def external_id(self) -> str:
        return str(self.body["externalId"])


def subscribe_to_partner_hubs(store: Store, catalog: Catalog, *, ctx: Context) -> None:
    """At start: a job per hub-notifying partner registers our listener with its hub."""
    now = parse_datetime(ctx.now)
    with store.transaction(write=True) as tx:
        for partner in catalog.partners.values():
            if partner.progress is Progress.HUB:
                tx.schedule_job(JobRequest(SUBSCRIBE_JOB, partner.name, now), now=now)


def send_request(store: Store, activity_id: str, payload: dict[str, Any] | None) -> PartnerSend | None:
    """What to send for the activity, or None when it no longer waits for a partner order."""
    payload = payload or {}
    with store.transaction(write=False) as tx:
        activity = tx.plans.get_activity(activity_id)
        if activity is None or not _awaits_send(activity):
            return None
        body = payload.get("body") if payload.get("attempt") == activity.attempt else None
        if not isinstance(body, dict):
            order = tx.get_order(activity.order_id)
            if order is None:
                return None
            body = partners.partner_order_request(activity, order)
    return PartnerSend(activity.id, activity.order_id, activity.attempt, activity.owner, body)


def _awaits_send(activity: Activity) -> bool:
    return (
        activity.kind is ActivityKind.PARTNER_ORDER
        and activity.state == ActivityState.IN_PROGRESS
        and activity.external_id is None
    )


def record_partner_order(
    store: Store, send: PartnerSend, partner_order: dict[str, Any], catalog: Catalog, *, ctx: Context
) -> None:
    """The partner has our order (its POST answer, or found by its externalId): keep its id, apply
    what it says, and follow it."""

    def change(tx: Transaction, order: ServiceOrder, plan: Plan) -> None:
        activity = plan.activity(send.activity_id)
        if activity.attempt != send.attempt:
            return  # an operator retried meanwhile: this answer belongs to an older attempt
        tx.cancel_job(DISPATCH_JOB, activity.id)
        if activity.external_id is None:
            activity.external_id = str(partner_order.get("id") or "")
            plan.changes.append(
                Change(activity.subject, "externalId", None, activity.external_id, ctx.now, ctx.actor)
            )
        _apply(tx, order, plan, activity, partner_order, catalog, ctx)
        provisioning.read_now_if_subscribed_since(tx, activity, POLL_JOB, catalog, ctx)

    change_plan(store, send.order_id, change, ctx=ctx, catalog=catalog)


def record_partner_refusal(store: Store, send: PartnerSend, status: int, body: Any, *, ctx: Context) -> None:
    """The partner refused our order (4xx): the activity falls out with the answer kept."""

    def change(tx: Transaction, order: ServiceOrder, plan: Plan) -> None:
        activity = plan.activity(send.activity_id)
        if activity.attempt != send.attempt or activity.state != ActivityState.IN_PROGRESS:
            return
        tx.cancel_job(DISPATCH_JOB, activity.id)
        activity.error = {"status": status, "body": body}
        message = (body.get("message") or body.get("reason")) if isinstance(body, dict) else None
        activity.reason = f"{activity.owner} refused the partner order with HTTP {status}" + (
            f": {message}" if message else ""
        )
        started = planning.finish_move(
            plan, order, activity, ActivityState.FALLOUT, now=ctx.now, actor=ctx.actor
        )
        hand_out(tx, order, plan, started, ctx)

    change_plan(store, send.order_id, change, ctx=ctx)


def record_partner_state(
    store: Store, activity_id: str, partner_order: dict[str, Any], catalog: Catalog, *, ctx: Context
) -> str:
    """What a read of the partner's order says (after a notification, or a poll). Returns `applied`
    or `stale` (another attempt's order, or no longer followed)."""
    order_id = provisioning.order_of(store, activity_id)
    outcome = "stale"

    def change(tx: Transaction, order: ServiceOrder, plan: Plan) -> None:
        nonlocal outcome
        activity = plan.activity(activity_id)
        if activity.external_id != str(partner_order.get("id") or "") or activity.state not in OPEN:
            return
        outcome = "applied"
        _apply(tx, order, plan, activity, partner_order, catalog, ctx)

    change_plan(store, order_id, change, ctx=ctx, catalog=catalog)
    return outcome


def _apply(  # noqa: PLR0917 - the one helper of the use cases above, with what they hold
    tx: Transaction,
    order: ServiceOrder,
    plan: Plan,
    activity: Activity,
    partner_order: dict[str, Any],
    catalog: Catalog,
    ctx: Context,
) -> None:
    report = PartnerReport.read(partner_order)
    started = partners.apply_report(plan, order, activity, report, now=ctx.now, actor=ctx.actor)
    hand_out(tx, order, plan, started, ctx)
    now = parse_datetime(ctx.now)
    if activity.state in OPEN:
        partner = catalog.partners.get(activity.owner)
        interval = partner.poll_interval if partner is not None else timedelta(minutes=15)
        tx.schedule_job(JobRequest(POLL_JOB, activity.id, now + interval), now=now)
    else:
        tx.cancel_job(POLL_JOB, activity.id)


def poll_target(store: Store, activity_id: str) -> tuple[str, str] | None:
    """(partner, partner order id) to read, or None when the activity no longer waits for it."""
    with store.transaction(write=False) as tx:
        activity = tx.plans.get_activity(activity_id)
    if activity is None or activity.state not in OPEN or activity.external_id is None:
        return None
    return activity.owner, activity.external_id


def nudge(store: Store, partner: str, partner_order: dict[str, Any], *, now: datetime) -> str:
    """A partner's notification: read its order now (a poll due at once), whatever the notification
    claims. Returns `read` when the order is one of ours, `unknown` otherwise."""
    match = activity_of_request(partner_order.get("externalId"), partner_order.get("externalReference"))
    with store.transaction(write=True) as tx:
        activity_id: str | None = None
        if match is not None:
            found = tx.plans.get_activity(match[0])
            activity_id = found.id if found is not None and found.owner == partner else None
        if activity_id is None and partner_order.get("id"):
            by_id = tx.plans.activity_by_external_id(partner, str(partner_order["id"]))
            activity_id = by_id[0] if by_id else None
        if activity_id is None:
            return "unknown"
        tx.schedule_job(JobRequest(POLL_JOB, activity_id, now), now=now)
    return "read"
