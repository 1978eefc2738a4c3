"""The shared use-case tests (tests/use_cases.py) on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from provtrack.adapters.store.repository import SqlStore
from provtrack.services.ports import AfterChange, Store
from tests.use_cases import *  # noqa: F403 - the shared tests run here
from tests.use_cases import StoreFactory


@pytest.fixture
def stores(store: SqlStore) -> StoreFactory:
    def make(hooks: Sequence[AfterChange]) -> Store:
        return SqlStore(store.engine, after_change=hooks)

    return make
