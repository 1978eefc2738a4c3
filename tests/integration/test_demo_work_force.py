"""The demo's simulated work force works the queues through the work API until the orders complete."""

from __future__ import annotations

import random

from provtrack.simulator.work_force import Pace, WorkForce
from tests.integration.coordination_harness import Coordination, coordination, item, order, partner_behaviour

__all__ = ["coordination", "partner_behaviour"]
AT_ONCE = (0.0, 0.0)


def test_the_work_force_claims_starts_and_completes_tasks_with_their_checklists(
    coordination: Coordination,
) -> None:
    c = coordination
    force = WorkForce(c.api, Pace(AT_ONCE, AT_ONCE, AT_ONCE, 0.0, 0.0, 0.0), random.Random(5))
    orders = [c.create(order(item("fibre"), externalId=f"BSS-{n}")) for n in range(3)]

    c.run_until(lambda: force.step() >= 0 and all(c.state(o) == "completed" for o in orders))

    for order_id in orders:
        [task] = c.tasks(serviceOrderId=order_id)
        assert task["assignee"] in ("amelie", "bruno", "chloe")
        assert set(task["checklistValues"]) >= {"ontSerial", "opticalPowerDbm"}


def test_the_simulated_customer_supplies_what_a_task_asks_for(coordination: Coordination) -> None:
    c = coordination
    force = WorkForce(c.api, Pace(AT_ONCE, AT_ONCE, AT_ONCE, 0.0, 0.0, 1.0), random.Random(5))
    order_id = c.create(order(item("visit")))

    c.run_until(lambda: force.step() >= 0 and c.state(order_id) == "completed")

    [task] = c.tasks(serviceOrderId=order_id)
    assert [i["name"] for i in task["informationRequired"]] == ["accessCode"]
    characteristics = c.order(order_id)["serviceOrderItem"][0]["service"]["serviceCharacteristic"]
    assert [ch["name"] for ch in characteristics] == ["accessCode", "ontSerial"]
