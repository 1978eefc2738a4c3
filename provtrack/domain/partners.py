"""Partner orders: components another party delivers, ordered from it over TMF641 (docs/coordination.md).

provtrack sends the partner a TMF641 service order whose `externalId` is `<activity id>.<attempt>`,
so that a send whose outcome is unknown is looked up (`?externalId=`) before it is repeated. The
partner's order is then read (after each of its notifications, and by a safety poll): its state
moves the activity along the same mapping as a resource order's, its milestones and jeopardy alerts
become milestones of our order, and its `expectedCompletionDate` takes the place of the activity's
expected duration in our plan and our jeopardy projection.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Any

from provtrack.domain import plan as planning
from provtrack.domain.activities import Activity
from provtrack.domain.catalog import ActivityKind, Catalog, Progress
from provtrack.domain.clock import InvalidDateTime, normalise_datetime
from provtrack.domain.model import Change, EventType, OrderEvent, ServiceOrder
from provtrack.domain.plan import Plan

DISPATCH_JOB = "partners.dispatch"  # key: activity id; looks the order up, then POSTs it if absent
POLL_JOB = "partners.poll"  # key: activity id; reads the partner's order (after a notification, or safety)
SUBSCRIBE_JOB = "partners.subscribe"  # key: partner name; registers our listener with its hub
PARTNER_PREFIX = "partner:"  # partners' hub subscriptions share the table with systems', under this prefix


def partner_subscription_key(partner: str) -> str:
    return f"{PARTNER_PREFIX}{partner}"


def hub_subscription_of(activity: Activity, catalog: Catalog) -> str | None:
    """Our hub subscription that hears about the activity's order at its owner: the system's (a
    resource order or its withdrawal), the partner's; None when the owner is polled, or a person."""
    if activity.kind is ActivityKind.RESOURCE_ORDER:
        system = catalog.systems.get(activity.owner)
        return activity.owner if system is not None and system.progress is Progress.HUB else None
    if activity.kind is ActivityKind.PARTNER_ORDER:
        partner = catalog.partners.get(activity.owner)
        hub = partner is not None and partner.progress is Progress.HUB
        return partner_subscription_key(activity.owner) if hub else None
    return None


class Scheme(StrEnum):
    """How provtrack proves who it is to a partner."""

    BEARER = "bearer"  # Authorization: Bearer <token>
    BASIC = "basic"  # Authorization: Basic <username:password>
    API_KEY = "apiKey"  # <header>: <key>


@dataclass(frozen=True, slots=True)
class Credentials:
    """Credentials by reference: the secret is read from the environment variable `variable` when a
    request is sent, never written in the catalog."""

    scheme: Scheme
    variable: str
    username: str | None = None  # basic
    header: str = "X-API-Key"  # apiKey


@dataclass(frozen=True, slots=True)
class Partner:
    name: str
    url: str  # TMF641 base URL at the partner, e.g. https://partner.example/tmf-api/serviceOrdering/v4
    progress: Progress = Progress.HUB
    poll_interval: timedelta = timedelta(minutes=15)  # with a hub: the safety poll
    credentials: Credentials | None = None
    description: str = ""


def partner_order_request(activity: Activity, order: ServiceOrder) -> dict[str, Any]:
    """The TMF641 ServiceOrder_Create body provtrack sends the partner for this attempt."""
    service: dict[str, Any] = {
        "serviceSpecification": {"id": activity.service_specification},
        "serviceCharacteristic": [{"name": k, "value": v} for k, v in activity.characteristics.items()],
    }
    if not service["serviceCharacteristic"]:
        del service["serviceCharacteristic"]
    body: dict[str, Any] = {
        "@type": "ServiceOrder",
        "externalId": activity.request_id,
        "externalReference": [
            {"externalReferenceType": "provtrackActivity", "name": activity.id},
            {"externalReferenceType": "provtrackServiceOrder", "name": activity.order_id},
        ],
        "description": f"{activity.description or activity.name} for service order {activity.order_id} "
        f"item {activity.item_id}",
        "category": activity.name,
        "serviceOrderItem": [{"id": "1", "action": "add", "service": service}],
    }
    for name in ("priority", "requestedCompletionDate"):
        if order.attributes.get(name):
            body[name] = order.attributes[name]
    return body


@dataclass(frozen=True, slots=True)
class PartnerReport:
    """What a partner's order says, read from its TMF641 document."""

    id: str
    state: str
    reason: str | None
    expected_completion: str | None
    milestones: tuple[dict[str, Any], ...]
    jeopardy_alerts: tuple[dict[str, Any], ...]

    @classmethod
    def read(cls, document: dict[str, Any]) -> PartnerReport:
        return cls(
            id=str(document.get("id") or ""),
            state=str(document.get("state") or ""),
            reason=_reason(document),
            expected_completion=_date(document.get("expectedCompletionDate")),
            milestones=tuple(m for m in document.get("milestone") or () if isinstance(m, dict)),
            jeopardy_alerts=tuple(a for a in document.get("jeopardyAlert") or () if isinstance(a, dict)),
        )


def apply_report(
    plan: Plan, order: ServiceOrder, activity: Activity, report: PartnerReport, *, now: str, actor: str
) -> list[Activity]:
    """Carry the partner's word onto our order: its expected date into the plan, its milestones and
    jeopardy alerts as milestones of ours, its state onto the activity. Returns what started."""
    if report.expected_completion and report.expected_completion != activity.owner_expected_end:
        old, activity.owner_expected_end = activity.owner_expected_end, report.expected_completion
        plan.changes.append(
            Change(activity.subject, "ownerExpectedEndDate", old, report.expected_completion, now, actor)
        )
    seen = {str(m.get("id")) for m in order.milestones}
    for kind, entries in (("milestone", report.milestones), ("jeopardy", report.jeopardy_alerts)):
        for entry in entries:
            milestone = _milestone(order, activity, kind, entry, now)
            if milestone["id"] not in seen:
                seen.add(milestone["id"])
                order.milestones.append(milestone)
                order.changes.append(Change("serviceOrder", "milestone", None, milestone, now, actor))
                order.events.append(OrderEvent(EventType.ORDER_MILESTONE, now))
    return planning.record_downstream_state(
        plan, order, activity, report.state, reason=report.reason, now=now, actor=actor
    )


def _milestone(
    order: ServiceOrder, activity: Activity, kind: str, entry: dict[str, Any], now: str
) -> dict[str, Any]:
    """A milestone of our order for one of the partner's milestones or jeopardy alerts."""
    ident = str(entry.get("id") or entry.get("name") or "")
    name = str(entry.get("name") or entry.get("jeopardyType") or kind)
    if kind == "jeopardy":
        status = f"partnerJeopardy: {entry.get('jeopardyType') or 'raised'}"
        when = entry.get("alertDate")
    else:
        status = str(entry.get("status") or "reached")
        when = entry.get("milestoneDate")
    message = entry.get("message") or entry.get("description") or name
    return {
        "id": f"{activity.id}/{kind}/{ident}",
        "name": f"{activity.name}: {name}",
        "description": f"{activity.owner} reports on partner order {activity.external_id}",
        "message": str(message),
        "milestoneDate": _date(when) or now,
        "status": status,
        "serviceOrderItem": [{"itemId": activity.item_id, "serviceOrderId": order.id}],
        "@type": "ServiceOrderMilestone",
    }


def _reason(document: dict[str, Any]) -> str | None:
    """Why the partner's order is where it is: its last error message, else its last note."""
    for key, fields in (("errorMessage", ("message", "reason")), ("note", ("text",))):
        entries = document.get(key) or []
        if isinstance(entries, dict):
            entries = [entries]
        for entry in reversed(entries):
            if isinstance(entry, dict):
                for name in fields:
                    if entry.get(name):
                        return str(entry[name])
    return None


def _date(value: Any) -> str | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return normalise_datetime(value)
    except InvalidDateTime:
        return None
