"""Realistic TMF641 orders for the demo: FTTH, business Ethernet, SD-WAN, SIM port-in, IPTV add-on."""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import structlog

ORDERS_PATH = "/tmf-api/serviceOrdering/v4/serviceOrder"
STREETS = ["Rue des Lilas", "Avenue Jean Jaurès", "Quai de la Loire", "Boulevard Voltaire", "Rue du Moulin"]
CITIES = ["Lyon", "Nantes", "Lille", "Rennes", "Toulouse"]
NAMES = ["A. Martin", "L. Bernard", "C. Dubois", "M. Laurent", "S. Moreau", "J. Petit"]
COMPANIES = ["ACME Logistique", "Boulangeries Réunies", "Clinique du Parc", "Transports Garnier"]
CANCELLATION_REASONS = ["changed their mind", "moving house", "found a better offer", "duplicate order"]
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


def book_visits(body: dict[str, Any], at: datetime) -> dict[str, Any]:
    """Give each new FTTH line a technician's appointment (TMF646 AppointmentRef) at `at`: the
    install cannot start before it."""
    for item in body["serviceOrderItem"]:
        spec = (item["service"].get("serviceSpecification") or {}).get("id")
        if spec == "ftth-residential" and item["action"] == "add":
            start = at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            item["appointment"] = {
                "id": f"APT-{uuid.uuid4().hex[:6]}",
                "description": "technician visit for the ONT installation",
                "validFor": {"startDateTime": start},
                "@referredType": "Appointment",
            }
    return body


@dataclass(frozen=True, slots=True)
class CustomerOrders:
    """Where the demo's customer orders live (a TMF622 API, the simulated one in `serve --demo`), and
    the share of them the customer cancels a few seconds after ordering."""

    url: str
    cancel_share: float = 0.1
    cancel_after: tuple[float, float] = (2.0, 12.0)  # seconds, drawn uniformly


class ServerUnreachable(Exception):
    """The server to feed does not answer (or is not provtrack), within the bounded wait."""


@dataclass(frozen=True, slots=True)
class Fed:
    """What a feed did: orders the server accepted (201), refused (with the last refusal's words)."""

    accepted: int
    refused: int
    last_refusal: str | None = None


def feed_orders(
    base_url: str,
    *,
    every: float,
    count: int | None,
    stop: threading.Event,
    seed: int | None = None,
    customer_orders: CustomerOrders | None = None,
    wait: float = 10.0,
    attempts: int = 3,
    token: str | None = None,
) -> Fed:
    """POST a demo order every `every` seconds until `stop` (or `count` orders answered), with the
    bearer `token` (orders:write). Waits at most `wait` seconds for the server to answer first, and
    gives up after `attempts` orders in a row that got no answer: ServerUnreachable says why.

    With `customer_orders`, each service order comes from a product order created there (named in
    its `orderRelationship`), and a share of those are cancelled there soon after: provtrack, told by
    the product ordering API, cancels the service orders (docs/cancellation.md)."""
    rng = random.Random(seed)
    accepted = refused = unanswered = 0
    last_refusal: str | None = None
    cancellations: list[tuple[float, str, str]] = []  # (when, product order id, reason)
    authorization = {"Authorization": f"Bearer {token}"} if token else {}
    with httpx.Client(base_url=base_url, timeout=10) as client:
        _wait_until_serving(client, stop, wait=wait)
        while not stop.is_set() and (count is None or accepted + refused < count):
            try:
                visit = datetime.now(UTC) + timedelta(seconds=rng.randint(10, 30))
                body = book_visits(demo_order(rng), visit)
                if customer_orders is not None:
                    body = _from_customer_order(client, body, rng, customer_orders, cancellations)
                response = client.post(ORDERS_PATH, json=body, headers=authorization)
                if customer_orders is not None:
                    _cancel_due(client, customer_orders, cancellations)
            except httpx.HTTPError as exc:
                unanswered += 1
                log.warning("demo order not sent", error=str(exc))
                if unanswered >= attempts:
                    raise ServerUnreachable(
                        f"{base_url} stopped answering ({unanswered} orders in a row): {exc}"
                    ) from None
                stop.wait(min(every, 1.0) * unanswered)
                continue
            unanswered = 0
            if response.status_code == 201:
                accepted += 1
            else:
                refused += 1
                last_refusal = _refusal(response)
                log.warning("demo order refused", status=response.status_code, reason=last_refusal)
            stop.wait(every)
    return Fed(accepted, refused, last_refusal)


def _refusal(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"{response.status_code}: {response.text[:200]}"
    if isinstance(body, dict) and "code" in body:
        return f"{response.status_code} {body['code']}: {body.get('message', '')}"
    return f"{response.status_code}: {response.text[:200]}"


def _from_customer_order(
    client: httpx.Client,
    body: dict[str, Any],
    rng: random.Random,
    customer_orders: CustomerOrders,
    cancellations: list[tuple[float, str, str]],
) -> dict[str, Any]:
    """The product order the service order comes from, created first; maybe cancelled later."""
    item = {"id": "1", "action": "add", "productOffering": {"id": body.get("description", "offer")}}
    response = client.post(f"{customer_orders.url}/productOrder", json={"productOrderItem": [item]})
    response.raise_for_status()
    product_order_id = str(response.json()["id"])
    if rng.random() < customer_orders.cancel_share:
        delay = rng.uniform(*customer_orders.cancel_after)
        reason = rng.choice(CANCELLATION_REASONS)
        cancellations.append((time.monotonic() + delay, product_order_id, reason))
    relationship = {"id": product_order_id, "relationshipType": "cross-ref", "@referredType": "ProductOrder"}
    return {**body, "orderRelationship": [relationship]}


def _cancel_due(
    client: httpx.Client, customer_orders: CustomerOrders, cancellations: list[tuple[float, str, str]]
) -> None:
    now = time.monotonic()
    for due in [c for c in cancellations if c[0] <= now]:
        cancellations.remove(due)
        _, product_order_id, reason = due
        client.post(
            f"{customer_orders.url}/cancelProductOrder",
            json={"productOrder": {"id": product_order_id}, "cancellationReason": reason},
        )
        log.info("demo customer order cancelled", product_order=product_order_id, reason=reason)


def _wait_until_serving(client: httpx.Client, stop: threading.Event, *, wait: float) -> None:
    """The feeder may start beside the server: wait (at most `wait` seconds) until it answers."""
    deadline = time.monotonic() + wait
    problem = "no answer"
    while not stop.is_set():
        try:
            health = client.get("/provtrack/v1/health")
            if health.status_code == 200:
                return
            problem = f"GET /provtrack/v1/health answered {health.status_code}: is it a provtrack server?"
        except httpx.HTTPError as exc:
            problem = str(exc) or type(exc).__name__
        if time.monotonic() >= deadline:
            raise ServerUnreachable(f"no provtrack answers at {client.base_url} after {wait:g} s ({problem})")
        stop.wait(0.1)
