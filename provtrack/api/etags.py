"""ETags of orders (their version), If-Match on changes and If-None-Match on reads (RFC 9110 §13)."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Request

from provtrack.api.errors import PreconditionFailed
from provtrack.domain.model import ServiceOrder


def etag(version: int) -> str:
    """A strong validator: the order's version, which every change of the order moves on."""
    return f'"{version}"'


def _tags(header: str) -> list[str]:
    return [tag.strip() for tag in header.split(",") if tag.strip()]


def if_match(request: Request) -> Callable[[ServiceOrder], None] | None:
    """The check of `If-Match` on the order a PATCH or DELETE is about to change, inside its
    transaction: a stale (or weak) tag is PreconditionFailed and nothing changes."""
    header = request.headers.get("if-match")
    if header is None:
        return None
    tags = _tags(header)

    def check(order: ServiceOrder) -> None:
        if "*" in tags or etag(order.version) in tags:
            return
        raise PreconditionFailed(
            f"If-Match {header[:100]} does not name the order as it is now (ETag {etag(order.version)}); "
            "read it again, then retry the change"
        )

    return check


def not_modified(request: Request, version: int) -> bool:
    """`If-None-Match` names the version the client has (weak comparison: W/ tags count too)."""
    header = request.headers.get("if-none-match")
    if header is None:
        return False
    tags = [t.removeprefix("W/") for t in _tags(header)]
    return "*" in tags or etag(version) in tags
