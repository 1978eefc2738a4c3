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
    characteristics: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    service: dict[str, Any] = {"serviceSpecification": {"id": spec}} if action == "add" else {}
    if service_id is not None:
        service["id"] = service_id
    if characteristics:
        service["serviceCharacteristic"] = [{"name": k, "value": v} for k, v in characteristics.items()]
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


def business_ethernet_body(**fields: Any) -> dict[str, Any]:
    """An E-Line with off-net access for a business site."""
    eline = item(
        "eline",
        spec="business-ethernet-eline",
        characteristics={"bandwidthMbps": 500, "vlanId": 1204},
    )
    defaults: dict[str, Any] = {
        "externalId": "BSS-0002",
        "priority": "3",
        "description": "E-Line 500M Lyon Part-Dieu to Villeurbanne DC",
        "category": "business",
        "relatedParty": [{"id": "cust-acme", "role": "customer", "name": "ACME Logistique"}],
    }
    return order_body(eline, **{**defaults, **fields})


def sim_port_in_body(**fields: Any) -> dict[str, Any]:
    """A mobile SIM with the number ported in from a donor operator."""
    sim = item("sim", spec="mobile-sim-port-in", characteristics={"msisdn": "+33612345678"})
    defaults: dict[str, Any] = {
        "externalId": "BSS-0003",
        "priority": "2",
        "description": "SIM with port-in from donor operator",
        "category": "mobile",
        "relatedParty": [{"id": "cust-77", "role": "customer", "name": "L. Bernard"}],
    }
    return order_body(sim, **{**defaults, **fields})


def iptv_add_on_body(broadband_service_id: str = "svc-ftth-0042", **fields: Any) -> dict[str, Any]:
    """IPTV added to an existing FTTH line: modify the broadband, add the TV service after it."""
    defaults: dict[str, Any] = {
        "externalId": "BSS-0004",
        "priority": "2",
        "description": "IPTV add-on on an existing FTTH line",
        "category": "residential",
    }
    return order_body(
        item("bb", action="modify", service_id=broadband_service_id),
        item("tv", spec="iptv-addon", depends_on=("bb",)),
        **{**defaults, **fields},
    )
