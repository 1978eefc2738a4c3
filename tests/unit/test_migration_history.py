"""The migration history is one line: every revision follows the one before, and there is one head."""

from __future__ import annotations

from alembic.script import ScriptDirectory

from provtrack.adapters.store.migrate import alembic_config


def test_the_migrations_have_a_single_head() -> None:
    assert ScriptDirectory.from_config(alembic_config()).get_heads() == ["0006"]


def test_each_migration_follows_the_one_before_it() -> None:
    scripts = ScriptDirectory.from_config(alembic_config())
    chain = [(s.revision, s.down_revision) for s in reversed(list(scripts.walk_revisions()))]
    assert chain == [
        ("0001", None),
        ("0002", "0001"),
        ("0003", "0002"),
        ("0004", "0003"),
        ("0005", "0004"),
        ("0006", "0005"),
    ]
