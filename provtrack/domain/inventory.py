"""TMF638 service inventory: what a completed order item writes there.

`add` creates the service, `modify` updates its characteristics, `delete` marks it terminated. The
item's `service` then carries the inventory id and href.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from provtrack.domain.model import ServiceOrder


@dataclass(frozen=True, slots=True)
class InventoryUpdate:
    """One TMF638 call for one completed item: `create` (POST) or `update` (PATCH service_id)."""

    order_id: str
    item_id: str
    operation: str  # "create" or "update"
    service_id: str | None
    body: dict[str, Any]


def inventory_update(order: ServiceOrder, item_id: str) -> InventoryUpdate | None:
    item = order.item(item_id)
    service = dict(item.attributes.get("service") or {})
    reference = [{"serviceOrderId": order.id, "itemId": item.id}]
    if item.action == "add":
        body: dict[str, Any] = {
            "@type": "Service",
            "state": "active",
            "serviceOrderItem": reference,  # lets the inventory recognise a re-sent create
        }
        for key in ("name", "description", "serviceSpecification", "serviceCharacteristic", "place"):
            if service.get(key) is not None:
                body[key] = service[key]
        if order.attributes.get("relatedParty"):
            body["relatedParty"] = order.attributes["relatedParty"]
        return InventoryUpdate(order.id, item.id, "create", None, body)
    if item.action in ("modify", "delete") and service.get("id"):
        if item.action == "delete":
            body = {"state": "terminated", "serviceOrderItem": reference}
        else:
            body = {"serviceOrderItem": reference}
            if service.get("serviceCharacteristic") is not None:
                body["serviceCharacteristic"] = service["serviceCharacteristic"]
        return InventoryUpdate(order.id, item.id, "update", str(service["id"]), body)
    return None


def record_inventory_service(
    order: ServiceOrder, item_id: str, service_id: str, href: str | None, *, now: str, actor: str
) -> None:
    """The item's service now names its inventory entry."""
    item = order.item(item_id)
    service = dict(item.attributes.get("service") or {})
    if service.get("id") == service_id and (href is None or service.get("href") == href):
        return
    service["id"] = service_id
    if href:
        service["href"] = href
    order.replace_item_attributes(item_id, {**item.attributes, "service": service}, now=now, actor=actor)
