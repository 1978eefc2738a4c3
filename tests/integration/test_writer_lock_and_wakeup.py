"""Two stores on one SQLite file, as `provtrack serve` and `provtrack worker` processes have: their
writers queue on the writer lock, and a job one commits wakes the other's worker.

Threads are sequenced with events; real time is only ever a bounded wait for an event."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
import sqlalchemy

from provtrack.adapters.store.database import create_database_engine, sqlite_file
from provtrack.adapters.store.notify import DataVersionWatch, start_job_listener
from provtrack.adapters.store.repository import SqlStore
from provtrack.domain.jobs import JobRequest, Lease

WAIT = 5.0  # seconds: the bound on waiting for something that is to happen
QUIET = 0.2  # seconds: how long something that is not to happen is given to happen anyway
PAST = datetime(2000, 1, 1, tzinfo=UTC)  # due now, whatever the real clock says
FAR_FUTURE = datetime(2999, 1, 1, tzinfo=UTC)


@pytest.fixture
def two_stores(store: SqlStore) -> Iterator[tuple[SqlStore, SqlStore]]:
    """Two stores, each with its own engine, on the migrated (and emptied) SQLite file."""
    if sqlite_file(store.engine) is None:
        pytest.skip("SQLite file databases only: PostgreSQL writers do not queue, and LISTEN wakes workers")
    url = store.engine.url.render_as_string(hide_password=False)
    first, second = SqlStore(create_database_engine(url)), SqlStore(create_database_engine(url))
    yield first, second
    first.dispose()
    second.dispose()


def in_thread(target: Callable[[], None]) -> threading.Thread:
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread


def test_writers_of_two_stores_on_one_file_take_turns(two_stores: tuple[SqlStore, SqlStore]) -> None:
    first, second = two_stores
    assert not first.writer_busy()
    assert not second.writer_busy()
    first_writing, first_may_end, second_writing = threading.Event(), threading.Event(), threading.Event()
    happened: list[str] = []

    def write_first() -> None:
        with first.transaction(write=True):
            first_writing.set()
            assert first_may_end.wait(WAIT)
            happened.append("first ends")

    def write_second() -> None:
        with second.transaction(write=True):
            happened.append("second begins")
            second_writing.set()

    first_thread = in_thread(write_first)
    try:
        assert first_writing.wait(WAIT)
        assert second.writer_busy()  # through the lock file: the two stores share nothing else
        second_thread = in_thread(write_second)
        assert not second_writing.wait(QUIET)
    finally:
        first_may_end.set()
    assert second_writing.wait(WAIT)
    first_thread.join(WAIT)
    second_thread.join(WAIT)
    assert happened == ["first ends", "second begins"]
    assert not first.writer_busy()
    assert not second.writer_busy()


def test_only_a_writing_transaction_makes_the_writer_busy(two_stores: tuple[SqlStore, SqlStore]) -> None:
    first, second = two_stores

    with first.transaction(write=False):
        assert not second.writer_busy()
    with first.transaction(write=True, optimistic_on="order-1") as tx:
        tx.schedule_job(JobRequest("test.job", "a", FAR_FUTURE), now=PAST)
        assert not first.writer_busy()  # an optimistic transaction decides without the lock
        assert not second.writer_busy()
    with first.transaction(write=True):
        assert first.writer_busy()
        assert second.writer_busy()
    assert not first.writer_busy()
    assert [job["key"] for job in second.pending_jobs(kind="test.job")] == ["a"]


def schedule(store: SqlStore, key: str, due_at: datetime, lease: Lease | None = None) -> None:
    with store.transaction(write=True) as tx:
        tx.schedule_job(JobRequest("test.wake", key, due_at, lease=lease), now=PAST)


def test_the_data_version_watch_sees_due_jobs_another_store_commits_and_only_those(
    two_stores: tuple[SqlStore, SqlStore],
) -> None:
    watched, other = two_stores
    database = sqlite_file(watched.engine)
    assert database is not None
    watch = DataVersionWatch(database, clock=lambda: datetime(2026, 11, 27, 9, tzinfo=UTC))
    try:
        assert watch.look() is None  # nothing committed since it started

        schedule(other, "in a long while", FAR_FUTURE)
        assert watch.look() is False  # a commit, but nothing due
        schedule(other, "held by its scheduler", PAST, Lease("provtrack-engine-1", FAR_FUTURE))
        assert watch.look() is False  # due, but leased
        assert watch.look() is None

        schedule(other, "due", PAST)
        assert watch.look() is True
    finally:
        watch.close()


def test_the_job_watcher_thread_wakes_the_worker_and_stops(two_stores: tuple[SqlStore, SqlStore]) -> None:
    watched, other = two_stores
    wake, stop = threading.Event(), threading.Event()
    watcher = start_job_listener(watched.engine, wake, stop)
    assert watcher is not None
    try:
        # Until the thread has read the version once, a commit is what it starts from: commit
        # again until it wakes (the same job each time), within the bound.
        for _ in range(int(WAIT / 0.05)):
            schedule(other, "due", PAST)
            if wake.wait(0.05):
                break
        assert wake.is_set()
    finally:
        stop.set()
        watcher.join(WAIT)
    assert not watcher.is_alive()


def test_an_in_memory_database_has_no_job_watcher() -> None:
    engine = sqlalchemy.create_engine("sqlite://")  # create_database_engine makes no in-memory engine
    try:
        assert start_job_listener(engine, threading.Event(), threading.Event()) is None
    finally:
        engine.dispose()
