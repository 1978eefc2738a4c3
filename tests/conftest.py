"""Shared fixtures: an injected clock, a store per database, the app and an HTTP client.

Integration tests run on SQLite and on PostgreSQL. PostgreSQL is taken from
PROVTRACK_TEST_POSTGRES_URL (default postgresql://postgres@127.0.0.1:5432/test), in a schema of the
session's own, dropped afterwards. Each database is migrated once per session and emptied before every
test that takes `store` (migrating per test made the suite several times slower); a test that needs a
blank, unmigrated database makes its own.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest
import sqlalchemy
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from provtrack.adapters.store.database import create_database_engine
from provtrack.adapters.store.migrate import upgrade_database
from provtrack.adapters.store.repository import SqlStore
from provtrack.api.app import create_app
from provtrack.api.security import Trusted
from provtrack.domain.access import Principal
from provtrack.settings import Settings

# Tests that are not about access act as an administrator; tests/integration/test_access.py builds
# apps with the real token check (the default of create_app and of `provtrack serve`).
ADMIN = Principal("test-admin", frozenset({"admin"}), via="test")
AS_ADMIN = Trusted(ADMIN)

POSTGRES_URL = os.environ.get("PROVTRACK_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


@dataclass
class FakeClock:
    """A clock the test moves by hand: time never passes by itself."""

    now: datetime = field(default_factory=lambda: datetime(2026, 11, 27, 9, 0, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@contextmanager
def postgres_schema() -> Iterator[str]:
    """The URL of a blank PostgreSQL schema of its own, dropped when the block ends."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sqlalchemy.create_engine(POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://", 1))
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    separator = "&" if "?" in POSTGRES_URL else "?"
    # Commits need not reach the disk in a throwaway schema: this halves the time of a write.
    options = f"-csearch_path={schema} -csynchronous_commit=off"
    try:
        yield f"{POSTGRES_URL}{separator}options={quote(options)}"
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()


@pytest.fixture(scope="session", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'provtrack.db'}"
        return
    with postgres_schema() as url:
        yield url


@pytest.fixture(scope="session")
def migrated_engine(database_url: str) -> Iterator[Engine]:
    engine = create_database_engine(database_url)
    upgrade_database(engine)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def data_tables(migrated_engine: Engine) -> list[sqlalchemy.Table]:
    """The migrated tables that hold data, dependents first."""
    tables = sqlalchemy.MetaData()
    tables.reflect(migrated_engine)
    return [t for t in reversed(tables.sorted_tables) if t.name != "alembic_version"]


@pytest.fixture
def store(migrated_engine: Engine, data_tables: list[sqlalchemy.Table]) -> SqlStore:
    """A store over empty tables of the migrated database."""
    with migrated_engine.begin() as conn:
        for table in data_tables:
            conn.execute(table.delete())
    return SqlStore(migrated_engine)


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url)


@pytest.fixture
def client(settings: Settings, store: SqlStore, clock: FakeClock) -> Iterator[TestClient]:
    app = create_app(settings, store, clock=clock, authenticator=AS_ADMIN)
    with TestClient(app, base_url="http://testserver") as test_client:
        yield test_client
