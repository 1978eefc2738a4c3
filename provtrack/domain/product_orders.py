"""TMF622 product orders seen from service ordering: when a customer order's cancellation should
cancel the service orders that came from it, and which service orders those are.

A product order is being cancelled when a CancelProductOrder for it is acknowledged, in progress or
done, or when the product order itself is assessingCancellation, pendingCancellation or cancelled
(TMF622-NOTES §8). A service order comes from a product order when it names it (docs/cancellation.md):
an `orderRelationship` or an `externalReference` naming the product order's id, or its `externalId`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from provtrack.domain.model import ServiceOrder

CANCELLING_ORDER_STATES = frozenset({"assessingCancellation", "pendingCancellation", "cancelled"})
# A CancelProductOrder in these states asks for the cancellation; `accepted` is v4.1's entry state.
CANCELLING_TASK_STATES = frozenset({"acknowledged", "accepted", "inProgress", "done"})
PRODUCT_ORDER_TYPES = frozenset({"productorder"})  # `@referredType` / `externalReferenceType`, any case
CANCEL_EVENTS = frozenset({"CancelProductOrderCreateEvent", "CancelProductOrderStateChangeEvent"})
ORDER_EVENTS = frozenset({"ProductOrderStateChangeEvent", "ProductOrderAttributeValueChangeEvent"})


@dataclass(frozen=True, slots=True)
class ProductOrderCancellation:
    """A product order being cancelled, and what its cancellation asked for."""

    product_order_id: str
    reason: str | None = None
    requested_date: str | None = None
    cancel_id: str | None = None  # the CancelProductOrder, when it is known

    def service_cancellation_reason(self) -> str:
        because = f": {self.reason}" if self.reason else ""
        return f"product order {self.product_order_id} cancelled{because}"


@dataclass(frozen=True, slots=True)
class ProductOrderSignal:
    """What a TMF622 event is about: the product order (and cancel task) to look at, and whether the
    event itself says it is being cancelled (`cancellation`, None when it says it is not)."""

    product_order_id: str
    cancel_id: str | None
    cancellation: ProductOrderCancellation | None


def read_event(event: Any) -> ProductOrderSignal | None:
    """The signal in a TMF622 notification; None for one about no product order provtrack can name."""
    if not isinstance(event, dict):
        return None
    payload = event.get("event")
    if not isinstance(payload, dict):
        return None
    task = payload.get("cancelProductOrder")
    if isinstance(task, dict):
        cancellation = cancellation_in_task(task)
        ref = task.get("productOrder")
        order_id = ref.get("id") if isinstance(ref, dict) else None
        if not order_id:
            return None
        return ProductOrderSignal(str(order_id), _text(task.get("id")), cancellation)
    order = payload.get("productOrder")
    if isinstance(order, dict) and order.get("id"):
        return ProductOrderSignal(str(order["id"]), None, cancellation_in_order(order))
    return None


def cancellation_in_task(task: dict[str, Any]) -> ProductOrderCancellation | None:
    """A CancelProductOrder that asks for its product order to be cancelled (not one terminated)."""
    ref = task.get("productOrder")
    order_id = ref.get("id") if isinstance(ref, dict) else None
    if not order_id or task.get("state") not in CANCELLING_TASK_STATES:
        return None
    return ProductOrderCancellation(
        str(order_id),
        _text(task.get("cancellationReason")),
        _text(task.get("requestedCancellationDate")),
        _text(task.get("id")),
    )


def cancellation_in_order(order: dict[str, Any]) -> ProductOrderCancellation | None:
    """A product order in a cancellation state."""
    if not order.get("id") or order.get("state") not in CANCELLING_ORDER_STATES:
        return None
    return ProductOrderCancellation(str(order["id"]), _text(order.get("cancellationReason")))


def product_orders_of(order: ServiceOrder) -> list[str]:
    """The product orders a service order names with a type (followed by the safety poll; an
    `externalId` is matched against events only: it is often the BSS's own number)."""
    found: list[str] = []
    for ref in order.attributes.get("orderRelationship") or []:
        if isinstance(ref, dict) and str(ref.get("@referredType", "")).lower() in PRODUCT_ORDER_TYPES:
            _add(found, ref.get("id"))
    for ref in order.attributes.get("externalReference") or []:
        if isinstance(ref, dict) and str(ref.get("externalReferenceType", "")).lower() in PRODUCT_ORDER_TYPES:
            _add(found, ref.get("name") or ref.get("id"))
    return found


# The attributes a service order may name its product order in, for a query of the store.
REFERENCE_PATHS: tuple[tuple[str, ...], ...] = (
    ("orderRelationship", "id"),
    ("externalReference", "name"),
    ("externalId",),
)


def _add(found: list[str], value: Any) -> None:
    if value and str(value) not in found:
        found.append(str(value))


def _text(value: Any) -> str | None:
    return str(value) if value else None
