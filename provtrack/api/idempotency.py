"""`Idempotency-Key` on POST: the first answer is kept, per client, and given again to a repeat
(domain/idempotency.py for the rules, docs/security.md for what a client may expect)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

from fastapi import Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from provtrack.adapters.clock import new_id
from provtrack.api.http import json_response
from provtrack.api.security import principal_of
from provtrack.domain.idempotency import Answer, check_key, fingerprint
from provtrack.services import idempotency

T = TypeVar("T")
Then = Callable[[Any, T], None]


async def once(
    request: Request,
    run: Callable[[Then[T] | None], Awaitable[T]],
    answer_of: Callable[[T], Answer],
) -> Response:
    """Run the request, or give the kept answer to a repeat of it. `run` is given a function to call
    in its transaction with what it made: the answer is kept if and only if that commits."""
    key = request.headers.get("idempotency-key")
    if key is None:
        return respond(answer_of(await run(None)))
    check_key(key)
    client = principal_of(request).client
    store = request.app.state.store
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    claim = new_id()
    kept = await run_in_threadpool(
        idempotency.begin,
        store,
        client=client,
        key=key,
        fingerprint=fingerprint(request.method, target, await request.body()),
        claim=claim,
        now=request.app.state.clock(),
        lease=timedelta(seconds=request.app.state.settings.idempotency_lease_seconds),
    )
    if kept is not None:
        return respond(kept, replayed=True)

    def then(tx: Any, made: T) -> None:
        idempotency.complete(tx, client=client, key=key, claim=claim, answer=answer_of(made))

    try:
        made = await run(then)
    except BaseException:
        # The request failed (nothing it made committed): a retry with the key runs it again.
        await run_in_threadpool(idempotency.release, store, client=client, key=key, claim=claim)
        raise
    return respond(answer_of(made))


def respond(answer: Answer, *, replayed: bool = False) -> Response:
    headers = dict(answer.headers)
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return json_response(answer.body, answer.status, headers)
