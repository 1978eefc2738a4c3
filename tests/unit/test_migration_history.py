"""The migration history is one line: every revision follows the one before, and there is one head."""

from __future__ import annotations

import itertools

from alembic.script import ScriptDirectory

from provtrack.adapters.store.migrate import alembic_config


def _chain() -> list[tuple[str, str | None]]:
    scripts = ScriptDirectory.from_config(alembic_config())
    return [(s.revision, s.down_revision) for s in reversed(list(scripts.walk_revisions()))]  # type: ignore[misc]


def test_the_migrations_have_a_single_head() -> None:
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    assert heads == [_chain()[-1][0]]


def test_each_migration_follows_the_one_before_it_numbered_in_order() -> None:
    chain = _chain()
    assert chain[0] == ("0001", None)
    for (previous, _), (revision, down) in itertools.pairwise(chain):
        assert down == previous
        assert int(revision) == int(previous) + 1
