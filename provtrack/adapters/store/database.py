"""Database engines: SQLite (WAL, one writer at a time) and PostgreSQL, from one URL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

MMAP_BYTES = 256 * 1024 * 1024


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


def create_database_engine(url: str, *, pool_size: int = 10) -> Engine:
    url = normalise_url(url)
    if url.startswith("sqlite"):
        return _sqlite_engine(url)
    return create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def _sqlite_engine(url: str) -> Engine:
    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, pool_size=20, max_overflow=20, connect_args={"check_same_thread": False})

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
