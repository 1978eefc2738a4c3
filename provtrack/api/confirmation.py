"""Nothing a downstream system notifies finishes work on its word alone: a notification with a final
state is believed once the system, read back, says the same (catalog `confirm`, docs/security.md).
The read is what is applied, so a forged or stale notification changes nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import structlog
from fastapi import Request
from starlette.concurrency import run_in_threadpool

from provtrack.adapters.tmf652 import DownstreamRefused, DownstreamUnavailable, ResourceOrderingClient
from provtrack.api.errors import ApiError
from provtrack.api.http import read_json
from provtrack.api.security import require_listener_token
from provtrack.domain.catalog import Catalog, System

log = structlog.get_logger("provtrack.api")

# The states that finish a resource order, and a cancel task (TMF652 TaskStateType).
RESOURCE_ORDER_FINAL = frozenset({"completed", "failed", "rejected", "partial", "cancelled"})
CANCEL_TASK_FINAL = frozenset({"done", "terminatedWithError", "rejected", "cancelled"})


async def notified(
    request: Request,
    system: str,
    token: str,
    *,
    what: str,
    final: frozenset[str],
    read: Callable[[ResourceOrderingClient, str, str], dict[str, Any]],
) -> tuple[Catalog, dict[str, Any]]:
    """What a TMF652 system's notification at its listener says of its `what` (`event.<what>`),
    confirmed by `read(client, system URL, quoted id)` when final: 404 for a system not in the
    catalog, 401 without the system's token, 400 without the object. Returns it with the catalog."""
    catalog: Catalog | None = request.app.state.catalog
    if catalog is None or system not in catalog.systems:
        raise ApiError(404, "NOT_FOUND", "Unknown system", f"no system {system[:100]!r} in the catalog")
    await require_listener_token(request, f"tmf652:{system}", token, who=system)
    event = await read_json(request)
    found: Any = (event.get("event") or {}).get(what) if isinstance(event, dict) else None
    if not isinstance(found, dict):
        raise ApiError(400, "INVALID_VALUE", "Invalid request", f"event.{what}: an object is required")
    client: ResourceOrderingClient = request.app.state.resource_orders

    def read_at(url: str, quoted_id: str) -> dict[str, Any]:
        return read(client, url, quoted_id)

    confirmed_one = await run_in_threadpool(
        confirmed, catalog.systems[system], found, final=final, read=read_at, what=what
    )
    return catalog, confirmed_one


def confirmed(
    system: System,
    notified: dict[str, Any],
    *,
    final: frozenset[str],
    read: Callable[[str, str], dict[str, Any]],
    what: str,
) -> dict[str, Any]:
    """`notified` (the event's `what`, e.g. `resourceOrder`) as `read(the system's URL, its quoted
    id)` gives it, when its state is one of `final`; else as notified. A system that cannot be read
    (`confirm: false`) is believed. Refused: 422 when the system does not know it, 503 (send it
    again later) when the system cannot be reached."""
    if not system.confirm or notified.get("state") not in final:
        return notified
    notified_id = notified.get("id")
    if not isinstance(notified_id, str) or not notified_id:
        raise ApiError(400, "INVALID_VALUE", "Invalid request", f"event.{what}.id: is required")
    try:
        read_back = read(system.url, quote(notified_id, safe=""))
    except DownstreamRefused as exc:
        raise ApiError(
            422,
            "NOT_CONFIRMED",
            "Notification not confirmed",
            f"{system.name} does not know {what} {notified_id[:100]!r} (HTTP {exc.status})",
        ) from None
    except DownstreamUnavailable:
        raise ApiError(
            503,
            "NOT_CONFIRMED",
            "Notification not confirmed",
            f"{system.name} could not be read to confirm the notification; send it again later",
        ) from None
    if read_back.get("id") != notified_id:
        raise ApiError(
            422, "NOT_CONFIRMED", "Notification not confirmed", f"{system.name} answered another {what}"
        )
    if read_back.get("state") != notified.get("state"):
        log.warning(
            "notification not confirmed by the system",
            system=system.name,
            notified_id=notified_id[:100],
            what=what,
            notified=str(notified.get("state"))[:40],
            read=str(read_back.get("state"))[:40],
        )
    return read_back
