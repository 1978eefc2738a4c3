"""The cancelResourceOrder desk of the simulated TMF652 systems (provtrack.simulator.resource_ordering).

`cancelResourceOrder` (POST, GET, GET by id, `?resourceOrder.id=`) cancels an order under way: at
once, or `cancel_delay` seconds later (the task answers `acknowledged`, then the order goes
`cancelled`, the task `done`, and both are announced). An order already finished, or of a resource
specification in `refuse_cancel`, gets a task `terminatedWithError` saying why. A second POST for the
same order returns the task it already has (200) unless that one was refused. `lose_cancel_answers`
carries the next N out and answers 500, as a system that failed after acting would.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
from fastapi import Request
from starlette.responses import Response

from provtrack.simulator.documents import json_response as _json
from provtrack.simulator.documents import now_text as _now_text

if TYPE_CHECKING:
    from provtrack.simulator.resource_ordering import ResourceOrderingSimulator, SimulatedOrder


@dataclass
class SimulatedCancellation:
    system: str
    document: dict[str, Any]
    due: float | None  # when the order is cancelled (None: refused)

    def state_at(self, now: float) -> str:
        if self.due is not None and now >= self.due:
            return "done"
        return str(self.document["state"])


class CancelDesk:
    """Part of the simulator: its orders, behaviour, clock and subscribers are the simulator's."""

    def __init__(self, simulator: ResourceOrderingSimulator) -> None:
        self.sim = simulator
        self.cancellations: dict[tuple[str, str], SimulatedCancellation] = {}
        self.posts_received = 0

    async def cancel_order(self, system: str, request: Request) -> Response:
        self.posts_received += 1
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            return _json({"code": "400", "reason": "Bad request", "message": "the body is not JSON"}, 400)
        ref = body.get("resourceOrder") if isinstance(body, dict) else None
        order_id = ref.get("id") if isinstance(ref, dict) else None
        if not order_id:
            return _json(
                {"code": "400", "reason": "Bad request", "message": "resourceOrder.id is required"}, 400
            )
        order = self.sim.orders.get((system, str(order_id)))
        if order is None:
            return _json(
                {"code": "404", "reason": "Not found", "message": f"no resource order {order_id}"}, 404
            )
        for existing in self._cancellations_of(system, str(order_id)):
            if existing.state_at(self.sim.clock()) != "terminatedWithError":
                return _json(self._cancellation_view(existing), 200)
        cancellation = self._new_cancellation(system, order, body, str(request.base_url), request.url.path)
        if cancellation.document["state"] == "acknowledged" and self.sim.subscribers.get(system):
            self.sim._spawn(self._announce_cancellation(system, order, cancellation))
        if self.sim.behaviour.lose_cancel_answers > 0:
            self.sim.behaviour.lose_cancel_answers -= 1
            return _json({"code": "500", "reason": "Internal error", "message": "simulated lost answer"}, 500)
        return _json(self._cancellation_view(cancellation), 201)

    def _new_cancellation(
        self, system: str, order: SimulatedOrder, body: dict[str, Any], base: str, path: str
    ) -> SimulatedCancellation:
        now = self.sim.clock()
        state, _ = order.state_at(now)
        spec = ((order.document.get("orderItem") or [{}])[0].get("resource") or {}).get(
            "resourceSpecification"
        )
        spec_id = spec.get("id") if isinstance(spec, dict) else None
        task_id = f"CAN-{system[:3].upper()}-{next(self.sim._ids):06d}"
        document: dict[str, Any] = {
            **body,
            "id": task_id,
            "href": f"{base.rstrip('/')}{path}/{task_id}",
            "state": "acknowledged",
            "@type": "CancelResourceOrder",
        }
        due: float | None = None
        if state in ("completed", "failed", "cancelled", "rejected", "partial"):
            document["state"] = "terminatedWithError"
            document["errorMessage"] = {
                "message": f"resource order {order.document['id']} is {state}: it cannot be cancelled"
            }
        elif spec_id in self.sim.behaviour.refuse_cancel:
            document["state"] = "terminatedWithError"
            document["errorMessage"] = {"message": f"{spec_id} cannot be cancelled once ordered at {system}"}
        else:
            due = now + max(0.0, self.sim.behaviour.cancel_delay)
            order.cancelled_at = due
        cancellation = SimulatedCancellation(system, document, due)
        self.cancellations[(system, task_id)] = cancellation
        if due is not None and due <= now:
            document["state"] = "done"
            document["effectiveCancellationDate"] = _now_text()
            if self.sim.subscribers.get(system):
                self.sim._spawn(self.sim._notify(system, self.sim._view(order)))
        return cancellation

    def _cancellations_of(self, system: str, order_id: str) -> list[SimulatedCancellation]:
        return [
            c
            for (s, _), c in self.cancellations.items()
            if s == system and (c.document.get("resourceOrder") or {}).get("id") == order_id
        ]

    def _cancellation_view(self, cancellation: SimulatedCancellation) -> dict[str, Any]:
        document = dict(cancellation.document)
        document["state"] = cancellation.state_at(self.sim.clock())
        if document["state"] == "done":
            document.setdefault("effectiveCancellationDate", _now_text())
        return document

    async def list_cancellations(self, system: str, request: Request) -> Response:
        order_id = request.query_params.get("resourceOrder.id")
        found = [
            self._cancellation_view(c)
            for (s, _), c in self.cancellations.items()
            if s == system and order_id in (None, (c.document.get("resourceOrder") or {}).get("id"))
        ]
        return _json(found)

    async def get_cancellation(self, system: str, task_id: str) -> Response:
        cancellation = self.cancellations.get((system, task_id))
        if cancellation is None:
            return _json(
                {"code": "404", "reason": "Not found", "message": f"no cancelResourceOrder {task_id}"}, 404
            )
        return _json(self._cancellation_view(cancellation))

    async def _announce_cancellation(
        self, system: str, order: SimulatedOrder, cancellation: SimulatedCancellation
    ) -> None:
        """At its due time: the order is cancelled and the task done, both announced."""
        assert cancellation.due is not None
        wait = cancellation.due - self.sim.clock()
        if wait > 0:
            await self.sim.sleep(wait)
        # The states announced, not read off the clock: a timer may fire a little early.
        await self.sim._notify(
            system, self.sim._document(order, "cancelled", "cancelled at the customer's request")
        )
        done = {**cancellation.document, "state": "done", "effectiveCancellationDate": _now_text()}
        await self.sim._notify(system, done, resource="cancelResourceOrder")
