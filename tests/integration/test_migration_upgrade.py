"""Databases upgraded while the history had three heads (0003, 0004, 0005 after 0002) upgrade on."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import text

from provtrack.adapters.store.database import create_database_engine
from provtrack.adapters.store.migrate import (
    UnknownSchemaState,
    alembic_config,
    current_revisions,
    upgrade_database,
)


def stamped(path: Path, revisions: list[str]) -> str:
    """A database with the schema through 0005, recording `revisions` as its heads, holding a dead
    letter queued for replay by a job of the former kind (one per dead letter)."""
    url = f"sqlite:///{path}"
    engine = create_database_engine(url)
    upgrade_database(engine, "0005")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO outbox_event (id, event_id, service_order_id, event_type, event_time) "
                "VALUES (7, 'e-7', 'o-1', 'ServiceOrderCreateEvent', '2026-11-27T09:00:00.000Z')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO event_dead_letter (id, subscription_id, outbox_id, service_order_id, event_type, "
                "dead_at, attempts, last_error, replayed_at) VALUES (3, 'sub-1', 7, 'o-1', "
                "'ServiceOrderCreateEvent', '2026-11-28T09:00:00.000Z', 30, 'HTTP 503', "
                "'2026-11-28T10:00:00.000Z')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO job (kind, key, due_at, payload, attempts, created_at) VALUES "
                "('events.redeliver', '3', '2026-11-28T10:00:00.000Z', '{}', 0, '2026-11-28T10:00:00.000Z')"
            )
        )
        conn.execute(text("DELETE FROM alembic_version"))
        for revision in revisions:
            conn.execute(text("INSERT INTO alembic_version VALUES (:r)"), {"r": revision})
    engine.dispose()
    return url


def test_a_database_stamped_with_the_three_former_heads_upgrades_to_the_single_head(tmp_path: Path) -> None:
    engine = create_database_engine(stamped(tmp_path / "old.db", ["0003", "0004", "0005"]))
    try:
        upgrade_database(engine)
        assert current_revisions(engine) == tuple(ScriptDirectory.from_config(alembic_config()).get_heads())
        with engine.connect() as conn:
            assert conn.execute(text("SELECT event_id FROM event_dead_letter")).scalar_one() == "e-7"
            replays = conn.execute(text("SELECT key, payload FROM job WHERE kind = 'events.redeliver'")).all()
        assert [tuple(r) for r in replays] == [("sub-1", '{"subscription": "sub-1"}')]
    finally:
        engine.dispose()


def test_a_stamp_the_history_cannot_continue_from_is_refused_saying_so(tmp_path: Path) -> None:
    engine = create_database_engine(stamped(tmp_path / "odd.db", ["0004", "0005"]))
    try:
        with pytest.raises(UnknownSchemaState, match="0004, 0005"):
            upgrade_database(engine)
    finally:
        engine.dispose()
