"""Bring a database to the newest schema with the Alembic migrations shipped in the package."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, Engine

MIGRATIONS = Path(__file__).with_name("migrations")
# 0003, 0004 and 0005 once all followed 0002 (three heads); they now follow one another. A database
# upgraded before is stamped with all three, which the linear history reads as overlapping.
FORMER_HEADS = ("0003", "0004", "0005")


class UnknownSchemaState(RuntimeError):
    """The database's recorded revisions fit neither the history nor its former shape."""


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def upgrade_database(engine: Engine, revision: str = "head") -> None:
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        restamp_former_heads(config, connection)
        command.upgrade(config, revision)


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
