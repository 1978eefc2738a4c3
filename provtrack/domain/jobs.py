"""Durable jobs: work due at a moment, identified by a natural key so it cannot be scheduled twice.

Use cases ask for jobs (`JobRequest`) in the transaction that makes them necessary; the engine claims
due jobs under a lease and runs the handler registered for their kind. Handlers are safe to run
twice: they re-read the state they are about to change.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any


@dataclass(frozen=True, slots=True)
class Lease:
    """A job held by `owner` until `until`: nobody else claims it meanwhile."""

    owner: str
    until: datetime


@dataclass(frozen=True, slots=True)
class JobRequest:
    """Run `kind` for `key` at `due_at`; a request with the same kind and key replaces the pending one.

    With a `lease`, the job is scheduled already held: the one scheduling it runs it at once (and the
    job stays, durable, for another worker to run should that one die before it is done).

    With `run_again`, an existing job is not replaced: a pending one keeps its due time (it may be
    backing off), and a running one runs once more when it ends, for the work added meanwhile."""

    kind: str
    key: str
    due_at: datetime
    payload: dict[str, Any] = field(default_factory=dict)
    lease: Lease | None = None
    run_again: bool = False


@dataclass(frozen=True, slots=True)
class Job:
    """A claimed job, as the handler sees it."""

    id: int
    kind: str
    key: str
    due_at: datetime
    payload: dict[str, Any]
    attempts: int  # earlier attempts that failed
    # Claimed from a holder whose lease ran out: an earlier run may have done part of the work.
    taken_over: bool = False


class RetryLater(Exception):
    """The handler could not finish now; run it again after `delay` (or the default backoff)."""

    def __init__(self, message: str, *, delay: timedelta | None = None) -> None:
        self.delay = delay
        super().__init__(message)


class GiveUp(Exception):
    """The job cannot succeed; keep it, marked failed, for an operator to see."""


def backoff(
    attempts: int,
    *,
    base: timedelta = timedelta(seconds=1),
    cap: timedelta = timedelta(minutes=10),
    jitter: float = 0.2,
    rng: random.Random | None = None,
) -> timedelta:
    """Exponential backoff with jitter: base * 2^attempts, at most cap, +-jitter."""
    delay = min(cap.total_seconds(), base.total_seconds() * (2 ** min(attempts, 32)))
    spread = delay * jitter
    pick = (rng or random).uniform(-spread, spread)
    return timedelta(seconds=max(0.0, delay + pick))
