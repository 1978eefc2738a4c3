"""Processes that start at once on PostgreSQL migrate one after another under an advisory lock."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import text

from provtrack.adapters.store.database import create_database_engine
from provtrack.adapters.store.migrate import (
    alembic_config,
    current_revisions,
    take_migration_lock,
    upgrade_database,
)
from tests.conftest import postgres_schema
from tests.e2e.waiting import wait_for

pytestmark = pytest.mark.postgres
HEAD = tuple(ScriptDirectory.from_config(alembic_config()).get_heads())


def test_three_processes_migrating_a_blank_schema_at_once_all_end_at_the_head() -> None:
    with postgres_schema() as url:
        engines = [create_database_engine(url, pool_size=1) for _ in range(3)]
        try:
            with ThreadPoolExecutor(3) as pool:
                list(pool.map(upgrade_database, engines))  # without the lock: "relation already exists"
            assert current_revisions(engines[0]) == HEAD
        finally:
            for engine in engines:
                engine.dispose()


def test_a_migration_waits_while_another_holds_the_lock_and_then_finds_nothing_to_do() -> None:
    with postgres_schema() as url:
        engine = create_database_engine(url, pool_size=2)
        try:
            upgrade_database(engine)
            with ThreadPoolExecutor(1) as pool, engine.connect() as holder:
                holder.begin()
                take_migration_lock(holder, timeout_seconds=30)
                waiting = pool.submit(upgrade_database, engine)

                def blocked() -> bool:
                    query = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                    return bool(holder.execute(text(query)).scalar_one())

                wait_for(blocked, timeout=30, what="the second migration to wait for the lock")
                assert not waiting.done()
                holder.rollback()
                waiting.result(timeout=30)
            assert current_revisions(engine) == HEAD
        finally:
            engine.dispose()
