"""`provtrack simulate`: TMF652 v4 resource ordering systems that behave like real ones.

Every system lives under its own prefix: `/{system}/tmf-api/resourceOrderingManagement/v4`
(`resourceOrder` GET/POST, `hub` POST/DELETE). An order is acknowledged, goes inProgress, and after
`delay` seconds completes, fails (`failure_rate`) or is held first (`hold_rate`, e.g. a truck roll).
Subscribers get ResourceOrderStateChangeEvent notifications at `{callback}/listener/...`: one per
state change, in order, each carrying the state it announces, ending in the order's final state.

A POST with an `externalId` the system has already seen returns the existing order (200), unless
`deduplicate` is off: then, like many real systems, it creates another order, and only provtrack's
look-up before a re-send (`GET resourceOrder?externalId=`, which the simulator answers) keeps a
retried POST from creating a second one. `hub/{id}` answers GET, so a subscriber can check its
subscription is still there. Faults for tests and demos: the next N POSTs answer 500, some resource
specifications are refused with 400, POST answers can be slow, and notifications can be sent before
the POST that created the order has answered.

`cancelResourceOrder` cancels an order under way (provtrack.simulator.resource_cancelling).
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
import structlog
from fastapi import FastAPI, Request
from starlette.responses import Response

from provtrack.simulator.controls import SimulatorControls
from provtrack.simulator.documents import JSON
from provtrack.simulator.documents import json_response as _json
from provtrack.simulator.documents import now_text as _now_text
from provtrack.simulator.resource_cancelling import CancelDesk

BASE = "/{system}/tmf-api/resourceOrderingManagement/v4"
INVENTORY = "/{system}/tmf-api/serviceInventory/v4"  # TMF638, when the simulator plays the inventory
log = structlog.get_logger("provtrack.simulator")


@dataclass
class Behaviour:
    delay: float = 0.0  # seconds from creation to the final state
    failure_rate: float = 0.0  # share of orders that end failed
    hold_rate: float = 0.0  # share of orders held (waiting on a truck roll) before they complete
    instant: bool = False  # with delay 0, the POST answer already carries the final state (one step)
    fail_posts: int = 0  # the next N POSTs answer 500 (then it is back to normal)
    lose_post_answers: int = 0  # the next N POSTs create their order, then answer 500 (outcome unknown)
    lose_cancel_answers: int = 0  # the next N cancelResourceOrder POSTs are carried out, then answer 500
    refuse_specs: list[str] = field(default_factory=list)  # resource specifications answered with 400
    post_latency: float = 0.0  # seconds a POST takes to answer, after the order is created
    notify_before_response: bool = False  # the POST answers after the first state change is sent
    deduplicate: bool = True  # a POST repeating an externalId gets the existing order, not a new one
    refuse_cancel: list[str] = field(default_factory=list)  # specifications whose orders cannot be cancelled
    cancel_delay: float = 0.0  # seconds from a cancelResourceOrder to the order cancelled
    spec_delay: dict[str, float] = field(default_factory=dict)  # `delay` of some resource specifications
    seed: int | None = None


Step = tuple[float, str, str | None]  # (seconds after creation, state, reason)


@dataclass
class SimulatedOrder:
    system: str
    document: dict[str, Any]
    created: float
    steps: list[Step]
    announced: int = 0  # steps already notified: a read never shows less than a notification did
    cancelled_at: float | None = None  # a cancelResourceOrder takes effect then

    def state_at(self, now: float) -> tuple[str, str | None]:
        if self.cancelled_at is not None and now >= self.cancelled_at:
            return "cancelled", "cancelled at the customer's request"
        state, reason = "acknowledged", None
        for index, (offset, step_state, step_reason) in enumerate(self.steps):
            if index < self.announced or now - self.created >= offset:
                state, reason = step_state, step_reason
        return state, reason


class ResourceOrderingSimulator(SimulatorControls):
    """`clock` and `sleep` are the monotonic clock and the sleep the order timelines run on; tests
    inject their own to walk timelines without waiting for time to pass."""

    def __init__(
        self,
        behaviour: Behaviour | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.behaviour = behaviour or Behaviour()
        self.clock = clock
        self.sleep = sleep
        self.rng = random.Random(self.behaviour.seed)
        self.orders: dict[tuple[str, str], SimulatedOrder] = {}
        self.by_external_id: dict[tuple[str, str], str] = {}
        self.subscribers: dict[str, dict[str, str]] = {}
        self.services: dict[tuple[str, str], dict[str, Any]] = {}  # TMF638 service inventory
        self.cancel_desk = CancelDesk(self)  # TMF652 cancelResourceOrder (resource_cancelling.py)
        self.cancellations = self.cancel_desk.cancellations
        self.posts_received = 0
        self.repeated_posts = 0  # POSTs answered with the order an earlier POST created (same externalId)
        self.notifications_sent = 0
        self.service_posts = 0  # TMF638 creates received
        self._ids = itertools.count(1)
        self._tasks: set[asyncio.Task[None]] = set()
        self._client: httpx.AsyncClient | None = None

    # --- queries, for tests and benchmarks -----------------------------------------------------

    def created(self, system: str | None = None) -> list[dict[str, Any]]:
        return [o.document for (s, _), o in self.orders.items() if system is None or s == system]

    # --- behaviour ------------------------------------------------------------------------------

    def _steps(self, spec: str | None) -> list[Step]:
        steps = self._timeline(spec)
        if self.behaviour.instant and self.behaviour.delay == 0:
            return [(0.0, *steps[-1][1:])]  # created at its final state: one change, announced once
        return steps

    def _timeline(self, spec: str | None) -> list[Step]:
        b = self.behaviour
        base = b.spec_delay.get(spec or "", b.delay)
        delay = max(0.0, base * (0.5 + self.rng.random()) if base else 0.0)
        roll = self.rng.random()
        if roll < b.failure_rate:
            reason = self.rng.choice(
                [f"no capacity for {spec}", "port already in use", "invalid address for this exchange"]
            )
            return [(delay / 2, "inProgress", None), (delay, "failed", reason)]
        if roll < b.failure_rate + b.hold_rate:
            return [
                (delay / 2, "inProgress", None),
                (delay, "held", "waiting for a truck roll"),
                (delay * 3, "inProgress", None),
                (delay * 4, "completed", None),
            ]
        return [(delay / 2, "inProgress", None), (delay, "completed", None)]

    def _view(self, order: SimulatedOrder) -> dict[str, Any]:
        return self._document(order, *order.state_at(self.clock()))

    def _document(self, order: SimulatedOrder, state: str, reason: str | None) -> dict[str, Any]:
        document = dict(order.document)
        document["state"] = state
        item_state = (
            "completed" if state == "completed" else ("inProgress" if state != "acknowledged" else state)
        )
        # New item dicts: the stored ones are shared by every view and must not change under a sent one.
        document["orderItem"] = [{**item, "state": item_state} for item in document.get("orderItem") or []]
        if reason:
            document["note"] = [*document.get("note", []), {"date": _now_text(), "text": reason}]
        if state == "completed":
            document.setdefault("completionDate", _now_text())
        return document

    # --- HTTP -----------------------------------------------------------------------------------

    def app(self) -> FastAPI:
        @asynccontextmanager
        async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
            yield
            await self.close()

        app = FastAPI(
            title="provtrack simulator: TMF652 resource ordering", docs_url="/docs", lifespan=lifespan
        )
        app.add_api_route(f"{BASE}/resourceOrder", self.create_order, methods=["POST"], status_code=201)
        app.add_api_route(f"{BASE}/resourceOrder", self.list_orders, methods=["GET"])
        app.add_api_route(f"{BASE}/resourceOrder/{{order_id}}", self.get_order, methods=["GET"])
        desk = self.cancel_desk
        app.add_api_route(f"{BASE}/cancelResourceOrder", desk.cancel_order, methods=["POST"], status_code=201)
        app.add_api_route(f"{BASE}/cancelResourceOrder", desk.list_cancellations, methods=["GET"])
        app.add_api_route(f"{BASE}/cancelResourceOrder/{{task_id}}", desk.get_cancellation, methods=["GET"])
        app.add_api_route(f"{BASE}/hub", self.subscribe, methods=["POST"], status_code=201)
        app.add_api_route(f"{BASE}/hub/{{hub_id}}", self.get_subscription, methods=["GET"])
        app.add_api_route(f"{BASE}/hub/{{hub_id}}", self.unsubscribe, methods=["DELETE"], status_code=204)
        app.add_api_route(f"{INVENTORY}/service", self.create_service, methods=["POST"], status_code=201)
        app.add_api_route(f"{INVENTORY}/service", self.list_services, methods=["GET"])
        app.add_api_route(f"{INVENTORY}/service/{{service_id}}", self.get_service, methods=["GET"])
        app.add_api_route(f"{INVENTORY}/service/{{service_id}}", self.update_service, methods=["PATCH"])
        app.add_api_route("/simulator/behaviour", self.get_behaviour, methods=["GET"])
        app.add_api_route("/simulator/behaviour", self.set_behaviour, methods=["PUT"])
        app.add_api_route("/simulator/stats", self.stats, methods=["GET"])
        return app

    async def create_order(self, system: str, request: Request) -> Response:
        self.posts_received += 1
        b = self.behaviour
        if b.fail_posts > 0:
            b.fail_posts -= 1
            return _json({"code": "500", "reason": "Internal error", "message": "simulated outage"}, 500)
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            return _json({"code": "400", "reason": "Bad request", "message": "the body is not JSON"}, 400)
        if not isinstance(body, dict) or not body.get("orderItem"):
            return _json({"code": "400", "reason": "Bad request", "message": "orderItem is required"}, 400)
        external_id = body.get("externalId")
        if b.deduplicate and external_id and (system, external_id) in self.by_external_id:
            existing = self.orders[(system, self.by_external_id[(system, external_id)])]
            self.repeated_posts += 1
            return _json(self._view(existing), 200)
        spec = ((body["orderItem"][0].get("resource") or {}).get("resourceSpecification") or {}).get("id")
        if spec in b.refuse_specs:
            message = f"resource specification {spec} is not orderable here"
            return _json({"code": "INVALID_VALUE", "reason": "Bad request", "message": message}, 400)
        order_id = f"{system[:3].upper()}-{next(self._ids):06d}-{uuid.uuid4().hex[:4]}"
        document = {
            **body,
            "id": order_id,
            "href": f"{str(request.base_url).rstrip('/')}{request.url.path}/{order_id}",
            "orderDate": _now_text(),
            "state": "acknowledged",
        }
        order = SimulatedOrder(system, document, self.clock(), self._steps(spec))
        self.orders[(system, order_id)] = order
        if external_id:
            self.by_external_id[(system, external_id)] = order_id
        if self.subscribers.get(system):
            if b.notify_before_response:
                await self._follow(system, order, first_only=True)
            self._spawn(self._follow(system, order))
        if b.post_latency:
            await asyncio.sleep(b.post_latency)  # created already: a client that gives up may POST again
        if b.lose_post_answers > 0:
            b.lose_post_answers -= 1
            return _json({"code": "500", "reason": "Internal error", "message": "simulated lost answer"}, 500)
        return _json(self._view(order) if b.instant else document, 201)

    async def list_orders(self, system: str, request: Request) -> Response:
        """The system's orders; `externalId=` (TMF630 filtering) selects those a client sent with it."""
        external_id = request.query_params.get("externalId")
        return _json(
            [
                self._view(o)
                for (s, _), o in self.orders.items()
                if s == system and external_id in (None, o.document.get("externalId"))
            ]
        )

    async def get_order(self, system: str, order_id: str) -> Response:
        order = self.orders.get((system, order_id))
        if order is None:
            return _json(
                {"code": "404", "reason": "Not found", "message": f"no resource order {order_id}"}, 404
            )
        return _json(self._view(order))

    async def subscribe(self, system: str, request: Request) -> Response:
        body = orjson.loads(await request.body())
        callback = body.get("callback") if isinstance(body, dict) else None
        if not isinstance(callback, str):
            return _json({"code": "400", "reason": "Bad request", "message": "callback is required"}, 400)
        hub_id = uuid.uuid4().hex[:12]
        self.subscribers.setdefault(system, {})[hub_id] = callback
        return _json({"id": hub_id, "callback": callback, "query": body.get("query")}, 201)

    async def get_subscription(self, system: str, hub_id: str) -> Response:
        callback = self.subscribers.get(system, {}).get(hub_id)
        if callback is None:
            return _json({"code": "404", "reason": "Not found", "message": f"no subscription {hub_id}"}, 404)
        return _json({"id": hub_id, "callback": callback})

    async def unsubscribe(self, system: str, hub_id: str) -> Response:
        self.subscribers.get(system, {}).pop(hub_id, None)
        return Response(status_code=204)

    # --- TMF638 service inventory ---------------------------------------------------------------

    async def create_service(self, system: str, request: Request) -> Response:
        self.service_posts += 1
        body = orjson.loads(await request.body())
        if not isinstance(body, dict):
            return _json(
                {"code": "400", "reason": "Bad request", "message": "a Service object is expected"}, 400
            )
        for existing in self.services.values():
            # The same order item creating its service again gets the one it created.
            if body.get("serviceOrderItem") and existing.get("serviceOrderItem") == body["serviceOrderItem"]:
                return _json(existing, 200)
        service_id = f"svc-{uuid.uuid4().hex[:10]}"
        href = f"{str(request.base_url).rstrip('/')}{request.url.path}/{service_id}"
        document = {**body, "id": service_id, "href": href}
        self.services[(system, service_id)] = document
        return _json(document, 201)

    async def list_services(self, system: str, request: Request) -> Response:
        """The inventory's services; `serviceOrderItem.serviceOrderId=` and `serviceOrderItem.itemId=`
        select those an order item created."""
        order_id = request.query_params.get("serviceOrderItem.serviceOrderId")
        item_id = request.query_params.get("serviceOrderItem.itemId")

        def selected(service: dict[str, Any]) -> bool:
            return any(
                order_id in (None, r.get("serviceOrderId")) and item_id in (None, r.get("itemId"))
                for r in service.get("serviceOrderItem") or [{}]
            )

        return _json([d for (s, _), d in self.services.items() if s == system and selected(d)])

    async def get_service(self, system: str, service_id: str) -> Response:
        service = self.services.get((system, service_id))
        if service is None:
            return _json({"code": "404", "reason": "Not found", "message": f"no service {service_id}"}, 404)
        return _json(service)

    async def update_service(self, system: str, service_id: str, request: Request) -> Response:
        # A service the simulator has not seen existed before it started: it is known from now on.
        service = self.services.setdefault((system, service_id), {"id": service_id, "state": "active"})
        service.setdefault("href", f"{str(request.base_url).rstrip('/')}{request.url.path}")
        changes = orjson.loads(await request.body())
        service.update({k: v for k, v in changes.items() if k not in ("id", "href")})
        return _json(service)

    async def stats(self) -> Response:
        return _json(
            {
                "postsReceived": self.posts_received,
                "ordersCreated": len(self.orders),
                "repeatedPosts": self.repeated_posts,
                "notificationsSent": self.notifications_sent,
                "cancelPostsReceived": self.cancel_desk.posts_received,
                "cancellations": len(self.cancellations),
            }
        )

    # --- notifications --------------------------------------------------------------------------

    async def _follow(self, system: str, order: SimulatedOrder, *, first_only: bool = False) -> None:
        """Announce the order's steps not yet announced, each at its time, in order.

        Each notification carries the state of the step it announces, never the state the clock shows
        when it is sent: a timer may fire early (uvloop rounds to whole milliseconds against a loop time
        cached at the start of its iteration) or a slow subscriber may make a step late, and either
        must neither skip a state nor send one twice. With `first_only`, stop after the first step
        and those already due with it (the rest are for a follow task).
        """
        while order.announced < len(order.steps):
            offset, state, reason = order.steps[order.announced]
            wait = order.created + offset - self.clock()
            if wait > 0:
                if first_only and order.announced > 0:
                    return
                await self.sleep(wait)
            if order.cancelled_at is not None and order.created + offset >= order.cancelled_at:
                return  # cancelled before this step: the cancellation is announced instead
            order.announced += 1
            await self._notify(system, self._document(order, state, reason))

    async def _notify(
        self, system: str, resource_order: dict[str, Any], *, resource: str = "resourceOrder"
    ) -> None:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=5.0)
        event_type = f"{resource[0].upper()}{resource[1:]}StateChangeEvent"
        event = {
            "eventId": uuid.uuid4().hex,
            "eventTime": _now_text(),
            "eventType": event_type,
            "event": {resource: resource_order},
        }
        content = orjson.dumps(event)  # one body for every subscriber
        for callback in list(self.subscribers.get(system, {}).values()):
            try:
                await self._client.post(
                    f"{callback}/listener/{resource}StateChangeEvent",
                    content=content,
                    headers={"content-type": JSON},
                )
                self.notifications_sent += 1
            except httpx.HTTPError as exc:
                log.warning("notification not delivered", callback=callback, error=str(exc))

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._client is not None:
            await self._client.aclose()
