"""Standard Webhooks signing (https://www.standardwebhooks.com) and what a delivery attempt means.

A secret is `whsec_` + base64 of 32 random bytes; the HMAC key is the decoded bytes. The signature
covers `<webhook-id>.<webhook-timestamp>.<body>`; during a secret rotation both secrets sign and the
header carries both signatures, space separated.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

SECRET_PREFIX = "whsec_"
TOLERANCE = timedelta(minutes=5)  # receivers refuse timestamps further off than this (replay guard)


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """One `v1,<base64 HMAC-SHA256>` signature."""
    content = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signature_headers(secrets_: Sequence[str], msg_id: str, at: datetime, body: bytes) -> dict[str, str]:
    timestamp = int(at.timestamp())
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(sign(s, msg_id, timestamp, body) for s in secrets_),
    }


class InvalidSignature(ValueError):
    """The webhook headers do not prove the body came from the hub."""


def verify(secret: str, headers: dict[str, str], body: bytes, *, now: datetime) -> None:
    """What a receiver does (see docs/events.md); raises InvalidSignature."""
    msg_id, stamp = headers.get("webhook-id", ""), headers.get("webhook-timestamp", "")
    if not msg_id or not stamp.isdigit():
        raise InvalidSignature("missing webhook-id or webhook-timestamp")
    if abs(now.timestamp() - int(stamp)) > TOLERANCE.total_seconds():
        raise InvalidSignature("timestamp outside the tolerance")
    expected = sign(secret, msg_id, int(stamp), body)
    for candidate in headers.get("webhook-signature", "").split():
        if hmac.compare_digest(candidate, expected):
            return
    raise InvalidSignature("no signature matches")


# --- outcomes ------------------------------------------------------------------------------------


class Outcome(StrEnum):
    DELIVERED = "delivered"  # 2xx
    RETRY = "retry"  # connection error, timeout, 429, 5xx: try again after a backoff
    GONE = "gone"  # 410: the subscriber wants no more; the subscription is disabled
    REFUSED = "refused"  # any other answer: retrying will not help; dead-letter now
    BUSY = "busy"  # not attempted: this subscriber already has slow deliveries in flight
    BLOCKED = "blocked"  # not attempted: the callback's host now resolves to an address not allowed


@dataclass(frozen=True, slots=True)
class Attempt:
    """What one POST produced: a status, or the transport error that prevented one."""

    status: int | None
    error: str | None = None
    busy: bool = False
    stalled: bool = False  # busy because its POSTs in flight hang, not merely because it is loaded
    blocked: bool = False  # refused before connecting: the address is outside the callback policy

    @property
    def sent(self) -> bool:
        """Whether the POST went out on the network (only those count as delivery attempts)."""
        return not (self.busy or self.blocked)

    @property
    def outcome(self) -> Outcome:
        if self.busy:
            return Outcome.BUSY
        if self.blocked:
            return Outcome.BLOCKED
        if self.status is None:
            return Outcome.RETRY
        if 200 <= self.status < 300:
            return Outcome.DELIVERED
        if self.status == 410:
            return Outcome.GONE
        if self.status == 429 or self.status >= 500:
            return Outcome.RETRY
        return Outcome.REFUSED

    def describe(self) -> str:
        return self.error or f"HTTP {self.status}"
