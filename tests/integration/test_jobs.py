"""The durable job queue and the worker, on SQLite and PostgreSQL, with an injected clock."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from provtrack.adapters.store.repository import SqlStore
from provtrack.domain.jobs import GiveUp, Job, JobRequest, RetryLater
from provtrack.engine.worker import Worker
from tests.conftest import FakeClock


def schedule(
    store: SqlStore, clock: FakeClock, kind: str, key: str, *, after: timedelta, **payload: object
) -> None:
    with store.transaction(write=True) as tx:
        tx.schedule_job(JobRequest(kind, key, clock.now + after, dict(payload)), now=clock.now)


class Recorder:
    def __init__(self, outcome: Exception | None = None) -> None:
        self.calls: list[tuple[str, int]] = []
        self.outcome = outcome

    def __call__(self, job: Job, now: datetime) -> None:
        self.calls.append((job.key, job.attempts))
        if self.outcome is not None:
            raise self.outcome


def test_a_job_runs_when_it_is_due_and_not_before(store: SqlStore, clock: FakeClock) -> None:
    handler = Recorder()
    worker = Worker(store, {"dispatch": handler}, clock=clock, threads=1)
    schedule(store, clock, "dispatch", "activity-1", after=timedelta(seconds=30))

    assert worker.run_due() == 0
    clock.advance(seconds=30)
    assert worker.run_due() == 1
    assert handler.calls == [("activity-1", 0)]
    assert store.pending_jobs() == []


def test_scheduling_the_same_key_again_moves_the_job_instead_of_adding_one(
    store: SqlStore, clock: FakeClock
) -> None:
    schedule(store, clock, "jeopardy", "order-1", after=timedelta(minutes=10))
    schedule(store, clock, "jeopardy", "order-1", after=timedelta(minutes=5))

    jobs = store.pending_jobs()
    assert len(jobs) == 1
    assert jobs[0]["due_at"] == "2026-11-27T09:05:00.000Z"


def test_a_commit_that_schedules_a_job_wakes_the_worker(store: SqlStore, clock: FakeClock) -> None:
    store.jobs_committed.clear()
    with store.transaction(write=True):
        pass
    assert not store.jobs_committed.is_set()
    schedule(store, clock, "dispatch", "a", after=timedelta(0))
    assert store.jobs_committed.is_set()


def test_a_failing_handler_is_retried_with_backoff_and_its_error_kept(
    store: SqlStore, clock: FakeClock
) -> None:
    handler = Recorder(ConnectionError("activation system refused the connection"))
    worker = Worker(store, {"dispatch": handler}, clock=clock, threads=1)
    schedule(store, clock, "dispatch", "activity-1", after=timedelta(0))

    assert worker.run_due() == 1
    [job] = store.pending_jobs()
    assert job["attempts"] == 1
    assert "refused the connection" in job["last_error"]
    assert job["due_at"] > "2026-11-27T09:00:00.000Z"
    assert worker.run_due() == 0  # not due again until the backoff has passed

    clock.advance(minutes=1)
    assert worker.run_due() == 1
    assert handler.calls == [("activity-1", 0), ("activity-1", 1)]


def test_retry_later_uses_the_delay_the_handler_asks_for(store: SqlStore, clock: FakeClock) -> None:
    worker = Worker(
        store, {"poll": Recorder(RetryLater("still in progress", delay=timedelta(seconds=20)))}, clock=clock
    )
    schedule(store, clock, "poll", "ro-1", after=timedelta(0))
    worker.run_due()
    [job] = store.pending_jobs()
    assert job["due_at"] == "2026-11-27T09:00:20.000Z"


def test_a_job_that_gives_up_is_kept_as_failed_and_not_run_again(store: SqlStore, clock: FakeClock) -> None:
    handler = Recorder(GiveUp("resource order rejected: no capacity"))
    worker = Worker(store, {"dispatch": handler}, clock=clock)
    schedule(store, clock, "dispatch", "activity-1", after=timedelta(0))

    worker.run_due()
    clock.advance(hours=1)
    assert worker.run_due() == 0
    [job] = store.pending_jobs()
    assert job["failed_at"] is not None
    assert job["last_error"] == "resource order rejected: no capacity"


def test_a_job_of_unknown_kind_fails_visibly(store: SqlStore, clock: FakeClock) -> None:
    worker = Worker(store, {}, clock=clock)
    schedule(store, clock, "mystery", "x", after=timedelta(0))
    worker.run_due()
    [job] = store.pending_jobs()
    assert "no handler for job kind 'mystery'" in job["last_error"]
    assert job["failed_at"] is not None


def test_a_crashed_workers_lease_expires_and_another_worker_takes_the_job(
    store: SqlStore, clock: FakeClock
) -> None:
    schedule(store, clock, "dispatch", "activity-1", after=timedelta(0))
    crashed = store.claim_due_jobs(now=clock.now, owner="crashed", lease=timedelta(seconds=60), limit=10)
    assert [j.key for j in crashed] == ["activity-1"]

    handler = Recorder()
    other = Worker(store, {"dispatch": handler}, clock=clock, owner="other")
    assert other.run_due() == 0  # still leased
    clock.advance(seconds=61)
    assert other.run_due() == 1
    assert handler.calls == [("activity-1", 0)]
    assert store.pending_jobs() == []


@pytest.mark.parametrize("count", [40])
def test_many_due_jobs_each_run_exactly_once(store: SqlStore, clock: FakeClock, count: int) -> None:
    handler = Recorder()
    worker = Worker(store, {"deliver": handler}, clock=clock, threads=4, batch=16)
    for n in range(count):
        schedule(store, clock, "deliver", f"event-{n}", after=timedelta(0))
    assert worker.run_until_idle() == count
    assert sorted(k for k, _ in handler.calls) == sorted(f"event-{n}" for n in range(count))
