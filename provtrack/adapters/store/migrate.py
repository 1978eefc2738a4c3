"""Bring a database to the newest schema with the Alembic migrations shipped in the package."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, Engine, text

MIGRATIONS = Path(__file__).with_name("migrations")
# Every process that starts migrates first: on PostgreSQL they queue on this transaction-scoped
# advisory lock (one per schema, so test runs in schemas of their own do not wait for each other),
# and whoever comes second finds the schema at head and does nothing.
MIGRATION_LOCK_SQL = "SELECT pg_advisory_xact_lock(hashtext('provtrack.migrate:' || current_schema()))"
DEFAULT_LOCK_TIMEOUT_SECONDS = 300.0
# 0003, 0004 and 0005 once all followed 0002 (three heads); they now follow one another. A database
# upgraded before is stamped with all three, which the linear history reads as overlapping.
FORMER_HEADS = ("0003", "0004", "0005")


class UnknownSchemaState(RuntimeError):
    """The database's recorded revisions fit neither the history nor its former shape."""


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def upgrade_database(
    engine: Engine, revision: str = "head", *, lock_timeout_seconds: float = DEFAULT_LOCK_TIMEOUT_SECONDS
) -> None:
    """Upgrade in one transaction that holds the migration lock from its first statement: on
    PostgreSQL the advisory lock above (waiting at most `lock_timeout_seconds`), on SQLite the write
    lock (`BEGIN IMMEDIATE`). Two processes starting at once never both migrate."""
    config = alembic_config()
    with engine.execution_options(provtrack_write=True).begin() as connection:
        take_migration_lock(connection, timeout_seconds=lock_timeout_seconds)
        config.attributes["connection"] = connection
        restamp_former_heads(config, connection)
        command.upgrade(config, revision)


def take_migration_lock(connection: Connection, *, timeout_seconds: float) -> None:
    """Hold the migration lock until this transaction ends (PostgreSQL; SQLite's BEGIN IMMEDIATE
    already holds its write lock)."""
    if connection.dialect.name != "postgresql":
        return
    connection.execute(text(f"SET LOCAL lock_timeout = {int(timeout_seconds * 1000)}"))
    connection.execute(text(MIGRATION_LOCK_SQL))


def restamp_former_heads(config: Config, connection: Connection) -> None:
    """A database stamped with the former heads is at the newest of them: record only that one."""
    current = set(MigrationContext.configure(connection).get_current_heads())
    if len(current) < 2:
        return
    applied = tuple(r for r in FORMER_HEADS if r in current)
    if current != set(applied) or applied != FORMER_HEADS[: len(applied)]:
        raise UnknownSchemaState(
            f"the database records revisions {', '.join(sorted(current))}, which the migration history "
            f"cannot continue from: upgrade it with the release that wrote them, or stamp it by hand"
        )
    command.stamp(config, applied[-1], purge=True)


def current_revisions(engine: Engine) -> tuple[str, ...]:
    with engine.connect() as connection:
        return tuple(MigrationContext.configure(connection).get_current_heads())
