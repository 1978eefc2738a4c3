"""The shared use-case tests (tests/use_cases.py) on the in-memory store: no database."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from provtrack.adapters.memory_store import MemoryStore
from provtrack.services import cancellation, withdrawals
from provtrack.services.ports import AfterChange, Store
from tests.use_cases import *  # noqa: F403 - the shared tests run here
from tests.use_cases import CATALOG, StoreFactory, _named, _reserved_and_activating, ctx


@pytest.fixture
def stores() -> StoreFactory:
    def make(hooks: Sequence[AfterChange]) -> Store:
        return MemoryStore(after_change=hooks)

    return make


def test_a_cancellation_announces_every_state_of_its_task() -> None:
    """In-memory only (the outbox is read directly): what a subscriber to the hub would receive."""
    store = MemoryStore(after_change=(cancellation.CancellationBookkeeping(CATALOG).after_change,))
    order_id = _reserved_and_activating(store)
    cancellation.request_cancellation(store, {"serviceOrder": {"id": order_id}}, ctx=ctx(), catalog=CATALOG)
    request = withdrawals.withdrawal_request(store, _named(store, order_id, "cancel-activate-line")["id"])
    assert request is not None
    withdrawals.record_withdrawal_refused(store, request, 409, {"message": "no"}, ctx=ctx())

    task_events = [e for e in store.outbox(order_id) if e.startswith("CancelServiceOrder")]
    assert task_events == [
        "CancelServiceOrderCreateEvent",
        "CancelServiceOrderStateChangeEvent",  # inProgress
        "CancelServiceOrderInformationRequiredEvent",  # held: a decision is needed
    ]
