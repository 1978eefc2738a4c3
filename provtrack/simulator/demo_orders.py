"""Realistic TMF641 orders for the demo: FTTH, business Ethernet, SD-WAN, SIM port-in, IPTV add-on."""

from __future__ import annotations

import random
import threading
import uuid
from typing import Any

import httpx
import structlog

ORDERS_PATH = "/tmf-api/serviceOrdering/v4/serviceOrder"
STREETS = ["Rue des Lilas", "Avenue Jean Jaurès", "Quai de la Loire", "Boulevard Voltaire", "Rue du Moulin"]
CITIES = ["Lyon", "Nantes", "Lille", "Rennes", "Toulouse"]
NAMES = ["A. Martin", "L. Bernard", "C. Dubois", "M. Laurent", "S. Moreau", "J. Petit"]
COMPANIES = ["ACME Logistique", "Boulangeries Réunies", "Clinique du Parc", "Transports Garnier"]
log = structlog.get_logger("provtrack.demo")


def _chars(**values: Any) -> list[dict[str, Any]]:
    return [{"name": k, "value": v} for k, v in values.items()]


def _item(item_id: str, spec: str, action: str = "add", **extra: Any) -> dict[str, Any]:
    service: dict[str, Any] = {"serviceSpecification": {"id": spec}, **extra}
    return {"id": item_id, "action": action, "service": service}


def demo_order(rng: random.Random) -> dict[str, Any]:
    """One order, picked the way a mixed residential/business/mobile operator receives them."""
    kind = rng.choices(["ftth", "iptv", "eline", "sdwan", "sim"], weights=[40, 15, 15, 10, 20])[0]
    address = f"{rng.randint(1, 120)} {rng.choice(STREETS)}, {rng.choice(CITIES)}"
    customer = rng.choice(NAMES)
    external = f"BSS-{rng.randint(100000, 999999)}"
    if kind == "ftth":
        speed = rng.choice([300, 500, 1000, 2000])
        items = [
            _item(
                "1",
                "ftth-residential",
                serviceCharacteristic=_chars(
                    downloadSpeed=speed, uploadSpeed=speed // 2, installationAddress=address
                ),
            )
        ]
        return _body(external, f"FTTH {speed}M for {address}", "residential", customer, items)
    if kind == "iptv":
        broadband = f"svc-ftth-{rng.randint(1000, 9999)}"
        items = [
            _item(
                "bb",
                "ftth-residential",
                "modify",
                id=broadband,
                serviceCharacteristic=_chars(downloadSpeed=1000, uploadSpeed=500),
            ),
            {
                **_item(
                    "tv",
                    "iptv-addon",
                    serviceCharacteristic=_chars(package=rng.choice(["basic", "family", "sport"])),
                ),
                "serviceOrderItemRelationship": [
                    {"relationshipType": "dependency", "orderItem": {"itemId": "bb"}}
                ],
            },
        ]
        return _body(external, f"IPTV add-on on {broadband}", "residential", customer, items)
    if kind == "eline":
        bandwidth = rng.choice([100, 200, 500, 1000])
        items = [
            _item(
                "eline",
                "business-ethernet-eline",
                serviceCharacteristic=_chars(bandwidthMbps=bandwidth, vlanId=rng.randint(100, 4000)),
            )
        ]
        return _body(
            external,
            f"E-Line {bandwidth}M for {rng.choice(COMPANIES)}",
            "business",
            customer,
            items,
            priority="3",
        )
    if kind == "sdwan":
        sites = rng.randint(1, 3)
        items = [
            _item(
                f"site{n}",
                "sdwan-site",
                serviceCharacteristic=_chars(edgeModel="edge-520", topology="hub-and-spoke"),
            )
            for n in range(1, sites + 1)
        ]
        return _body(
            external,
            f"SD-WAN {sites} site(s) for {rng.choice(COMPANIES)}",
            "business",
            customer,
            items,
            priority="2",
        )
    msisdn = f"+336{rng.randint(10000000, 99999999)}"
    items = [_item("sim", "mobile-sim-port-in", serviceCharacteristic=_chars(msisdn=msisdn))]
    return _body(external, f"SIM with port-in of {msisdn}", "mobile", customer, items)


def _body(
    external: str,
    description: str,
    category: str,
    customer: str,
    items: list[dict[str, Any]],
    *,
    priority: str = "4",
) -> dict[str, Any]:
    return {
        "externalId": external,
        "description": description,
        "category": category,
        "priority": priority,
        "relatedParty": [{"id": f"cust-{uuid.uuid4().hex[:6]}", "role": "customer", "name": customer}],
        "serviceOrderItem": items,
    }


def feed_orders(
    base_url: str, *, every: float, count: int | None, stop: threading.Event, seed: int | None = None
) -> int:
    """POST a demo order every `every` seconds until `stop` (or `count` orders); returns how many."""
    rng = random.Random(seed)
    sent = 0
    with httpx.Client(base_url=base_url, timeout=10) as client:
        _wait_until_serving(client, stop)
        while not stop.is_set() and (count is None or sent < count):
            try:
                response = client.post(ORDERS_PATH, json=demo_order(rng))
                if response.status_code != 201:
                    log.warning("demo order refused", status=response.status_code, body=response.text[:300])
                sent += 1
            except httpx.HTTPError as exc:
                log.warning("demo order not sent", error=str(exc))
            stop.wait(every)
    return sent


def _wait_until_serving(client: httpx.Client, stop: threading.Event, *, attempts: int = 100) -> None:
    """The feeder starts beside the server: wait (bounded) until it answers before sending."""
    for _ in range(attempts):
        try:
            if client.get("/provtrack/v1/health").status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if stop.wait(0.1):
            return
