"""The serving worker claims jobs as threads come free: a job that hangs holds one thread only."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

from provtrack.adapters.store.repository import SqlStore
from provtrack.domain.jobs import Job, JobRequest
from provtrack.engine.worker import Worker


def test_a_hanging_job_does_not_hold_back_jobs_claimed_after_it(store: SqlStore) -> None:
    release = threading.Event()
    ran: list[str] = []

    def hang(job: Job, now: datetime) -> None:
        ran.append(job.key)
        release.wait(30)

    def quick(job: Job, now: datetime) -> None:
        ran.append(job.key)

    worker = Worker(
        store,
        {"hang": hang, "quick": quick},
        clock=lambda: datetime.now(UTC),
        threads=2,
        poll_interval=timedelta(milliseconds=50),
    )
    thread = threading.Thread(target=worker.serve, daemon=True)
    thread.start()
    try:
        now = datetime.now(UTC)
        with store.transaction(write=True) as tx:
            tx.schedule_job(JobRequest("hang", "stuck", now), now=now)
        deadline = time.monotonic() + 10
        while "stuck" not in ran and time.monotonic() < deadline:
            time.sleep(0.005)
        for n in range(5):
            with store.transaction(write=True) as tx:
                tx.schedule_job(JobRequest("quick", f"q{n}", now), now=now)
        while len(ran) < 6 and time.monotonic() < deadline:
            time.sleep(0.005)
        assert sorted(ran) == ["q0", "q1", "q2", "q3", "q4", "stuck"]
        assert not release.is_set()  # all of them ran while the first still hung
    finally:
        release.set()
        worker.stop()
        thread.join(timeout=10)
    assert store.pending_jobs() == []
