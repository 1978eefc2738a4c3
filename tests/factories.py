"""Builders of request bodies and aggregates for tests: small, explicit, overridable."""

from __future__ import annotations

from typing import Any


def item(
    item_id: str = "1",
    *,
    action: str = "add",
    spec: str = "ftth-residential",
    service_id: str | None = None,
    depends_on: tuple[str, ...] = (),
    **extra: Any,
) -> dict[str, Any]:
    service: dict[str, Any] = {"serviceSpecification": {"id": spec}} if action == "add" else {}
    if service_id is not None:
        service["id"] = service_id
    if action in ("modify", "delete") and service_id is None:
        service["id"] = f"svc-{item_id}"
    body: dict[str, Any] = {"id": item_id, "action": action, "service": service}
    if depends_on:
        body["serviceOrderItemRelationship"] = [
            {"relationshipType": "dependency", "orderItem": {"itemId": other}} for other in depends_on
        ]
    body.update(extra)
    return body


def order_body(*items: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """A ServiceOrder_Create body; two FTTH + IPTV items unless items are given."""
    body: dict[str, Any] = {
        "externalId": "BSS-0001",
        "priority": "1",
        "description": "FTTH 1G for 12 Rue des Lilas",
        "category": "residential",
        "relatedParty": [{"id": "cust-42", "role": "customer", "name": "A. Martin"}],
        "serviceOrderItem": list(items) or [item("1"), item("2", spec="iptv", depends_on=("1",))],
    }
    body.update(fields)
    return body
