"""Nothing a downstream system notifies finishes work on its word alone: a notification with a final
state is believed once the system, read back, says the same (catalog `confirm`, docs/security.md).
The read is what is applied, so a forged or stale notification changes nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import structlog

from provtrack.adapters.tmf652 import DownstreamRefused, DownstreamUnavailable
from provtrack.api.errors import ApiError
from provtrack.domain.catalog import System

log = structlog.get_logger("provtrack.api")

# The states that finish a resource order, and a cancel task (TMF652 TaskStateType).
RESOURCE_ORDER_FINAL = frozenset({"completed", "failed", "rejected", "partial", "cancelled"})
CANCEL_TASK_FINAL = frozenset({"done", "terminatedWithError", "rejected", "cancelled"})


def confirmed(
    system: System,
    notified: dict[str, Any],
    *,
    final: frozenset[str],
    read: Callable[[str], dict[str, Any]],
    what: str,
) -> dict[str, Any]:
    """`notified` (the event's `what`, e.g. `resourceOrder`) as `read(its quoted id)` at the system
    gives it, when its state is one of `final`; else as notified. A system that cannot be read
    (`confirm: false`) is believed. Refused: 422 when the system does not know it, 503 (send it
    again later) when the system cannot be reached."""
    if not system.confirm or notified.get("state") not in final:
        return notified
    notified_id = notified.get("id")
    if not isinstance(notified_id, str) or not notified_id:
        raise ApiError(400, "INVALID_VALUE", "Invalid request", f"event.{what}.id: is required")
    try:
        read_back = read(quote(notified_id, safe=""))
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
