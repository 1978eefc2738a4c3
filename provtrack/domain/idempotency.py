"""Safe retries: the first answer to a POST with an `Idempotency-Key` is kept and given again.

A key is claimed before the request runs and completed, with the answer, in the transaction that
makes what the request makes (the order, the cancel task, the subscription): either both commit or
neither does, so a retry after a crash finds the answer, or finds nothing and runs. What a request
with a key may meet is one table, `decide`:

| what is kept for the key           | same request          | another request (body, path) |
|------------------------------------|-----------------------|------------------------------|
| nothing (or expired)               | run                   | run                          |
| a claim still held                 | 409: still running    | 422: key used for another    |
| a claim whose holder died (lapsed) | run (taken over)      | 422                          |
| the answer                         | that answer again     | 422                          |
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from provtrack.domain.clock import format_datetime

RETENTION = timedelta(hours=24)  # keys are kept at least this long (per client)
CLAIM_LEASE = timedelta(seconds=60)  # a claim not completed by then is taken to have died with its holder
_KEY = re.compile(r"[\x21-\x7e]{1,255}")  # printable ASCII, as the IETF draft's examples (UUIDs)


class InvalidIdempotencyKey(ValueError):
    """An `Idempotency-Key` header that is empty, too long, or not printable ASCII."""


class KeyInUse(Exception):
    """A request with this key is still running (HTTP 409)."""


class KeyReused(Exception):
    """The key was first used for another request (HTTP 422)."""


class ClaimLost(Exception):
    """The claim lapsed and another request took the key over before this one finished (HTTP 409)."""


class Decision(StrEnum):
    RUN = "run"
    REPLAY = "replay"
    IN_USE = "inUse"
    REUSED = "reused"


@dataclass(frozen=True, slots=True)
class Answer:
    """An HTTP answer as it was given: status, the headers worth repeating, and the body."""

    status: int
    headers: dict[str, str]
    body: str


@dataclass(frozen=True, slots=True)
class KeyRecord:
    client: str
    key: str
    fingerprint: str
    claim: str  # the claim that holds it (running) or completed it
    locked_until: str | None  # running: the claim's lease
    created_at: str
    expires_at: str
    answer: Answer | None = None  # set when the request completed


def check_key(key: str) -> str:
    if not _KEY.fullmatch(key):
        raise InvalidIdempotencyKey("Idempotency-Key: 1 to 255 printable ASCII characters (a UUID, say)")
    return key


def fingerprint(method: str, target: str, body: bytes) -> str:
    """What makes two requests the same request: method, path with query, and body, byte for byte."""
    digest = hashlib.sha256()
    for part in (method.encode(), target.encode(), body):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def decide(record: KeyRecord | None, print_: str, now: datetime) -> Decision:
    """The table above. An expired record counts as none."""
    stamp = format_datetime(now)
    if record is None or record.expires_at <= stamp:
        return Decision.RUN
    if record.fingerprint != print_:
        return Decision.REUSED
    if record.answer is not None:
        return Decision.REPLAY
    if record.locked_until is not None and record.locked_until > stamp:
        return Decision.IN_USE
    return Decision.RUN


def new_record(
    client: str, key: str, print_: str, claim: str, now: datetime, *, lease: timedelta = CLAIM_LEASE
) -> KeyRecord:
    return KeyRecord(
        client=client,
        key=key,
        fingerprint=print_,
        claim=claim,
        locked_until=format_datetime(now + lease),
        created_at=format_datetime(now),
        expires_at=format_datetime(now + RETENTION),
    )
