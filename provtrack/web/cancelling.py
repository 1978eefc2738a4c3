"""Cancelling an order from its page (docs/dashboard.md, docs/cancellation.md): the impact preview
first, the assessment `GET .../cancellationImpact` answers, then, on confirmation with a reason, the
cancel request the TMF641 `POST /cancelServiceOrder` makes; both are the API's use cases."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Request
from starlette.responses import Response

from provtrack.domain.query import Condition, Query, Value
from provtrack.domain.states import TaskState
from provtrack.services import cancellation, dashboard, orders
from provtrack.services.ports import OrderNotFound
from provtrack.web.app import back, context, form_fields, refusal, render, router, run_action, store_of

REASON_LIMIT = 500  # characters of a cancellation reason
# How an activity under way is stopped (domain.cancellation_impact.Stop), in the preview's words.
HOW_STOPPED = {
    "cancelResourceOrder": "cancelResourceOrder sent to {owner}",
    "cancelServiceOrder": "cancelServiceOrder sent to the partner {owner}",
    "letFinish": "{owner} cannot cancel it: it finishes, then is undone if it can be",
    "withdraw": "withdrawn from the work queue of {owner}",
}


def cancellation_of(store: Any, order_id: str) -> dict[str, Any] | None:
    """The order's newest cancel task (TMF641 cancelServiceOrder), if it has one."""
    of_order = Condition(("serviceOrder", "id"), "eq", (Value("text", order_id),))
    page = orders.list_tasks(store, Query(conditions=(of_order,), limit=1))
    return orjson.loads(page.documents[0]) if page.documents else None


def outcome(task: Any) -> tuple[str, str]:
    """What became of the request, as the coordinator is told it."""
    document = task.to_document()
    if task.state == TaskState.DONE:
        return f"Order cancelled. {document.get('completionMessage') or ''}".strip(), "ok"
    if task.state == TaskState.TERMINATED_WITH_ERROR:
        return f"Cancellation refused: {(document.get('errorMessage') or {}).get('message', '')}", "error"
    return (
        f"Cancellation under way (cancelServiceOrder {task.id}): what is stopped and undone downstream "
        "shows on this page as it happens.",
        "ok",
    )


@router.get("/orders/{order_id}/cancel")
def cancel_preview(order_id: str, request: Request) -> Response:
    store = store_of(request)
    try:
        order = orjson.loads(orders.get_order_json(store, order_id))
        impact = cancellation.cancellation_impact(store, order_id, request.app.state.catalog)
    except OrderNotFound as exc:
        return render(
            request, "missing.html", 404, problem=refusal(request, exc) or str(exc), order_id=order_id
        )
    return render(
        request,
        "cancel.html",
        order=order,
        impact=impact,
        how_stopped=HOW_STOPPED,
        mark=dashboard.change_mark(store, order_id),
        order_id=order_id,
    )


@router.post("/orders/{order_id}/cancel")
async def cancel(order_id: str, request: Request) -> Response:
    form = await form_fields(request)
    reason = form.get("reason", "").strip()
    if not reason:
        return back(f"/orders/{order_id}/cancel", "Say why the order is cancelled.", tone="error")
    body = {"serviceOrder": {"id": order_id}, "cancellationReason": reason[:REASON_LIMIT]}
    store, ctx, catalog = store_of(request), context(request), request.app.state.catalog
    return await run_action(
        request,
        f"/orders/{order_id}",
        lambda: cancellation.request_cancellation(store, body, ctx=ctx, catalog=catalog),
        outcome,
    )
