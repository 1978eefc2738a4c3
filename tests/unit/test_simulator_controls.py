"""Every simulator's behaviour is read and changed at run time the same way (simulator/controls.py)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from provtrack.simulator.partner_ordering import PartnerOrderingSimulator
from provtrack.simulator.product_ordering import ProductOrderingSimulator
from provtrack.simulator.resource_ordering import ResourceOrderingSimulator


@pytest.mark.parametrize(
    ("simulator", "field", "value"),
    [
        (ResourceOrderingSimulator(), "failure_rate", 0.5),
        (PartnerOrderingSimulator(), "hold_rate", 0.25),
        (ProductOrderingSimulator(), "repeat", 2),
    ],
    ids=["resource", "partner", "product"],
)
def test_a_behaviour_change_is_applied_and_read_back(simulator: object, field: str, value: object) -> None:
    with TestClient(simulator.app()) as client:  # type: ignore[attr-defined]
        changed = client.put("/simulator/behaviour", json={field: value, "noSuchField": 1})
        assert changed.status_code == 200
        assert changed.json()[field] == value
        assert "noSuchField" not in changed.json()
        assert client.get("/simulator/behaviour").json()[field] == value
    assert getattr(simulator.behaviour, field) == value  # type: ignore[attr-defined]
