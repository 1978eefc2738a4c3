"""The dashboard's buttons: each calls the use case the API calls, then goes back to the page it
came from with a notice (post/redirect/get). A refusal is worded as the API words it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import Request
from starlette.responses import Response

from provtrack.services import activities, dashboard, events, jeopardy, orders
from provtrack.web.app import (
    actor_of,
    back,
    context,
    form_fields,
    now_of,
    refusal,
    router,
    run_action,
    store_of,
)

NOTE_LIMIT = 2000  # characters of one note


@router.post("/orders/{order_id}/note")
async def add_note(order_id: str, request: Request) -> Response:
    form = await form_fields(request)
    target = form.get("back") or f"/orders/{order_id}"
    text = form.get("text", "").strip()
    if not text:
        return back(target, "A note needs some text.", tone="error")
    store, ctx = store_of(request), context(request)
    return await run_action(
        request,
        target,
        lambda: dashboard.add_note(store, order_id, text[:NOTE_LIMIT], ctx=ctx),
        "Note added.",
    )


@router.post("/orders/{order_id}/hold")
async def hold(order_id: str, request: Request) -> Response:
    return await _move(order_id, request, "held", "Order held: nothing moves on until it is resumed.")


@router.post("/orders/{order_id}/resume")
async def resume(order_id: str, request: Request) -> Response:
    return await _move(order_id, request, "inProgress", "Order resumed.")


async def _move(order_id: str, request: Request, state: str, done: str) -> Response:
    form = await form_fields(request)
    target = form.get("back") or f"/orders/{order_id}"
    store, ctx = store_of(request), context(request)
    return await run_action(
        request,
        target,
        lambda: orders.patch_order(store, order_id, {"state": state}, json_patch=False, ctx=ctx),
        done,
    )


@router.post("/activities/{activity_id}/{action}")
async def operate(activity_id: str, action: str, request: Request) -> Response:
    form = await form_fields(request)
    target = form.get("back") or "/fallout"
    reason = form.get("reason", "").strip()
    store, ctx, catalog = store_of(request), context(request), request.app.state.catalog
    if action == "skip" and not reason:
        return back(target, "Skipping needs a reason (what was done instead).", tone="error")
    runs: dict[str, tuple[Callable[[], Any], str]] = {
        "retry": (
            lambda: activities.retry_activity(store, activity_id, ctx=ctx, catalog=catalog),
            "Sent again as a new attempt.",
        ),
        "skip": (
            lambda: activities.skip_activity(store, activity_id, reason=reason, ctx=ctx, catalog=catalog),
            "Skipped: the activities after it go ahead.",
        ),
        "fail": (
            lambda: activities.fail_activity(
                store, activity_id, reason=reason or None, ctx=ctx, catalog=catalog
            ),
            "Given up: its item fails.",
        ),
    }
    if action not in runs:
        return back(target, f"Unknown action {action!r}.", tone="error")
    run, done = runs[action]
    return await run_action(request, target, run, done)


@router.post("/orders/{order_id}/escalations/{rule}/acknowledge")
async def acknowledge(order_id: str, rule: str, request: Request) -> Response:
    form = await form_fields(request)
    target = form.get("back") or f"/orders/{order_id}"
    monitor = request.app.state.jeopardy
    if monitor is None:
        return back(target, "This server watches no jeopardy.", tone="error")
    store, ctx = store_of(request), context(request)
    return await run_action(
        request,
        target,
        lambda: jeopardy.acknowledge(store, monitor, order_id, rule, ctx=ctx),
        f"Escalation {rule} acknowledged by {actor_of(request)}: its ladder stops.",
    )


@router.post("/fallout/retry")
async def retry_group(request: Request) -> Response:
    form = await form_fields(request)
    system, error = form.get("system", ""), form.get("error", "")
    store, ctx, catalog = store_of(request), context(request), request.app.state.catalog
    from starlette.concurrency import run_in_threadpool

    result = await run_in_threadpool(dashboard.retry_group, store, system, error, ctx=ctx, catalog=catalog)
    notice = f"{len(result.retried)} sent again to {system}."
    if result.refused:
        notice += f" {len(result.refused)} not: they had moved on meanwhile."
    return back("/fallout", notice, tone="error" if result.refused and not result.retried else "ok")


@router.post("/events/replay")
async def replay(request: Request) -> Response:
    form = await form_fields(request)
    subscription = form.get("subscription", "")
    store, now = store_of(request), now_of(request)
    from starlette.concurrency import run_in_threadpool

    try:
        queued = await run_in_threadpool(
            lambda: events.replay_dead_letters(store, subscription_id=subscription, now=now)
        )
    except Exception as exc:
        message = refusal(request, exc)
        if message is None:
            raise
        return back("/events", message, tone="error")
    return back("/events", f"{len(queued)} dead letters queued for replay to {subscription}.")
