"""The SQL store: transactions over SQLite or PostgreSQL holding orders, cancel tasks and audit rows.

A write transaction on SQLite also holds the writer lock (`database.WriterLock`, across threads and
processes): SQLite has one writer at a time, and queueing writers is far cheaper than letting them
spin on SQLITE_BUSY.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine

from provtrack.adapters.store import jobs
from provtrack.adapters.store.database import WriterLock, is_sqlite, sqlite_file
from provtrack.adapters.store.escalation import DurationCache
from provtrack.adapters.store.group_commit import GroupCommit, Pending
from provtrack.adapters.store.transaction import SqlTransaction, Write
from provtrack.domain.jobs import Job
from provtrack.services.ports import AfterChange

JOBS_CHANNEL = "provtrack_jobs"

# SQLite: connections kept open between transactions, for writing and for reading, per engine (all
# the stores over one engine share them; the engine has no pool). list.pop and list.append are
# atomic: no lock. A burst may open more; beyond MAX_IDLE they are closed when they come back.
MAX_IDLE = 16
_IDLE: weakref.WeakKeyDictionary[Engine, dict[bool, list[Connection]]] = weakref.WeakKeyDictionary()


def _idle_connections(engine: Engine) -> dict[bool, list[Connection]]:
    return _IDLE.setdefault(engine, {True: [], False: []})


def _discard(conn: Connection) -> None:
    """Close for good: a reading connection is query_only, not fit to go back to the pool."""
    conn.invalidate()
    conn.close()


class SqlStore:
    def __init__(self, engine: Engine, *, after_change: Sequence[AfterChange] = ()) -> None:
        self.engine = engine
        # The features' hooks, given by the assembly (bootstrap.py); run by the unit of work.
        self.after_change = tuple(after_change)
        self.durations = DurationCache()  # learned durations, shared by this store's transactions
        self.sqlite = is_sqlite(engine)
        self._write_lock = WriterLock(sqlite_file(engine))
        self._idle = _idle_connections(engine) if self.sqlite else {}
        self._turns = [threading.Lock() for _ in range(64)]  # optimistic transactions, by order
        # Set after a commit that scheduled jobs: wakes this process's worker at once.
        self.jobs_committed = threading.Event()
        # SQLite: write transactions that arrive together share one COMMIT (group_commit.py).
        self.group_commit = GroupCommit(
            self._write_lock,
            lambda: self._checkout(write=True),
            lambda conn: self._checkin(conn, write=True),
            self.jobs_committed,
            checkpoint=self._checkpoint,
        )

    @contextmanager
    def transaction(self, *, write: bool, optimistic_on: str | None = None) -> Iterator[SqlTransaction]:
        """One transaction. On SQLite a writing one holds the writer lock from start to end, unless
        `optimistic_on` names the order it changes: then it reads and decides without the lock, its
        writes are queued, and they run at the end in one short write transaction under the lock,
        where the version checks of order and plan raise `ConcurrentUpdate` if another transaction
        changed them meanwhile. For use cases that retry on ConcurrentUpdate: the engine's, most of
        the writes. Optimistic transactions on the same order take turns within a process (they
        would conflict); across processes the version checks decide.
        On PostgreSQL `optimistic_on` changes nothing: writers do not exclude each other there."""
        if not self.sqlite and not write:
            # Each statement of a READ COMMITTED transaction takes its own snapshot anyway: a reading
            # one runs in autocommit, without the round trips of BEGIN and COMMIT (a GET by id: 1, not 3).
            with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                yield SqlTransaction(conn, self.engine.dialect.name, self.durations)
            return
        if not self.sqlite:
            with self.engine.connect() as conn, conn.begin():
                tx = SqlTransaction(conn, self.engine.dialect.name, self.durations)
                yield tx
                if tx.scheduled_jobs:
                    # Delivered on commit to workers in other processes (LISTEN provtrack_jobs).
                    conn.exec_driver_sql(f"NOTIFY {JOBS_CHANNEL}")
        elif write and optimistic_on is not None:
            writes: list[Write] = []
            with self._turns[hash(optimistic_on) % len(self._turns)]:
                with self._sqlite_transaction(write=False) as tx:
                    tx.queued_writes = writes
                    yield tx
                if writes:
                    with self.group_commit.transaction(lambda: tx.scheduled_jobs) as conn:
                        for write_now in writes:
                            write_now(conn)
            return  # the committer wakes the worker, once the writes are durable
        elif write:
            with self.group_commit.transaction(lambda: tx.scheduled_jobs) as conn:
                tx = SqlTransaction(conn, "sqlite", self.durations)
                yield tx
            return
        else:
            with self._sqlite_transaction(write=False) as tx:
                yield tx
        if tx.scheduled_jobs:
            self.jobs_committed.set()

    def commit_together(self) -> AbstractContextManager[Pending]:
        """Write transactions run in this block return before their COMMIT: the caller awaits
        `Pending.durable()` before it answers (the API's event loop: group_commit.py). Elsewhere
        (PostgreSQL) they commit as usual and there is nothing to await."""
        if self.sqlite:
            return self.group_commit.commit_together()
        return nullcontext(Pending(lambda: None))

    @contextmanager
    def _sqlite_transaction(self, *, write: bool) -> Iterator[SqlTransaction]:
        """On SQLite a connection stays open between transactions: checking one out of the pool
        and back cost more than most transactions (a file connection never goes stale). Reading
        connections are `query_only`: a write slipped into a reading transaction fails at once."""
        conn = self._checkout(write=write)
        try:
            with conn.begin():
                yield SqlTransaction(conn, "sqlite", self.durations)
        finally:
            self._checkin(conn, write=write)

    def _checkout(self, *, write: bool) -> Connection:
        try:
            return self._idle[write].pop()
        except IndexError:
            conn = self.engine.connect()
            if write:
                # Checkpoints run beside the writer, not in its COMMIT (group_commit.py).
                conn.exec_driver_sql("PRAGMA wal_autocheckpoint=0")
                conn.commit()
                return conn.execution_options(provtrack_write=True)  # BEGIN IMMEDIATE (database.py)
            conn.exec_driver_sql("PRAGMA query_only = ON")
            conn.commit()
            return conn

    def _checkin(self, conn: Connection, *, write: bool) -> None:
        # Kept unless it failed beyond a rollback, or a burst is over (MAX_IDLE are enough).
        idle = self._idle[write]
        if conn.invalidated or conn.in_transaction() or len(idle) >= MAX_IDLE:
            _discard(conn)
        else:
            idle.append(conn)

    def _checkpoint(self) -> int:
        """Copy the WAL's committed pages into the database without blocking anyone (PASSIVE);
        the pages in the WAL."""
        with self.engine.connect() as conn:
            # On the driver: inside a transaction (which SQLAlchemy would begin) it cannot run.
            driver = conn.connection.driver_connection
            assert driver is not None
            _busy, frames, _copied = driver.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            return int(frames)

    def answers_at_once(self, *, write: bool) -> bool:
        """SQLite, when no other transaction holds the writer (PostgreSQL waits on the network)."""
        return self.sqlite and not (write and self._write_lock.busy_elsewhere())

    def writer_busy(self) -> bool:
        """SQLite: another transaction (of this process or another) writes now. Never waits."""
        return self.sqlite and self._write_lock.busy()

    def dispose(self) -> None:
        self.group_commit.close()
        for idle in self._idle.values():
            while idle:
                _discard(idle.pop())
        self.engine.dispose()
        self._write_lock.close()

    # --- the job queue (the engine's side) ----------------------------------------------------

    def claim_due_jobs(
        self, *, now: datetime, owner: str, lease: timedelta, limit: int, finished: Sequence[Job] = ()
    ) -> list[Job]:
        """Claim due jobs; `finished` jobs of the same owner are removed in the same transaction."""
        with self.transaction(write=True) as tx:
            jobs.finish_many(tx.conn, finished, owner=owner)
            if limit <= 0:
                return []
            return jobs.claim_due(tx.conn, now=now, owner=owner, lease_until=now + lease, limit=limit)

    def finish_job(self, job: Job, *, owner: str) -> None:
        self.finish_jobs([job], owner=owner)

    def finish_jobs(self, finished: Sequence[Job], *, owner: str) -> None:
        with self.transaction(write=True) as tx:
            jobs.finish_many(tx.conn, finished, owner=owner)

    def retry_job(self, job: Job, *, owner: str, due_at: datetime, error: str) -> None:
        with self.transaction(write=True) as tx:
            jobs.retry(tx.conn, job, owner=owner, due_at=due_at, error=error)

    def give_up_job(self, job: Job, *, owner: str, now: datetime, error: str) -> None:
        with self.transaction(write=True) as tx:
            jobs.give_up(tx.conn, job, owner=owner, now=now, error=error)

    def next_job_due(self) -> datetime | None:
        with self.transaction(write=False) as tx:
            return jobs.next_due(tx.conn)

    def pending_jobs(self, *, kind: str | None = None) -> list[dict[str, Any]]:
        with self.transaction(write=False) as tx:
            return jobs.pending(tx.conn, kind=kind)
