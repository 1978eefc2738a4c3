"""The shared use-case tests (tests/use_cases.py) on the in-memory store: no database."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from provtrack.adapters.memory_store import MemoryStore
from provtrack.services.ports import AfterChange, Store
from tests.use_cases import *  # noqa: F403 - the shared tests run here
from tests.use_cases import StoreFactory


@pytest.fixture
def stores() -> StoreFactory:
    def make(hooks: Sequence[AfterChange]) -> Store:
        return MemoryStore(after_change=hooks)

    return make
