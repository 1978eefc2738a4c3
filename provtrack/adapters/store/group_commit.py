"""Group commit on SQLite: the write transactions of one process that arrive together commit together.

SQLite's COMMIT writes every page a transaction touched to the WAL, and a create touches ~15 (the
order row, its indexes, audit, outbox and job rows): at 16 connections it was the largest single
cost of a create (≈ 400 µs of ≈ 800 µs in the use case). Commits of many callers share most of those
pages (the index leaves new rows append to), so one COMMIT for many costs little more than one.

How: the writing connection keeps one transaction open, a *group*. Each caller runs its whole
transaction inside it, under this process's writer lock, between `SAVEPOINT` and `RELEASE`; a caller
whose block raises is rolled back to its savepoint alone, and the others' rows stay. The caller then
waits on its `Ticket` while the committer thread commits the group: callers that ran their blocks in
the meantime share that COMMIT. Nobody is answered before the COMMIT that made their rows durable
returns; if it fails, every caller of the group gets the error. The other processes on the file queue
on the lock file, held from the group's `BEGIN IMMEDIATE` to its COMMIT.

Callers on the API's event loop do not wait in the block: `commit_together()` collects their tickets
and the loop awaits them (`Pending.durable`) before answering, serving other requests meanwhile.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import Connection

from provtrack.adapters.store.database import WriterLock

_SAVEPOINT = "provtrack_caller"
# A checkpoint after this many COMMITs: at 16 creates a group, ~1-2 MB of WAL between checkpoints.
CHECKPOINT_EVERY = 32
RESTART_FRAMES = 4000  # pages of WAL (16 MB)


class Ticket:
    """One caller's place in a group: resolved once the group's COMMIT returned (or failed)."""

    __slots__ = ("_callbacks", "_done", "_lock", "error", "scheduled_jobs")

    def __init__(self, *, scheduled_jobs: bool) -> None:
        self.scheduled_jobs = scheduled_jobs
        self.error: BaseException | None = None
        self._done = False
        self._lock = threading.Lock()
        self._callbacks: list[Callable[[Ticket], object]] = []

    def resolve(self, error: BaseException | None) -> None:
        with self._lock:
            self.error, self._done = error, True
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback(self)

    def when_done(self, callback: Callable[[Ticket], object]) -> None:
        with self._lock:
            if not self._done:
                self._callbacks.append(callback)
                return
        callback(self)

    def wait(self) -> None:
        """Block this thread until committed; re-raise the COMMIT's error."""
        done = threading.Event()
        self.when_done(lambda _ticket: done.set())
        done.wait()
        if self.error is not None:
            raise self.error


class Pending:
    """Tickets of the transactions a caller ran with `commit_together()`: await them before answering."""

    def __init__(self, wake: Callable[[], None]) -> None:
        self.tickets: list[Ticket] = []
        self._wake = wake

    async def durable(self) -> None:
        loop = asyncio.get_running_loop()
        if self.tickets:
            # Not at once: after the callbacks ready now, which are other requests whose
            # transactions then join this COMMIT.
            loop.call_soon(self._wake)
        for ticket in self.tickets:
            future: asyncio.Future[None] = loop.create_future()

            def resolved(done: Ticket, future: asyncio.Future[None] = future) -> None:
                loop.call_soon_threadsafe(_settle, future, done.error)

            ticket.when_done(resolved)
            await future


def _settle(future: asyncio.Future[None], error: BaseException | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)


_COLLECTING: contextvars.ContextVar[Pending | None] = contextvars.ContextVar(
    "provtrack_pending", default=None
)


class _Group:
    __slots__ = ("conn", "tickets", "transaction")

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.transaction = conn.begin()  # BEGIN IMMEDIATE (database.py)
        self.tickets: list[Ticket] = []


class GroupCommit:
    """The writing side of one SQLite store: a group transaction, its committer thread, statistics."""

    def __init__(
        self,
        lock: WriterLock,
        connect: Callable[[], Connection],
        release: Callable[[Connection], None],
        jobs_committed: threading.Event,
        checkpoint: Callable[[], int] | None = None,
    ) -> None:
        self._lock = lock
        self._connect = connect  # a writing connection (BEGIN IMMEDIATE)
        self._release = release  # back to the idle ones, or closed
        self._jobs_committed = jobs_committed  # set after a COMMIT that scheduled jobs: wakes the worker
        self._group: _Group | None = None
        self._wake = threading.Event()
        self._closing = False
        self._thread: threading.Thread | None = None
        self._start = threading.Lock()
        self.commits = 0  # COMMITs run
        self.transactions = 0  # callers' transactions they made durable
        # The WAL is copied back into the database by a thread of its own (`checkpoint`: a PASSIVE
        # checkpoint, which never blocks writers), not inside a COMMIT every ~4 MB as SQLite does by
        # default: there it held up the group, and every request waiting on it (the create p99).
        self._checkpoint = checkpoint
        self._checkpoint_due = threading.Event()
        self._checkpointer: threading.Thread | None = None
        # Under steady load a group is always open, so the WAL never finds itself fully copied
        # when a transaction begins, which is when SQLite starts it over: past RESTART_FRAMES the
        # committer copies the last few frames itself between two groups, and the WAL restarts.
        self._restart_due = False

    @contextmanager
    def transaction(self, on_commit: Callable[[], bool]) -> Iterator[Connection]:
        """Run the block in the open group (opening one), in a savepoint of its own; then wait for the
        COMMIT, or hand the ticket to `commit_together()` when collecting. `on_commit()` tells,
        after the block, whether the transaction scheduled jobs (the committer wakes the worker)."""
        self._ensure_committer()
        with self._lock.thread():
            group = self._group
            if group is None:
                group = self._group = self._open()
            driver = group.conn.connection.driver_connection
            assert driver is not None
            driver.execute(f"SAVEPOINT {_SAVEPOINT}")
            try:
                yield group.conn
            except BaseException:
                self._roll_back_caller(group)
                if not group.tickets:  # no caller will wake the committer: the group must not stay open
                    self._wake.set()
                raise
            driver.execute(f"RELEASE {_SAVEPOINT}")
            ticket = Ticket(scheduled_jobs=on_commit())
            group.tickets.append(ticket)
        pending = _COLLECTING.get()
        if pending is not None:
            pending.tickets.append(ticket)  # the committer is woken when the caller awaits
            return
        self._wake.set()
        ticket.wait()

    @contextmanager
    def commit_together(self) -> Iterator[Pending]:
        """Transactions run in this block do not wait for their COMMIT: await `Pending.durable()`."""
        pending = Pending(self._wake.set)
        token = _COLLECTING.set(pending)
        try:
            yield pending
        except BaseException:
            if pending.tickets:  # the caller will not await them: commit them all the same
                self._wake.set()
            raise
        finally:
            _COLLECTING.reset(token)

    def _open(self) -> _Group:
        self._lock.hold_file()
        try:
            return _Group(self._connect())
        except BaseException:
            self._lock.release_file()
            raise

    def _roll_back_caller(self, group: _Group) -> None:
        driver = group.conn.connection.driver_connection
        assert driver is not None
        try:
            driver.execute(f"ROLLBACK TO {_SAVEPOINT}")
            driver.execute(f"RELEASE {_SAVEPOINT}")
        except Exception as exc:  # the connection is unusable: the whole group fails, reported to all
            self._group = None
            self._finish(group, exc)

    def _ensure_committer(self) -> None:
        if self._thread is not None:
            return
        with self._start:
            if self._thread is None and not self._closing:
                self._thread = threading.Thread(target=self._commit_loop, name="group-commit", daemon=True)
                self._thread.start()
                if self._checkpoint is not None:
                    self._checkpointer = threading.Thread(
                        target=self._checkpoint_loop, name="wal-checkpoint", daemon=True
                    )
                    self._checkpointer.start()

    def _commit_loop(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            with self._lock.thread():
                group, self._group = self._group, None
                if group is not None:
                    error: BaseException | None = None
                    try:
                        group.transaction.commit()
                        if self._restart_due:
                            self._restart_due = False
                            driver = group.conn.connection.driver_connection
                            assert driver is not None
                            driver.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    except Exception as exc:
                        error = exc
                    self._finish(group, error)
            if self._closing:
                return

    def _checkpoint_loop(self) -> None:
        assert self._checkpoint is not None
        while True:
            self._checkpoint_due.wait()
            self._checkpoint_due.clear()
            if self._closing:
                return
            if self._checkpoint() > RESTART_FRAMES:
                self._restart_due = True

    def _finish(self, group: _Group, error: BaseException | None) -> None:
        """After the COMMIT (or a failure): the lock file and connection back, then the callers."""
        if error is not None:
            try:
                group.transaction.rollback()
            except Exception:  # the callers get the first error; the connection is dropped
                group.conn.invalidate()
        self._lock.release_file()
        self._release(group.conn)
        self.commits += 1
        self.transactions += len(group.tickets)
        if self.commits % CHECKPOINT_EVERY == 0:
            self._checkpoint_due.set()
        if error is None and any(t.scheduled_jobs for t in group.tickets):
            self._jobs_committed.set()
        for ticket in group.tickets:
            ticket.resolve(error)

    def close(self) -> None:
        self._closing = True
        self._wake.set()
        self._checkpoint_due.set()
        for thread in (self._thread, self._checkpointer):
            if thread is not None:
                thread.join()
