"""`provtrack simulate --mode partner`: other parties taking TMF641 service orders, as they behave.

Every partner lives under its own prefix, `/{partner}/tmf-api/serviceOrdering/v4` (`serviceOrder`
GET (with `?externalId=`) and POST, `cancelServiceOrder` (provtrack.simulator.partner_cancelling),
`hub` POST/GET/DELETE). Its orders move through their states on a timeline of simulated days,
compressed by `day_seconds` (real seconds per day), and every subscriber hears of each step at
`{callback}/listener/<eventName>`: state changes, milestones, jeopardy alerts, cancellations.

How a partner behaves follows its name (docs/coordination.md): `logistics` picks, ships and
delivers in about two days; `wholesale-access` takes ten, sometimes holds an order for a site
survey and sometimes raises a jeopardy with a later date; `donor-operator` ports a number in a day
and a half, or rejects it; any other name completes in a day. Faults for tests and demos: POSTs that
fail before or after creating the order, an unreachable hub, a required bearer token.
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
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import structlog
from fastapi import FastAPI, Request
from starlette.responses import Response

from provtrack.simulator.controls import SimulatorControls
from provtrack.simulator.partner_cancelling import PartnerCancelDesk

BASE = "/{partner}/tmf-api/serviceOrdering/v4"
JSON = "application/json;charset=utf-8"
log = structlog.get_logger("provtrack.simulator.partners")


@dataclass
class PartnerBehaviour:
    day_seconds: float = 5.0  # real seconds per simulated day
    hold_rate: float = 0.3  # wholesale-access: share of orders held for a site survey
    jeopardy_rate: float = 0.3  # wholesale-access: share that raise a jeopardy with a later date
    failure_rate: float = 0.1  # donor-operator: share of port-ins the donor rejects; others: fail
    hub_unreachable: bool = False  # POST /hub answers 503 and no notification is sent
    fail_posts: int = 0  # the next N POSTs answer 503 without creating anything
    fail_after_create: int = 0  # the next N POSTs create the order, then answer 503 (outcome unknown)
    tokens: dict[str, str] = field(default_factory=dict)  # partner -> bearer token it requires
    seed: int | None = None
    # cancelServiceOrder (partner_cancelling.py): partners that refuse to cancel an order under way
    # (the task ends terminatedWithError, or with `refuse_cancel_status` that HTTP answer instead);
    # seconds from a cancel to its outcome (announced); the next N cancels carried out, answered 500.
    refuse_cancel: list[str] = field(default_factory=list)
    refuse_cancel_status: int | None = None
    cancel_delay: float = 0.0
    lose_cancel_answers: int = 0


@dataclass(frozen=True, slots=True)
class Step:
    """One moment of a partner order's life, `day` simulated days after it was received."""

    day: float
    state: str | None = None  # a new state, or None for a milestone or jeopardy alone
    reason: str | None = None
    milestone: str | None = None
    jeopardy: str | None = None
    expected_days: float | None = None  # a new expectedCompletionDate, days after creation


@dataclass
class PartnerOrder:
    partner: str
    document: dict[str, Any]
    created: float  # on the simulator's clock
    created_at: datetime  # wall clock, for the dates in documents
    steps: list[Step]
    expected_days: float
    announced: int = 0  # steps already notified: a read never shows less
    cancelled_after: int | None = None  # cancelled once this many steps had happened


def _now_text(at: datetime | None = None) -> str:
    now = at or datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def _json(content: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(content), status_code=status, media_type=JSON)


def _error(status: int, reason: str, message: str) -> Response:
    return _json({"code": str(status), "reason": reason, "message": message, "status": str(status)}, status)


class PartnerOrderingSimulator(SimulatorControls):
    """`clock` and `sleep` run the timelines, `wall` dates the documents; tests inject their own to
    walk the timelines without waiting."""

    def __init__(
        self,
        behaviour: PartnerBehaviour | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.behaviour = behaviour or PartnerBehaviour()
        self.clock = clock
        self.sleep = sleep
        self.wall = wall
        self.rng = random.Random(self.behaviour.seed)
        self.orders: dict[tuple[str, str], PartnerOrder] = {}
        self.subscribers: dict[str, dict[str, str]] = {}
        self.posts_received = 0
        self.lookups = 0
        self.notifications_sent = 0
        self.profiles: dict[str, Callable[[], tuple[list[Step], float]]] = {
            "logistics": self._logistics,
            "wholesale-access": self._wholesale,
            "donor-operator": self._donor,
        }
        self._ids = itertools.count(1)
        self._tasks: set[asyncio.Task[None]] = set()
        self._client: httpx.AsyncClient | None = None
        self.cancel_desk = PartnerCancelDesk(self)
        self.cancellations = self.cancel_desk.cancellations

    def created(self, partner: str | None = None) -> list[dict[str, Any]]:
        return [o.document for (p, _), o in self.orders.items() if partner is None or p == partner]

    # --- how each partner behaves ---------------------------------------------------------------

    def _logistics(self) -> tuple[list[Step], float]:
        return [
            Step(0.1, "inProgress", milestone="picked"),
            Step(0.5, milestone="shipped"),
            Step(1.5, milestone="outForDelivery"),
            Step(2.0, "completed", milestone="delivered"),
        ], 2.0

    def _wholesale(self) -> tuple[list[Step], float]:
        b = self.behaviour
        steps = [Step(0.5, "inProgress", milestone="orderAccepted")]
        day = 0.5
        if self.rng.random() < b.hold_rate:
            steps += [Step(2.0, "held", reason="waiting for a site survey"), Step(4.0, "inProgress")]
            day = 4.0
        steps.append(Step(day + 1.0, milestone="circuitDesigned"))
        end = 10.0
        if self.rng.random() < b.jeopardy_rate:
            end = 13.0
            steps.append(Step(day + 2.0, jeopardy="civil works delayed", expected_days=end))
        steps.append(Step(end, "completed", milestone="circuitHandedOver"))
        return steps, 10.0

    def _donor(self) -> tuple[list[Step], float]:
        if self.rng.random() < self.behaviour.failure_rate:
            reason = self.rng.choice(
                ["the number is not held by this customer", "an open debt blocks the port"]
            )
            return [
                Step(0.2, "inProgress"),
                Step(1.0, "failed", reason=f"the donor operator rejected the port: {reason}"),
            ], 1.5
        return [
            Step(0.2, "inProgress"),
            Step(1.0, milestone="portingWindowConfirmed"),
            Step(1.5, "completed"),
        ], 1.5

    def _default(self) -> tuple[list[Step], float]:
        if self.rng.random() < self.behaviour.failure_rate:
            return [Step(0.2, "inProgress"), Step(1.0, "failed", reason="the partner could not deliver")], 1.0
        return [Step(0.2, "inProgress"), Step(1.0, "completed")], 1.0

    # --- views ----------------------------------------------------------------------------------

    def _due(self, order: PartnerOrder, now: float) -> int:
        """How many steps have happened by `now` (never fewer than were announced)."""
        elapsed_days = (
            (now - order.created) / self.behaviour.day_seconds if self.behaviour.day_seconds else 1e9
        )
        reached = sum(1 for s in order.steps if s.day <= elapsed_days)
        return max(reached, order.announced)

    def _document(self, order: PartnerOrder, steps: int) -> dict[str, Any]:
        document = dict(order.document)
        state, expected = "acknowledged", order.expected_days
        milestones: list[dict[str, Any]] = []
        alerts: list[dict[str, Any]] = []
        notes: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        for index, step in enumerate(order.steps[:steps]):
            at = _now_text(order.created_at + timedelta(seconds=step.day * self.behaviour.day_seconds))
            if step.state:
                state = step.state
            if step.reason:
                notes.append({"date": at, "text": step.reason})
                errors.append(
                    {"code": state, "reason": step.state or "", "message": step.reason, "timestamp": at}
                )
            if step.milestone:
                milestones.append(
                    {"id": str(index + 1), "name": step.milestone, "milestoneDate": at, "status": "reached"}
                )
            if step.jeopardy:
                alerts.append(
                    {
                        "id": str(index + 1),
                        "name": step.jeopardy,
                        "jeopardyType": "atRisk",
                        "alertDate": at,
                        "message": step.jeopardy,
                    }
                )
            if step.expected_days is not None:
                expected = step.expected_days
        document["state"] = state
        ecd = order.created_at + timedelta(seconds=expected * self.behaviour.day_seconds)
        document["expectedCompletionDate"] = _now_text(ecd)
        item_state = state if state in ("completed", "failed", "acknowledged") else "inProgress"
        document["serviceOrderItem"] = [
            {**i, "state": item_state} for i in document.get("serviceOrderItem") or []
        ]
        for name, values in (
            ("milestone", milestones),
            ("jeopardyAlert", alerts),
            ("note", notes),
            ("errorMessage", errors),
        ):
            if values:
                document[name] = values
        if state == "completed":
            document["completionDate"] = _now_text(
                order.created_at + timedelta(seconds=order.steps[-1].day * self.behaviour.day_seconds)
            )
        return document

    def _view(self, order: PartnerOrder) -> dict[str, Any]:
        if order.cancelled_after is None:
            return self._document(order, self._due(order, self.clock()))
        document = self._document(order, order.cancelled_after)
        document["state"] = "cancelled"
        document["serviceOrderItem"] = [
            {**i, "state": "cancelled"} for i in document.get("serviceOrderItem") or []
        ]
        document["note"] = [*document.get("note", []), {"text": "cancelled at the customer's request"}]
        return document

    # --- HTTP -----------------------------------------------------------------------------------

    def app(self) -> FastAPI:
        @asynccontextmanager
        async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
            yield
            await self.close()

        app = FastAPI(title="provtrack simulator: TMF641 partners", docs_url="/docs", lifespan=lifespan)
        app.add_api_route(f"{BASE}/serviceOrder", self.create_order, methods=["POST"], status_code=201)
        app.add_api_route(f"{BASE}/serviceOrder", self.list_orders, methods=["GET"])
        app.add_api_route(f"{BASE}/serviceOrder/{{order_id}}", self.get_order, methods=["GET"])
        desk = self.cancel_desk
        app.add_api_route(f"{BASE}/cancelServiceOrder", desk.cancel_order, methods=["POST"], status_code=201)
        app.add_api_route(f"{BASE}/cancelServiceOrder", desk.list_cancellations, methods=["GET"])
        app.add_api_route(f"{BASE}/cancelServiceOrder/{{task_id}}", desk.get_cancellation, methods=["GET"])
        app.add_api_route(f"{BASE}/hub", self.subscribe, methods=["POST"], status_code=201)
        app.add_api_route(f"{BASE}/hub/{{hub_id}}", self.get_subscription, methods=["GET"])
        app.add_api_route(f"{BASE}/hub/{{hub_id}}", self.unsubscribe, methods=["DELETE"], status_code=204)
        app.add_api_route("/simulator/behaviour", self.get_behaviour, methods=["GET"])
        app.add_api_route("/simulator/behaviour", self.set_behaviour, methods=["PUT"])
        app.add_api_route("/simulator/stats", self.stats, methods=["GET"])
        return app

    def _refused(self, partner: str, request: Request) -> Response | None:
        token = self.behaviour.tokens.get(partner)
        if token and request.headers.get("authorization") != f"Bearer {token}":
            return _error(401, "Unauthorized", f"{partner} wants its bearer token")
        return None

    async def create_order(self, partner: str, request: Request) -> Response:
        if refused := self._refused(partner, request):
            return refused
        self.posts_received += 1
        b = self.behaviour
        if b.fail_posts > 0:
            b.fail_posts -= 1
            return _error(503, "Service unavailable", "simulated outage")
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            return _error(400, "Bad request", "the body is not JSON")
        if not isinstance(body, dict) or not body.get("serviceOrderItem"):
            return _error(400, "Bad request", "serviceOrderItem is required")
        order_id = f"{partner[:3].upper()}-SO-{next(self._ids):05d}-{uuid.uuid4().hex[:4]}"
        document = {
            **body,
            "id": order_id,
            "href": f"{str(request.base_url).rstrip('/')}{request.url.path}/{order_id}",
            "orderDate": _now_text(self.wall()),
            "state": "acknowledged",
        }
        steps, expected = self.profiles.get(partner, self._default)()
        order = PartnerOrder(partner, document, self.clock(), self.wall(), steps, expected)
        self.orders[(partner, order_id)] = order
        if self.subscribers.get(partner) and not b.hub_unreachable:
            self._spawn(self._follow(partner, order))
        if b.fail_after_create > 0:
            b.fail_after_create -= 1
            return _error(503, "Service unavailable", "simulated failure after the order was created")
        return _json(self._view(order), 201)

    async def list_orders(self, partner: str, request: Request) -> Response:
        if refused := self._refused(partner, request):
            return refused
        self.lookups += 1
        wanted = request.query_params.get("externalId")
        found = [
            self._view(o)
            for (p, _), o in self.orders.items()
            if p == partner and (wanted is None or o.document.get("externalId") == wanted)
        ]
        return _json(found)

    async def get_order(self, partner: str, order_id: str, request: Request) -> Response:
        if refused := self._refused(partner, request):
            return refused
        order = self.orders.get((partner, order_id))
        if order is None:
            return _error(404, "Not found", f"no service order {order_id}")
        return _json(self._view(order))

    async def subscribe(self, partner: str, request: Request) -> Response:
        if refused := self._refused(partner, request):
            return refused
        if self.behaviour.hub_unreachable:
            return _error(503, "Service unavailable", "the hub is down")
        body = orjson.loads(await request.body())
        callback = body.get("callback") if isinstance(body, dict) else None
        if not isinstance(callback, str):
            return _error(400, "Bad request", "callback is required")
        hub_id = uuid.uuid4().hex[:12]
        self.subscribers.setdefault(partner, {})[hub_id] = callback
        return _json({"id": hub_id, "callback": callback, "query": body.get("query")}, 201)

    async def get_subscription(self, partner: str, hub_id: str) -> Response:
        callback = self.subscribers.get(partner, {}).get(hub_id)
        if callback is None:
            return _error(404, "Not found", f"no subscription {hub_id}")
        return _json({"id": hub_id, "callback": callback})

    async def unsubscribe(self, partner: str, hub_id: str) -> Response:
        self.subscribers.get(partner, {}).pop(hub_id, None)
        return Response(status_code=204)

    async def stats(self) -> Response:
        return _json(
            {
                "postsReceived": self.posts_received,
                "ordersCreated": len(self.orders),
                "lookups": self.lookups,
                "notificationsSent": self.notifications_sent,
                "cancelPostsReceived": self.cancel_desk.posts_received,
                "cancellations": len(self.cancellations),
            }
        )

    # --- notifications --------------------------------------------------------------------------

    async def _follow(self, partner: str, order: PartnerOrder) -> None:
        """Announce each step at its time, in order: a state change, a milestone, a jeopardy."""
        while order.announced < len(order.steps):
            step = order.steps[order.announced]
            wait = order.created + step.day * self.behaviour.day_seconds - self.clock()
            if wait > 0:
                await self.sleep(wait)
            if order.cancelled_after is not None:
                return  # cancelled meanwhile: the cancellation is announced instead
            order.announced += 1
            if self.behaviour.hub_unreachable:
                continue
            document = self._document(order, order.announced)
            for event_type, happened in (
                ("ServiceOrderStateChangeEvent", step.state),
                ("ServiceOrderMilestoneEvent", step.milestone),
                ("ServiceOrderJeopardyEvent", step.jeopardy),
            ):
                if happened:
                    await self._notify(partner, event_type, document)

    async def _notify(
        self, partner: str, event_type: str, document: dict[str, Any], resource: str = "serviceOrder"
    ) -> None:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=5.0)
        event = {
            "eventId": uuid.uuid4().hex,
            "eventTime": _now_text(),
            "eventType": event_type,
            "event": {resource: document},
        }
        listener = event_type[0].lower() + event_type[1:]
        for callback in list(self.subscribers.get(partner, {}).values()):
            try:
                await self._client.post(
                    f"{callback}/listener/{listener}",
                    content=orjson.dumps(event),
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
