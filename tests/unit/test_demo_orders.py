"""The demo feed sends orders the API accepts and the demo catalog can plan, of every kind."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from provtrack.adapters.catalog_file import load_catalog
from provtrack.domain.catalog import ActivityKind
from provtrack.domain.model import ServiceOrder
from provtrack.domain.plan import build_plan
from provtrack.domain.validation import validate_new_order
from provtrack.simulator.demo_orders import book_visits, demo_order

VISIT = datetime(2026, 12, 1, 14, 0, tzinfo=UTC)


def test_every_kind_of_demo_order_is_valid_and_plannable() -> None:
    catalog = load_catalog("demo")
    rng = random.Random(7)
    ids = iter(range(10**6))
    specifications: set[str] = set()
    kinds: set[ActivityKind] = set()
    for n in range(300):
        body = validate_new_order(book_visits(demo_order(rng), VISIT))
        order = ServiceOrder.accept(body, order_id=f"o{n}", now="2026-12-01T09:00:00.000Z", actor="test")
        plan = build_plan(order, catalog, now=order.order_date, new_id=lambda: f"a{next(ids)}")
        assert plan.activities
        kinds |= {a.kind for a in plan.activities}
        for install in (a for a in plan.activities if a.name == "install-ont"):
            assert install.earliest_start == "2026-12-01T14:00:00.000Z"
            assert install.working_hours is not None
        specifications |= {i["service"]["serviceSpecification"]["id"] for i in body["serviceOrderItem"]}
    assert kinds == set(ActivityKind)  # technicians' visits and partners' deliveries run in the demo
    assert specifications == {
        "ftth-residential",
        "iptv-addon",
        "business-ethernet-eline",
        "sdwan-site",
        "mobile-sim-port-in",
    }
