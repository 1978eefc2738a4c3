"""The Alembic migrations build exactly the schema the code's tables describe."""

from __future__ import annotations

import importlib
import pkgutil

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import provtrack.adapters.store as store_package
from provtrack.adapters.store.repository import SqlStore
from provtrack.adapters.store.tables import metadata


def _load_all_table_modules() -> None:
    for module in pkgutil.iter_modules(store_package.__path__):
        if module.name != "migrations":
            importlib.import_module(f"{store_package.__name__}.{module.name}")


def test_migrations_and_table_definitions_agree(store: SqlStore) -> None:
    _load_all_table_modules()
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []
