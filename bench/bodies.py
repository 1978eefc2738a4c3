"""Realistic ServiceOrder_Create bodies for the benchmarks: an FTTH access and an IPTV service on it."""

from __future__ import annotations

from typing import Any

STREETS = ("Rue des Lilas", "Avenue Foch", "Boulevard Voltaire", "Rue de la Paix", "Quai de Jemmapes")
CITIES = (("Paris", "75011"), ("Lyon", "69003"), ("Lille", "59000"), ("Nantes", "44000"))
SPEEDS = ("300Mbps", "500Mbps", "1Gbps", "2Gbps")
TV_PACKS = ("essential", "family", "sport", "cinema")


def order_body(n: int) -> dict[str, Any]:
    """The n-th order: same shape every time, values varied so documents and indexes are realistic."""
    street = STREETS[n % len(STREETS)]
    city, postcode = CITIES[n % len(CITIES)]
    customer = f"cust-{n % 50_000:05d}"
    place = {
        "id": f"addr-{n:07d}",
        "role": "installationAddress",
        "@referredType": "GeographicAddress",
        "name": f"{n % 200 + 1} {street}, {postcode} {city}",
    }
    return {
        "externalId": f"BSS-{n:08d}",
        "priority": str(n % 4 + 1),
        "description": f"FTTH {SPEEDS[n % len(SPEEDS)]} + IPTV for {n % 200 + 1} {street}",
        "category": "residential" if n % 10 else "business",
        "requestedStartDate": "2026-12-01T08:00:00.000Z",
        "requestedCompletionDate": "2026-12-15T17:00:00.000Z",
        "@type": "ServiceOrder",
        "relatedParty": [
            {
                "id": customer,
                "role": "customer",
                "name": f"Customer {customer}",
                "@referredType": "Individual",
            }
        ],
        "externalReference": [{"externalReferenceType": "crmOrder", "name": f"CRM-{n:08d}"}],
        "note": [{"author": "bss", "date": "2026-11-27T09:00:00.000Z", "text": "Access code 4711"}],
        "serviceOrderItem": [
            {
                "id": "1",
                "action": "add",
                "quantity": 1,
                "@type": "ServiceOrderItem",
                "service": {
                    "name": "FTTH access",
                    "serviceType": "CFS",
                    "serviceSpecification": {"id": "ftth-residential", "version": "2.1"},
                    "serviceCharacteristic": [
                        {"name": "downstreamSpeed", "valueType": "string", "value": SPEEDS[n % len(SPEEDS)]},
                        {"name": "upstreamSpeed", "valueType": "string", "value": "500Mbps"},
                        {"name": "ontType", "valueType": "string", "value": "XGS-PON"},
                        {"name": "staticIp", "valueType": "boolean", "value": n % 7 == 0},
                    ],
                    "place": [place],
                    "relatedParty": [{"id": customer, "role": "user"}],
                },
            },
            {
                "id": "2",
                "action": "add",
                "quantity": 1,
                "@type": "ServiceOrderItem",
                "service": {
                    "name": "IPTV",
                    "serviceType": "CFS",
                    "serviceSpecification": {"id": "iptv", "version": "1.4"},
                    "serviceCharacteristic": [
                        {"name": "package", "valueType": "string", "value": TV_PACKS[n % len(TV_PACKS)]},
                        {"name": "setTopBoxes", "valueType": "integer", "value": n % 3 + 1},
                    ],
                },
                "serviceOrderItemRelationship": [
                    {"relationshipType": "dependency", "orderItem": {"itemId": "1"}}
                ],
            },
        ],
    }
