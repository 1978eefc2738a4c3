"""PostgreSQL connections: a pooled connection used a moment ago is taken as alive (no ping round trip
per transaction); one idle for longer is pinged first and, found dead, replaced before anyone uses it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError

from provtrack.adapters.store import database
from provtrack.adapters.store.database import create_database_engine
from tests.conftest import POSTGRES_URL, postgres_schema

pytestmark = pytest.mark.postgres


@pytest.fixture
def engine() -> Iterator[Engine]:
    with postgres_schema() as url:
        engine = create_database_engine(url, pool_size=1)
        yield engine
        engine.dispose()


def _backend_dies_while_idle(engine: Engine) -> int:
    """The pid of the pooled connection's server process, killed from outside while it is idle."""
    with engine.connect() as conn:
        pid = int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())
    admin = sqlalchemy.create_engine(POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://", 1))
    with admin.begin() as conn:
        conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    admin.dispose()
    return pid


def test_a_connection_that_died_while_idle_is_replaced_before_use(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    dead = _backend_dies_while_idle(engine)
    monkeypatch.setattr(database, "PING_AFTER_IDLE_SECONDS", 0.0)  # it has been idle long enough
    with engine.connect() as conn:
        assert conn.execute(text("SELECT pg_backend_pid()")).scalar_one() != dead


def test_a_connection_used_a_moment_ago_is_not_pinged(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    _backend_dies_while_idle(engine)
    monkeypatch.setattr(database, "PING_AFTER_IDLE_SECONDS", 3600.0)
    with pytest.raises(OperationalError), engine.connect() as conn:  # the one transaction that fails
        conn.execute(text("SELECT 1"))
    with engine.connect() as conn:  # the pool was dropped: the next one reconnects
        assert conn.execute(text("SELECT 1")).scalar_one() == 1
