"""The cancelServiceOrder desk of the simulated TMF641 partners (provtrack.simulator.partner_ordering).

`cancelServiceOrder` (POST, GET, GET by id, `?serviceOrder.id=`) cancels a partner order under way:
at once, or `cancel_delay` seconds later (the task answers `acknowledged`). Either way the outcome is
announced to the partner's subscribers: the order's `ServiceOrderStateChangeEvent` (`cancelled`)
and the task's `CancelServiceOrderStateChangeEvent`. An order already finished gets a task
`terminatedWithError` saying why; so does every order of a partner in `refuse_cancel` (or, with
`refuse_cancel_status`, the POST is answered with that status and no task). A second POST for the
same order returns the task it already has (200) unless that one was refused. `lose_cancel_answers`
carries the next N out and answers 500, as a partner that failed after acting would.
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
    from provtrack.simulator.partner_ordering import PartnerOrder, PartnerOrderingSimulator

FINISHED = ("completed", "failed", "cancelled", "rejected", "partial")
FINAL = ("done", "terminatedWithError")


@dataclass
class SimulatedCancellation:
    partner: str
    order: PartnerOrder
    document: dict[str, Any]
    due: float  # when its outcome comes (on the simulator's clock)
    refusal: str | None  # why it is refused, or None: the order is cancelled

    @property
    def settled(self) -> bool:
        return self.document["state"] in FINAL


def _problem(status: int, reason: str, message: str) -> Response:
    return _json({"code": str(status), "reason": reason, "message": message, "status": str(status)}, status)


class PartnerCancelDesk:
    """Part of the simulator: its orders, behaviour, clock and subscribers are the simulator's."""

    def __init__(self, simulator: PartnerOrderingSimulator) -> None:
        self.sim = simulator
        self.cancellations: dict[tuple[str, str], SimulatedCancellation] = {}
        self.posts_received = 0

    async def cancel_order(self, partner: str, request: Request) -> Response:
        if refused := self.sim._refused(partner, request):
            return refused
        self.posts_received += 1
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            return _problem(400, "Bad request", "the body is not JSON")
        ref = body.get("serviceOrder") if isinstance(body, dict) else None
        order_id = ref.get("id") if isinstance(ref, dict) else None
        if not order_id:
            return _problem(400, "Bad request", "serviceOrder.id is required")
        order = self.sim.orders.get((partner, str(order_id)))
        if order is None:
            return _problem(404, "Not found", f"no service order {order_id}")
        behaviour = self.sim.behaviour
        if partner in behaviour.refuse_cancel and behaviour.refuse_cancel_status:
            return _problem(
                behaviour.refuse_cancel_status, "Cancellation refused", f"{partner} does not cancel orders"
            )
        for existing in self._cancellations_of(partner, str(order_id)):
            if self._view(existing)["state"] != "terminatedWithError":
                return _json(self._view(existing), 200)
        cancellation = self._new_cancellation(partner, order, body, str(request.base_url), request.url.path)
        if behaviour.lose_cancel_answers > 0:
            behaviour.lose_cancel_answers -= 1
            return _problem(500, "Internal error", "simulated lost answer")
        return _json(self._view(cancellation), 201)

    def _new_cancellation(
        self, partner: str, order: PartnerOrder, body: dict[str, Any], base: str, path: str
    ) -> SimulatedCancellation:
        now = self.sim.clock()
        task_id = f"CSO-{partner[:3].upper()}-{next(self.sim._ids):06d}"
        document: dict[str, Any] = {
            **body,
            "id": task_id,
            "href": f"{base.rstrip('/')}{path}/{task_id}",
            "state": "acknowledged",
            "@type": "CancelServiceOrder",
        }
        state = self.sim._view(order)["state"]
        refusal = None
        if state in FINISHED:
            refusal = f"service order {order.document['id']} is {state}: it cannot be cancelled"
        elif partner in self.sim.behaviour.refuse_cancel:
            refusal = f"{partner} cannot cancel service order {order.document['id']} once work has started"
        delay = 0.0 if state in FINISHED else max(0.0, self.sim.behaviour.cancel_delay)
        cancellation = SimulatedCancellation(partner, order, document, now + delay, refusal)
        self.cancellations[(partner, task_id)] = cancellation
        if delay == 0:
            self._settle(cancellation)
        if self.sim.subscribers.get(partner) and not self.sim.behaviour.hub_unreachable:
            self.sim._spawn(self._announce(cancellation))
        return cancellation

    def _settle(self, cancellation: SimulatedCancellation) -> None:
        """The outcome: the task done and the order cancelled, or the task terminatedWithError."""
        if cancellation.settled:
            return
        document = cancellation.document
        if cancellation.refusal is not None:
            document["state"] = "terminatedWithError"
            document["errorMessage"] = {"code": "refused", "message": cancellation.refusal}
            return
        order = cancellation.order
        order.cancelled_after = self.sim._due(order, self.sim.clock())
        document["state"] = "done"
        document["effectiveCancellationDate"] = _now_text()

    def _view(self, cancellation: SimulatedCancellation) -> dict[str, Any]:
        if self.sim.clock() >= cancellation.due:
            self._settle(cancellation)
        return dict(cancellation.document)

    def _cancellations_of(self, partner: str, order_id: str) -> list[SimulatedCancellation]:
        return [c for (p, _), c in self.cancellations.items() if p == partner and _order_of(c) == order_id]

    async def list_cancellations(self, partner: str, request: Request) -> Response:
        if refused := self.sim._refused(partner, request):
            return refused
        order_id = request.query_params.get("serviceOrder.id")
        found = [
            self._view(c)
            for (p, _), c in self.cancellations.items()
            if p == partner and order_id in (None, _order_of(c))
        ]
        return _json(found)

    async def get_cancellation(self, partner: str, task_id: str, request: Request) -> Response:
        if refused := self.sim._refused(partner, request):
            return refused
        cancellation = self.cancellations.get((partner, task_id))
        if cancellation is None:
            return _problem(404, "Not found", f"no cancelServiceOrder {task_id}")
        return _json(self._view(cancellation))

    async def _announce(self, cancellation: SimulatedCancellation) -> None:
        """At its due time: the outcome, announced (the order's state change, then the task's)."""
        wait = cancellation.due - self.sim.clock()
        if wait > 0:
            await self.sim.sleep(wait)
        self._settle(cancellation)  # what is announced is settled, whatever the clock says
        partner = cancellation.partner
        if cancellation.refusal is None:
            order = self.sim._view(cancellation.order)
            await self.sim._notify(partner, "ServiceOrderStateChangeEvent", order)
        await self.sim._notify(
            partner, "CancelServiceOrderStateChangeEvent", dict(cancellation.document), "cancelServiceOrder"
        )


def _order_of(cancellation: SimulatedCancellation) -> str | None:
    ref = cancellation.document.get("serviceOrder")
    return str(ref.get("id")) if isinstance(ref, dict) and ref.get("id") else None
