"""Realistic TMF641 orders for the demo: FTTH, business Ethernet, SD-WAN, SIM port-in, IPTV add-on."""

from __future__ import annotations

import random
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
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
    kind = rng.choices(list(_ORDERS), weights=[40, 15, 15, 10, 20])[0]
    who = _Customer(
        external=f"BSS-{rng.randint(100000, 999999)}",
        name=rng.choice(NAMES),
        address=f"{rng.randint(1, 120)} {rng.choice(STREETS)}, {rng.choice(CITIES)}",
    )
    return _ORDERS[kind](rng, who)


@dataclass(frozen=True, slots=True)
class _Customer:
    external: str
    name: str
    address: str


def _ftth(rng: random.Random, who: _Customer) -> dict[str, Any]:
    speed = rng.choice([300, 500, 1000, 2000])
    chars = _chars(downloadSpeed=speed, uploadSpeed=speed // 2, installationAddress=who.address)
    items = [_item("1", "ftth-residential", serviceCharacteristic=chars)]
    return _body(who.external, f"FTTH {speed}M for {who.address}", "residential", who.name, items)


def _iptv(rng: random.Random, who: _Customer) -> dict[str, Any]:
    broadband = f"svc-ftth-{rng.randint(1000, 9999)}"
    package = rng.choice(["basic", "family", "sport"])
    items = [
        _item(
            "bb",
            "ftth-residential",
            "modify",
            id=broadband,
            serviceCharacteristic=_chars(downloadSpeed=1000, uploadSpeed=500),
        ),
        {
            **_item("tv", "iptv-addon", serviceCharacteristic=_chars(package=package)),
            "serviceOrderItemRelationship": [
                {"relationshipType": "dependency", "orderItem": {"itemId": "bb"}}
            ],
        },
    ]
    return _body(who.external, f"IPTV add-on on {broadband}", "residential", who.name, items)


def _eline(rng: random.Random, who: _Customer) -> dict[str, Any]:
    bandwidth = rng.choice([100, 200, 500, 1000])
    chars = _chars(bandwidthMbps=bandwidth, vlanId=rng.randint(100, 4000))
    items = [_item("eline", "business-ethernet-eline", serviceCharacteristic=chars)]
    description = f"E-Line {bandwidth}M for {rng.choice(COMPANIES)}"
    return _body(who.external, description, "business", who.name, items, priority="3")


def _sdwan(rng: random.Random, who: _Customer) -> dict[str, Any]:
    sites = rng.randint(1, 3)
    chars = _chars(edgeModel="edge-520", topology="hub-and-spoke")
    items = [_item(f"site{n}", "sdwan-site", serviceCharacteristic=chars) for n in range(1, sites + 1)]
    description = f"SD-WAN {sites} site(s) for {rng.choice(COMPANIES)}"
    return _body(who.external, description, "business", who.name, items, priority="2")


def _sim(rng: random.Random, who: _Customer) -> dict[str, Any]:
    msisdn = f"+336{rng.randint(10000000, 99999999)}"
    items = [_item("sim", "mobile-sim-port-in", serviceCharacteristic=_chars(msisdn=msisdn))]
    return _body(who.external, f"SIM with port-in of {msisdn}", "mobile", who.name, items)


_ORDERS: dict[str, Callable[[random.Random, _Customer], dict[str, Any]]] = {
    "ftth": _ftth,
    "iptv": _iptv,
    "eline": _eline,
    "sdwan": _sdwan,
    "sim": _sim,
}


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
    base_url: str,
    *,
    every: float,
    count: int | None,
    stop: threading.Event,
    seed: int | None = None,
    token: str | None = None,
) -> int:
    """POST a demo order every `every` seconds until `stop` (or `count` orders), with the bearer
    `token` (orders:write); returns how many."""
    rng = random.Random(seed)
    sent = 0
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with httpx.Client(base_url=base_url, timeout=10, headers=headers) as client:
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
