"""The engine sends the resource orders of the activities it starts itself: their dispatch jobs are
committed already leased to it, so no worker claims them unless the engine dies before sending (the
lease expires). A dispatch it cannot send goes back to the workers: that path, over HTTP, is
test_engine_flow.py's 500-then-201 test."""

from __future__ import annotations

import uuid
from datetime import timedelta

from provtrack.adapters.store.repository import SqlStore
from provtrack.domain.clock import format_datetime
from provtrack.domain.jobs import JobRequest, Lease
from provtrack.services import provisioning
from provtrack.services.ports import Context
from provtrack.services.provisioning import DISPATCH_JOB, POLL_JOB
from tests.conftest import FakeClock
from tests.integration.engine_harness import Engine, body, engine, fibre, simulator

__all__ = ["engine", "simulator"]

LEASE = timedelta(seconds=60)


def test_a_plan_whose_systems_answer_at_once_completes_in_the_job_that_planned_it(engine: Engine) -> None:
    engine.simulator.behaviour.instant = True
    order_id = engine.create(body(fibre()))

    assert engine.worker.run_due() == 1  # the plan job, and nothing else

    assert engine.state(order_id) == "completed"
    assert engine.simulator.posts_received == 3
    assert [o["orderType"] for o in engine.simulator.created()] == [
        "reserve-port",
        "configure-port",
        "activate-line",
    ]
    assert engine.store.pending_jobs(kind=DISPATCH_JOB) == []
    assert engine.store.pending_jobs(kind=POLL_JOB) == []


def test_a_resource_order_its_engine_never_sent_is_sent_by_a_worker_once_the_lease_expires(
    engine: Engine,
) -> None:
    order_id = engine.create(body(fibre()))
    crashed = Lease("provtrack-engine-crashed", engine.clock.now + LEASE)
    ctx = Context(now=format_datetime(engine.clock.now), actor="test", new_id=lambda: str(uuid.uuid4()))
    planned = provisioning.plan_order(engine.store, order_id, engine.catalog, ctx=ctx, lease=crashed)
    [request] = planned.dispatch_now  # the engine holding it dies here, before sending it

    engine.worker.run_until_idle()  # the plan job finds the order planned already
    assert engine.simulator.posts_received == 0

    engine.clock.advance(seconds=61)
    engine.worker.run_until_idle()
    assert engine.simulator.posts_received == 1
    reserve = engine.activity(order_id, "reserve-port")
    assert reserve["id"] == request.activity_id
    assert reserve["externalId"] == engine.simulator.created("inventory")[0]["id"]
    assert engine.store.pending_jobs(kind=DISPATCH_JOB) == []


def schedule_leased_dispatch(store: SqlStore, clock: FakeClock, activity_id: str, owner: str) -> None:
    lease = Lease(owner, clock.now + LEASE)
    with store.transaction(write=True) as tx:
        tx.schedule_job(
            JobRequest(DISPATCH_JOB, activity_id, clock.now, {"attempt": 1}, lease), now=clock.now
        )


def claim(store: SqlStore, clock: FakeClock) -> list[str]:
    claimed = store.claim_due_jobs(now=clock.now, owner="worker-b", lease=LEASE, limit=10)
    return [job.key for job in claimed]


def test_a_leased_dispatch_job_is_claimed_by_no_worker_until_its_lease_expires(
    store: SqlStore, clock: FakeClock
) -> None:
    store.jobs_committed.clear()
    schedule_leased_dispatch(store, clock, "activity-1", "provtrack-engine-a")

    assert not store.jobs_committed.is_set()  # its scheduler sends it: no worker to wake
    assert store.next_job_due() is None
    assert claim(store, clock) == []
    clock.advance(seconds=59)
    assert claim(store, clock) == []

    clock.advance(seconds=2)
    assert claim(store, clock) == ["activity-1"]


def test_a_released_dispatch_goes_to_the_workers_at_its_due_time_with_its_error_kept(
    store: SqlStore, clock: FakeClock
) -> None:
    schedule_leased_dispatch(store, clock, "activity-1", "provtrack-engine-a")
    retry_at = clock.now + timedelta(seconds=2)
    provisioning.release_dispatch(
        store, "activity-1", owner="provtrack-engine-b", due_at=clock.now, error="not its to release"
    )
    assert claim(store, clock) == []
    store.jobs_committed.clear()

    provisioning.release_dispatch(
        store, "activity-1", owner="provtrack-engine-a", due_at=retry_at, error="inventory: HTTP 503"
    )

    assert store.jobs_committed.is_set()
    [job] = store.pending_jobs(kind=DISPATCH_JOB)
    assert (job["lease_owner"], job["attempts"], job["last_error"]) == (None, 1, "inventory: HTTP 503")
    assert store.next_job_due() == retry_at
    assert claim(store, clock) == []
    clock.advance(seconds=2)
    [claimed] = store.claim_due_jobs(now=clock.now, owner="worker-b", lease=LEASE, limit=10)
    assert (claimed.key, claimed.attempts, claimed.payload) == ("activity-1", 1, {"attempt": 1})


def test_a_dispatch_released_as_failed_is_kept_for_an_operator_and_never_claimed(
    store: SqlStore, clock: FakeClock
) -> None:
    schedule_leased_dispatch(store, clock, "activity-1", "provtrack-engine-a")

    provisioning.release_dispatch(
        store,
        "activity-1",
        owner="provtrack-engine-a",
        due_at=clock.now,
        error="system 'legacy' is not in the catalog",
        failed=clock.now,
    )

    clock.advance(hours=1)
    assert claim(store, clock) == []
    [job] = store.pending_jobs(kind=DISPATCH_JOB)
    assert job["failed_at"] == format_datetime(clock.now - timedelta(hours=1))
    assert job["last_error"] == "system 'legacy' is not in the catalog"
