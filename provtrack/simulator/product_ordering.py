"""A simulated TMF622 v4 product ordering API (the customer order system), for tests and the demo.

`productOrder` (POST, GET, GET by id), `cancelProductOrder` (POST, GET, `?productOrder.id=`, GET
by id) and `hub` (POST, DELETE) under `/tmf-api/productOrderingManagement/v4`. A cancellation moves the product order to
`assessingCancellation` and its task is `acknowledged` (CancelProductOrderCreateEvent,
ProductOrderStateChangeEvent); `cancel_delay` seconds later the product order is `cancelled` and the
task `done` (CancelProductOrderStateChangeEvent, ProductOrderStateChangeEvent). Subscribers get each
event at `{callback}/listener/<eventName>`. What customer order systems really do, on demand: every
event delivered `repeat` times, and a cancellation's events delivered `out_of_order` (all at the end,
newest first).
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
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

BASE = "/tmf-api/productOrderingManagement/v4"
MOUNT = "/productOrdering"  # where `provtrack simulate --product-orders` serves it
FINAL = frozenset({"completed", "cancelled", "failed", "partial", "rejected"})
log = structlog.get_logger("provtrack.simulator.tmf622")


@dataclass
class ProductOrderingBehaviour:
    cancel_delay: float = 0.0  # seconds from a cancelProductOrder to the product order cancelled
    repeat: int = 1  # every event is delivered this many times
    out_of_order: bool = False  # a cancellation's events are delivered at its end, newest first


def _not_found(what: str) -> Response:
    return _json({"code": "404", "reason": "Not found", "message": f"no {what}"}, 404)


class ProductOrderingSimulator(SimulatorControls):
    def __init__(
        self,
        behaviour: ProductOrderingBehaviour | None = None,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.behaviour = behaviour or ProductOrderingBehaviour()
        self.sleep = sleep
        self.orders: dict[str, dict[str, Any]] = {}
        self.cancellations: dict[str, dict[str, Any]] = {}
        self.subscribers: dict[str, str] = {}
        self.notifications_sent = 0
        self._ids = itertools.count(1)
        self._tasks: set[asyncio.Task[None]] = set()

    def app(self) -> FastAPI:
        @asynccontextmanager
        async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
            yield
            await self.close()

        app = FastAPI(
            title="provtrack simulator: TMF622 product ordering", docs_url="/docs", lifespan=lifespan
        )
        app.add_api_route(f"{BASE}/productOrder", self.create_order, methods=["POST"], status_code=201)
        app.add_api_route(f"{BASE}/productOrder", self.list_orders, methods=["GET"])
        app.add_api_route(f"{BASE}/productOrder/{{order_id}}", self.get_order, methods=["GET"])
        app.add_api_route(f"{BASE}/cancelProductOrder", self.cancel_order, methods=["POST"], status_code=201)
        app.add_api_route(f"{BASE}/cancelProductOrder", self.list_cancellations, methods=["GET"])
        app.add_api_route(f"{BASE}/cancelProductOrder/{{task_id}}", self.get_cancellation, methods=["GET"])
        app.add_api_route(f"{BASE}/hub", self.subscribe, methods=["POST"], status_code=201)
        app.add_api_route(f"{BASE}/hub/{{hub_id}}", self.unsubscribe, methods=["DELETE"], status_code=204)
        app.add_api_route("/simulator/behaviour", self.get_behaviour, methods=["GET"])
        app.add_api_route("/simulator/behaviour", self.set_behaviour, methods=["PUT"])
        return app

    # --- product orders -------------------------------------------------------------------------

    async def create_order(self, request: Request) -> Response:
        body = orjson.loads(await request.body() or b"{}")
        if not isinstance(body, dict) or not body.get("productOrderItem"):
            return _json(
                {"code": "400", "reason": "Bad request", "message": "productOrderItem is required"}, 400
            )
        order_id = f"PO-{next(self._ids):06d}"
        document = {
            **body,
            "id": order_id,
            "href": f"{str(request.base_url).rstrip('/')}{request.url.path}/{order_id}",
            "orderDate": _now_text(),
            "state": "inProgress",
            "@type": "ProductOrder",
        }
        self.orders[order_id] = document
        return _json(document, 201)

    async def list_orders(self) -> Response:
        return _json(list(self.orders.values()))

    async def get_order(self, order_id: str) -> Response:
        order = self.orders.get(order_id)
        return _json(order) if order is not None else _not_found(f"product order {order_id}")

    def complete(self, order_id: str) -> None:
        """The customer order is delivered (tests, the demo): it can no longer be cancelled."""
        self.orders[order_id]["state"] = "completed"

    # --- cancellation ---------------------------------------------------------------------------

    async def cancel_order(self, request: Request) -> Response:
        body = orjson.loads(await request.body() or b"{}")
        ref = body.get("productOrder") if isinstance(body, dict) else None
        order = self.orders.get(str(ref.get("id"))) if isinstance(ref, dict) else None
        if order is None:
            return _not_found(f"product order {ref}")
        task_id = f"CPO-{next(self._ids):06d}"
        task = {
            **body,
            "id": task_id,
            "href": f"{str(request.base_url).rstrip('/')}{request.url.path}/{task_id}",
            "state": "acknowledged",
            "@type": "CancelProductOrder",
        }
        self.cancellations[task_id] = task
        if order["state"] in FINAL:
            task["state"] = "terminatedWithError"
            events = [("CancelProductOrderCreateEvent", "cancelProductOrder", dict(task))]
        else:
            order["state"] = "assessingCancellation"
            events = [
                ("CancelProductOrderCreateEvent", "cancelProductOrder", dict(task)),
                ("ProductOrderStateChangeEvent", "productOrder", dict(order)),
            ]
        self._spawn(self._carry_out(order, task, events))
        return _json(task, 201)

    async def _carry_out(
        self, order: dict[str, Any], task: dict[str, Any], events: list[tuple[str, str, dict[str, Any]]]
    ) -> None:
        if not self.behaviour.out_of_order:
            await self._announce(events)
            events = []
        if task["state"] == "acknowledged":
            if self.behaviour.cancel_delay > 0:
                await self.sleep(self.behaviour.cancel_delay)
            order["state"] = "cancelled"
            order["cancellationDate"] = _now_text()
            order["cancellationReason"] = task.get("cancellationReason") or "cancelled by the customer"
            task["state"] = "done"
            task["effectiveCancellationDate"] = order["cancellationDate"]
            events += [
                ("CancelProductOrderStateChangeEvent", "cancelProductOrder", dict(task)),
                ("ProductOrderStateChangeEvent", "productOrder", dict(order)),
            ]
        await self._announce(list(reversed(events)) if self.behaviour.out_of_order else events)

    async def list_cancellations(self, request: Request) -> Response:
        order_id = request.query_params.get("productOrder.id")
        return _json(
            [
                t
                for t in self.cancellations.values()
                if order_id in (None, (t.get("productOrder") or {}).get("id"))
            ]
        )

    async def get_cancellation(self, task_id: str) -> Response:
        task = self.cancellations.get(task_id)
        return _json(task) if task is not None else _not_found(f"cancelProductOrder {task_id}")

    # --- hub and events -------------------------------------------------------------------------

    async def subscribe(self, request: Request) -> Response:
        body = orjson.loads(await request.body() or b"{}")
        callback = body.get("callback") if isinstance(body, dict) else None
        if not isinstance(callback, str):
            return _json({"code": "400", "reason": "Bad request", "message": "callback is required"}, 400)
        hub_id = uuid.uuid4().hex[:12]
        self.subscribers[hub_id] = callback
        return _json({"id": hub_id, "callback": callback, "query": body.get("query")}, 201)

    async def unsubscribe(self, hub_id: str) -> Response:
        self.subscribers.pop(hub_id, None)
        return Response(status_code=204)

    async def _announce(self, events: list[tuple[str, str, dict[str, Any]]]) -> None:
        # A client per announcement: mounted in another app (`serve --demo`), no lifespan closes one.
        async with httpx.AsyncClient(timeout=5.0) as client:
            for event_type, resource, document in events:
                for _ in range(max(1, self.behaviour.repeat)):
                    await self._notify(client, event_type, resource, document)

    async def _notify(
        self, client: httpx.AsyncClient, event_type: str, resource: str, document: dict[str, Any]
    ) -> None:
        event = {
            "eventId": uuid.uuid4().hex,
            "eventTime": _now_text(),
            "eventType": event_type,
            "event": {resource: document},
        }
        listener = event_type[0].lower() + event_type[1:]
        for callback in list(self.subscribers.values()):
            try:
                await client.post(
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
