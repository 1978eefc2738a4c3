"""Our subscriptions at the hubs of the systems and partners that notify us (TMF630 hub).

A system tells its hub subscribers what happens to the orders we sent it. What it told before our
subscription existed reached nobody, so a new subscription is followed by reading again, at once,
every order still waiting on that system or partner, rather than at its safety poll an hour later.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime

from provtrack.domain.catalog import ActivityKind, Catalog, Progress
from provtrack.domain.clock import format_datetime, parse_datetime
from provtrack.domain.jobs import JobRequest
from provtrack.domain.partners import PARTNER_PREFIX
from provtrack.services.ports import Context, DownstreamSubscription, Store
from provtrack.services.provisioning import SUBSCRIBE_JOB, UNSUBSCRIBE_JOB
from provtrack.services.withdrawals import FOLLOW_JOB as WITHDRAWAL_FOLLOW_JOB


def subscribe_to_hubs(store: Store, catalog: Catalog, *, ctx: Context) -> None:
    """At start: a job per hub-notifying system checks our subscription at its hub (or makes one),
    and a job per system we are subscribed at that left the catalog, or stopped notifying, ends it."""
    now = parse_datetime(ctx.now)
    notifying = {name for name, system in catalog.systems.items() if system.progress is Progress.HUB}
    with store.transaction(write=True) as tx:
        for name in sorted(notifying):
            tx.schedule_job(JobRequest(SUBSCRIBE_JOB, name, now), now=now)
        for known in tx.subscriptions.all():
            if known.system not in notifying and not known.system.startswith(PARTNER_PREFIX):
                tx.schedule_job(JobRequest(UNSUBSCRIBE_JOB, known.system, now), now=now)


def downstream_subscription(store: Store, system: str) -> DownstreamSubscription | None:
    with store.transaction(write=False) as tx:
        return tx.subscriptions.get(system)


def record_subscription(
    store: Store,
    subscription: DownstreamSubscription,
    *,
    owner: str,
    kind: ActivityKind,
    poll_job: str,
    now: datetime,
) -> int:
    """Keep a new subscription, then bring forward to now the job that reads each order `owner`
    holds for us (the `poll_job` of a `kind` activity, the follow job of a withdrawal step's cancel
    task): what it notified before this moment went nowhere. Each job keeps its attempts and
    backoff; the worker's threads bound how many reads run at once. Returns how many orders are read
    again. The subscription keeps when it was made: a send still unanswered now is read once its
    answer is recorded (`provisioning.read_now_if_subscribed_since`).

    Two transactions: the first records the subscription and finds what waits (on PostgreSQL under
    the subscription's lock, which an answer recorded meanwhile waits for); the second moves the
    jobs, holding no such lock, so it never waits on a job row while an answer holding that row waits
    on the lock."""
    with store.transaction(write=True) as tx:
        tx.subscriptions.put(dataclasses.replace(subscription, made_at=format_datetime(now)))
        waiting = tx.plans.waiting_at(owner, kind)
    if not waiting:
        return 0
    with store.transaction(write=True) as tx:
        for activity_id, withdrawal in waiting:
            tx.run_job_now(WITHDRAWAL_FOLLOW_JOB if withdrawal else poll_job, activity_id, now=now)
    return len(waiting)


def forget_subscription(store: Store, system: str) -> None:
    with store.transaction(write=True) as tx:
        tx.subscriptions.forget(system)
