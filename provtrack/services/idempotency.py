"""Use cases of safe retries: claim an Idempotency-Key, complete it with the answer in the
transaction of the request, release it when the request fails, prune what is older than a day."""

from __future__ import annotations

from datetime import datetime, timedelta

from provtrack.domain.clock import format_datetime
from provtrack.domain.idempotency import (
    CLAIM_LEASE,
    Answer,
    Decision,
    KeyInUse,
    KeyReused,
    new_record,
)
from provtrack.domain.idempotency import decide as decide_key
from provtrack.domain.jobs import Job, JobRequest, RetryLater
from provtrack.services.ports import Store, Transaction

PRUNE_JOB = "idempotency.prune"
PRUNE_KEY = "all"
PRUNE_EVERY = timedelta(hours=1)
PRUNE_BATCH = 1000


def begin(
    store: Store,
    *,
    client: str,
    key: str,
    fingerprint: str,
    claim: str,
    now: datetime,
    lease: timedelta = CLAIM_LEASE,
) -> Answer | None:
    """The kept answer to give again, or None when the request is to run (the key now held by
    `claim`). KeyInUse while the first is running, KeyReused when the key was used for another."""
    with store.transaction(write=True) as tx:
        record = tx.idempotency.get(client, key)
        decision = decide_key(record, fingerprint, now)
        if decision is Decision.REPLAY:
            assert record is not None
            assert record.answer is not None
            return record.answer
        if decision is Decision.IN_USE:
            raise KeyInUse(f"a request with Idempotency-Key {key!r} is still running; retry later")
        if decision is Decision.REUSED:
            raise KeyReused(
                f"Idempotency-Key {key!r} was used for another request (method, path or body differ)"
            )
        tx.idempotency.claim(new_record(client, key, fingerprint, claim, now, lease=lease))
    return None


def complete(tx: Transaction, *, client: str, key: str, claim: str, answer: Answer) -> None:
    """In the request's own transaction: the answer is kept if and only if what it answers commits."""
    tx.idempotency.complete(client, key, claim, answer)


def release(store: Store, *, client: str, key: str, claim: str) -> None:
    """The request failed: its key is free for a retry."""
    with store.transaction(write=True) as tx:
        tx.idempotency.release(client, key, claim)


def schedule_pruning(store: Store, *, now: datetime) -> None:
    """Ask for the prune job unless it exists (it reschedules itself): once when a role starts."""
    with store.transaction(write=True) as tx:
        tx.schedule_job(JobRequest(PRUNE_JOB, PRUNE_KEY, now), now=now, replace=False)


def prune(store: Store, _job: Job, now: datetime) -> None:
    """Forget keys past their day, a batch at a time; then come back in an hour."""
    with store.transaction(write=True) as tx:
        pruned = tx.idempotency.prune(now=format_datetime(now), limit=PRUNE_BATCH)
        if pruned < PRUNE_BATCH:
            tx.schedule_job(JobRequest(PRUNE_JOB, PRUNE_KEY, now + PRUNE_EVERY), now=now)
    if pruned == PRUNE_BATCH:
        raise RetryLater(f"forgot {pruned} idempotency keys; more are older than a day", delay=timedelta(0))
