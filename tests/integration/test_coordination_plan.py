"""A plan that mixes a resource order, a partner order and a manual task runs to the end."""

from __future__ import annotations

from tests.integration.coordination_harness import Coordination, coordination, item, order, partner_behaviour

__all__ = ["coordination", "partner_behaviour"]


def test_a_resource_order_a_partner_order_and_a_manual_task_complete_the_order(
    coordination: Coordination,
) -> None:
    c = coordination
    order_id = c.create(order(item("fibre", characteristics={"installationAddress": "12 Rue des Lilas"})))
    # The port is reserved and the ONT shipped (the partner notifies each step); the install waits.
    c.run_until(lambda: bool(c.tasks(serviceOrderId=order_id)))
    task = c.task_of(order_id)
    assert task["state"] == "queued"
    assert task["workGroup"] == "techs"
    assert task["instructions"] == "Install the ONT and measure the optical power."
    assert [f["name"] for f in task["checklist"]] == ["ontSerial", "opticalPowerDbm", "remarks"]
    [shipment] = c.partners.created("logistics")
    assert shipment["externalId"] == f"{c.activity(order_id, 'ship-ont')['id']}.1"
    assert shipment["serviceOrderItem"][0]["service"]["serviceCharacteristic"] == [
        {"name": "deliveryAddress", "value": "12 Rue des Lilas"}
    ]
    milestones = [m["name"] for m in c.order(order_id)["milestone"]]
    assert {"ship-ont: picked", "ship-ont: shipped", "ship-ont: delivered"} <= set(milestones)

    done = c.work(task["id"], ontSerial="ALCL-1234", opticalPowerDbm=-18.5)
    assert done["state"] == "completed"
    c.run_until(lambda: c.state(order_id) == "completed")

    finished = c.order(order_id)
    characteristics = finished["serviceOrderItem"][0]["service"]["serviceCharacteristic"]
    assert {"name": "ontSerial", "value": "ALCL-1234"} in characteristics
    activation = next(o for o in c.systems.created("inventory") if o["orderType"] == "activate-line")
    assert activation["orderItem"][0]["resource"]["resourceCharacteristic"] == [
        {"name": "ontSerial", "value": "ALCL-1234"}
    ]
    assert c.activity(order_id, "install-ont")["state"] == "done"
    assert c.partners.posts_received == 1
