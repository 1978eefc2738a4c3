"""W3C Trace Context (`traceparent`) so that one order can be followed across systems, and the
fields every log line of a request or a job carries (request id, trace id, order id, client).

The trace in force is a context variable: the API sets it from the request's `traceparent` (or
starts one), the engine sets the order's own trace around the work it does for an order, and every
outbound call (TMF652, TMF638, event webhooks) sends it on with a new span id. An order's trace id
is its id (a UUID is 32 hex digits, as a W3C trace id is): whoever holds the order id can find its
calls in any system's logs.
"""

from __future__ import annotations

import hashlib
import random
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import structlog

_TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
_trace: ContextVar[str | None] = ContextVar("provtrack_trace", default=None)


def trace_of(header: str | None) -> str | None:
    """The trace id of a `traceparent` header (version 00), or None when absent or malformed."""
    if not header:
        return None
    match = _TRACEPARENT.fullmatch(header.strip().lower())
    if match is None or set(match.group(1)) == {"0"} or set(match.group(2)) == {"0"}:
        return None
    return match.group(1)


# Trace and span ids need to be unique, not unguessable (W3C Trace Context): the random module's
# generator (seeded from the system, and again in a forked child) instead of os.urandom, whose
# system call was ~5% of a request's samples under load.
def new_trace() -> str:
    return f"{random.getrandbits(128) or 1:032x}"


def new_span() -> str:
    return f"{random.getrandbits(64) or 1:016x}"


def order_trace(order_id: str) -> str:
    """An order's own trace id: its UUID's 32 hex digits (any other id: a hash of it)."""
    try:
        return uuid.UUID(order_id).hex
    except ValueError:
        return hashlib.sha256(order_id.encode()).hexdigest()[:32]


def current() -> str | None:
    return _trace.get()


def outgoing() -> dict[str, str]:
    """The header an outbound call carries: the trace in force, a new span."""
    trace = _trace.get()
    return {"traceparent": f"00-{trace}-{new_span()}-01"} if trace else {}


@contextmanager
def traced(trace_id: str, **fields: str) -> Iterator[None]:
    """Within the block, outbound calls carry `trace_id` and log lines carry it with `fields`."""
    token = _trace.set(trace_id)
    with structlog.contextvars.bound_contextvars(trace_id=trace_id, **fields):
        try:
            yield
        finally:
            _trace.reset(token)


@contextmanager
def for_order(order_id: str, **fields: str) -> Iterator[None]:
    """The engine's work for one order: its trace, and its id on every log line."""
    with traced(order_trace(order_id), order_id=order_id, **fields):
        yield
