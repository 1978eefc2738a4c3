"""Database engines: SQLite (WAL, one writer at a time) and PostgreSQL, from one URL."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.pool import NullPool

try:
    import fcntl
except ImportError:  # not POSIX: one process per SQLite file
    fcntl = None  # type: ignore[assignment]

MMAP_BYTES = 256 * 1024 * 1024

# A pooled PostgreSQL connection given back less than this long ago is used without a ping: a ping on
# every checkout (SQLAlchemy's pool_pre_ping) is a round trip per transaction, ~10% of a GET by id's
# CPU under load. One idle for longer is pinged first and replaced when it is dead. A connection that
# broke meanwhile fails its one transaction (an API request answers 500; a job is retried), and
# SQLAlchemy then drops every connection older than the failure, so the next ones reconnect.
PING_AFTER_IDLE_SECONDS = 5.0


class UnsupportedDatabase(ValueError):
    """A database URL provtrack cannot use."""


def normalise_url(url: str) -> str:
    """Accept `sqlite:///path` and `postgresql://...`; pick the driver provtrack ships with."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres", "postgresql+psycopg"):
        return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    if parsed.drivername in ("sqlite", "sqlite+pysqlite"):
        return url
    raise UnsupportedDatabase(
        f"unsupported database URL scheme {parsed.drivername!r}: use sqlite:///PATH or postgresql://..."
    )


def create_database_engine(url: str, *, pool_size: int = 20, pool_timeout: float = 30.0) -> Engine:
    """An engine for the URL. PostgreSQL: `pool_size` connections kept open and half as many again
    under a burst (`database_pool_size`), closed when they come back; SQLite keeps its own
    connections (no pool)."""
    url = normalise_url(url)
    if url.startswith("sqlite"):
        return _sqlite_engine(url)
    engine = create_engine(
        url, pool_size=pool_size, max_overflow=max(1, pool_size // 2), pool_timeout=pool_timeout
    )

    @event.listens_for(engine, "checkin")
    def _given_back(_dbapi_connection: Any, record: Any) -> None:
        record.info["given_back_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _alive(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        given_back = record.info.get("given_back_at")
        if given_back is None or time.monotonic() - given_back < PING_AFTER_IDLE_SECONDS:
            return  # new, or used a moment ago
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:
            raise DisconnectionError("the connection died while idle") from exc  # the pool reconnects

    return engine


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def sqlite_file(engine: Engine) -> str | None:
    """The database file of a SQLite engine (None: in memory, or not SQLite)."""
    if not is_sqlite(engine):
        return None
    database = engine.url.database
    return database if database and database != ":memory:" else None


class WriterLock:
    """SQLite's one writer at a time, queued here instead of spinning on SQLITE_BUSY.

    A thread lock queues this process's writers; an exclusive `flock` on `<database>-writer.lock`
    queues the writers of every process on the same file (`provtrack serve` and `provtrack worker`
    processes beside it): the kernel wakes the next one when the lock is free, where SQLite's busy
    handler would sleep 1, 2, 5, 10 ms and retry.
    """

    def __init__(self, database_file: str | None) -> None:
        self._threads = threading.Lock()
        self._fd: int | None = None
        self._file_held = False  # this process holds the lock file (a group is open: group_commit.py)
        if database_file is not None and fcntl is not None:
            self._fd = os.open(f"{database_file}-writer.lock", os.O_RDWR | os.O_CREAT, 0o644)

    def __enter__(self) -> None:
        self._threads.acquire()
        try:
            self.hold_file()
        except BaseException:
            self._threads.release()
            raise

    def __exit__(
        self, _type: type[BaseException] | None, _value: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.release_file()
        self._threads.release()

    @contextmanager
    def thread(self) -> Iterator[None]:
        """This process's half: one thread at a time."""
        with self._threads:
            yield

    def hold_file(self) -> None:
        """The other processes' half (call holding `thread()`): until `release_file`, which any
        thread of this process may call (a flock belongs to the open file, not to a thread)."""
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        self._file_held = True

    def release_file(self) -> None:
        self._file_held = False
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def busy(self) -> bool:
        """Whether a writer holds the lock now (in this process or another), without waiting. A
        group of this process's transactions waiting for its COMMIT is not busy: a caller joins it."""
        if not self._threads.acquire(blocking=False):
            return True
        try:
            if self._fd is not None and not self._file_held:
                try:
                    fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    return True
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            return False
        finally:
            self._threads.release()

    def busy_elsewhere(self) -> bool:
        """`busy()`, except for a group of this process's transactions (open, or in its COMMIT): a
        caller joins it after a short wait at most, where another process may write for long."""
        return not self._file_held and self.busy()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _sqlite_engine(url: str) -> Engine:
    database = make_url(url).database
    if not database or database == ":memory:":
        raise UnsupportedDatabase("an in-memory SQLite database is not supported: use sqlite:///PATH")
    Path(database).parent.mkdir(parents=True, exist_ok=True)
    # The store keeps its SQLite connections open between transactions itself (repository.py), as
    # many as run at once: no pool under it to run dry.
    engine = create_engine(url, poolclass=NullPool, connect_args={"check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" below issue BEGIN itself (pysqlite's own is deferred and late).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")  # durable at checkpoints; WAL keeps it consistent
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute("PRAGMA foreign_keys=ON")
        # Read pages through a shared memory map instead of copying them into each connection's cache.
        cursor.execute(f"PRAGMA mmap_size={MMAP_BYTES}")
        # Checkpoint every ~40 MB of WAL, not 4 MB: pages written by many commits are copied back once.
        cursor.execute("PRAGMA wal_autocheckpoint=10000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # A writer takes the write lock up front, so two writers never deadlock upgrading a read lock.
        write = connection.get_execution_options().get("provtrack_write", False)
        # Straight to the driver: a statement through SQLAlchemy costs more than the BEGIN itself.
        connection.connection.driver_connection.execute("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine
