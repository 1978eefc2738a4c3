"""What scheduling does to a job that exists already, and the other named moves of the job manager."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import literal

from provtrack.adapters.store import jobs
from provtrack.adapters.store.repository import SqlStore
from provtrack.domain.clock import format_datetime
from provtrack.domain.jobs import Job, JobRequest
from provtrack.engine.worker import Worker
from tests.conftest import FakeClock


def ask(store: SqlStore, request: JobRequest, now: datetime, *, replace: bool = True) -> None:
    with store.transaction(write=True) as tx:
        tx.schedule_job(request, now=now, replace=replace)


def due_times(store: SqlStore, kind: str = "k") -> dict[str, str]:
    return {j["key"]: j["due_at"] for j in store.pending_jobs(kind=kind)}


def test_a_request_to_run_again_leaves_a_pending_job_at_its_time(store: SqlStore, clock: FakeClock) -> None:
    ask(store, JobRequest("k", "a", clock.now + timedelta(minutes=10)), clock.now)  # backing off, say
    ask(store, JobRequest("k", "a", clock.now, run_again=True), clock.now)
    assert due_times(store) == {"a": "2026-11-27T09:10:00.000Z"}


def test_a_request_to_run_again_while_the_job_runs_makes_it_run_once_more(
    store: SqlStore, clock: FakeClock
) -> None:
    runs: list[int] = []

    def handler(job: Job, now: datetime) -> None:
        runs.append(job.attempts)
        if len(runs) == 1:  # work added while it runs, at the very moment it was due
            ask(store, JobRequest("k", "a", job.due_at, run_again=True), now)

    ask(store, JobRequest("k", "a", clock.now), clock.now)
    Worker(store, {"k": handler}, clock=clock, threads=1).run_until_idle()

    assert len(runs) == 2
    assert store.pending_jobs() == []


def test_a_request_to_keep_does_not_run_a_running_job_again(store: SqlStore, clock: FakeClock) -> None:
    runs: list[int] = []

    def handler(job: Job, now: datetime) -> None:
        runs.append(job.attempts)
        ask(store, JobRequest("k", "a", now + timedelta(seconds=1)), now, replace=False)

    ask(store, JobRequest("k", "a", clock.now), clock.now)
    Worker(store, {"k": handler}, clock=clock, threads=1).run_until_idle()
    clock.advance(seconds=5)
    Worker(store, {"k": handler}, clock=clock, threads=1).run_until_idle()

    assert len(runs) == 1


def test_run_now_brings_later_jobs_of_a_key_prefix_forward_and_no_others(
    store: SqlStore, clock: FakeClock
) -> None:
    for key in ("s1/o1", "s1/o2", "s10/o1"):
        ask(store, JobRequest("k", key, clock.now + timedelta(minutes=10)), clock.now)
    with store.transaction(write=True) as tx:
        moved = jobs.run_now(tx.conn, "k", now=clock.now, key_prefix="s1/")
    assert moved == 2
    assert due_times(store) == {
        "s1/o1": "2026-11-27T09:00:00.000Z",
        "s1/o2": "2026-11-27T09:00:00.000Z",
        "s10/o1": "2026-11-27T09:10:00.000Z",
    }


def test_move_if_moves_a_job_only_while_its_condition_holds(store: SqlStore, clock: FakeClock) -> None:
    ask(store, JobRequest("k", "a", clock.now), clock.now)
    later = clock.now + timedelta(minutes=10)
    with store.transaction(write=True) as tx:
        assert not jobs.move_if(tx.conn, "k", "a", due_at=later, condition=literal(1) == 2)
        assert jobs.move_if(tx.conn, "k", "a", due_at=later, condition=literal(1) == 1)
        assert not jobs.move_if(tx.conn, "k", "missing", due_at=later, condition=literal(1) == 1)
    assert due_times(store) == {"a": format_datetime(later)}


def test_cancel_prefix_deletes_the_keys_that_start_with_it_wildcards_included(
    store: SqlStore, clock: FakeClock
) -> None:
    for key in ("s_1/o1", "s_1/o2", "sx1/o1"):
        ask(store, JobRequest("k", key, clock.now), clock.now)
    with store.transaction(write=True) as tx:
        assert jobs.cancel_prefix(tx.conn, "k", "s_1/") == 2
    assert list(due_times(store)) == ["sx1/o1"]
