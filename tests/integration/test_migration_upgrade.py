"""Databases upgraded while the history had three heads (0003, 0004, 0005 after 0002) upgrade on."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from provtrack.adapters.store.database import create_database_engine
from provtrack.adapters.store.migrate import UnknownSchemaState, current_revisions, upgrade_database


def stamped(path: Path, revisions: list[str]) -> str:
    """A database with the schema through 0005, recording `revisions` as its heads."""
    url = f"sqlite:///{path}"
    engine = create_database_engine(url)
    upgrade_database(engine, "0005")
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM alembic_version"))
        for revision in revisions:
            conn.execute(text("INSERT INTO alembic_version VALUES (:r)"), {"r": revision})
    engine.dispose()
    return url


def test_a_database_stamped_with_the_three_former_heads_upgrades_to_the_single_head(tmp_path: Path) -> None:
    engine = create_database_engine(stamped(tmp_path / "old.db", ["0003", "0004", "0005"]))
    try:
        upgrade_database(engine)
        assert current_revisions(engine) == ("0005",)
    finally:
        engine.dispose()


def test_a_stamp_the_history_cannot_continue_from_is_refused_saying_so(tmp_path: Path) -> None:
    engine = create_database_engine(stamped(tmp_path / "odd.db", ["0004", "0005"]))
    try:
        with pytest.raises(UnknownSchemaState, match="0004, 0005"):
            upgrade_database(engine)
    finally:
        engine.dispose()
