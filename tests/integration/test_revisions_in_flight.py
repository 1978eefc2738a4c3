"""Revisions under way: a PATCH of an order's items re-plans only what changed, until the item's point
of no return; against simulated TMF652 systems over real HTTP."""

from __future__ import annotations

from typing import Any

from tests.integration.cancellation_harness import Cancelling, cancelling, fibre_order
from tests.integration.engine_harness import simulator

__all__ = ["cancelling", "simulator"]
ORDERS = "/tmf-api/serviceOrdering/v4/serviceOrder"
MERGE = {"Content-Type": "application/merge-patch+json"}


def characteristics(**values: Any) -> list[dict[str, Any]]:
    return [{"name": k, "value": v} for k, v in values.items()]


def vlan_order(vlan: int) -> dict[str, Any]:
    item = {
        "id": "1",
        "action": "add",
        "service": {
            "serviceSpecification": {"id": "vlan"},
            "serviceCharacteristic": characteristics(vlanId=vlan),
        },
    }
    return {"serviceOrderItem": [item]}


def revise(harness: Cancelling, order_id: str, items: list[dict[str, Any]]) -> Any:
    return harness.api.patch(f"{ORDERS}/{order_id}", json={"serviceOrderItem": items}, headers=MERGE)


def with_characteristics(order: dict[str, Any], **values: Any) -> list[dict[str, Any]]:
    items = [dict(i) for i in order["serviceOrderItem"]]
    items[0] = {
        **items[0],
        "service": {**items[0]["service"], "serviceCharacteristic": characteristics(**values)},
    }
    return items


def sent_values(harness: Cancelling, system: str, spec: str) -> list[tuple[str, Any]]:
    return [
        (
            o["orderItem"][0]["action"],
            (o["orderItem"][0]["resource"].get("resourceCharacteristic") or [{}])[0].get("value"),
        )
        for o in harness.simulator.created(system)
        if o["orderItem"][0]["resourceSpecification"]["id"] == spec
    ]


def test_a_revision_before_the_point_of_no_return_undoes_and_redoes_only_what_changed(
    cancelling: Cancelling,
) -> None:
    cancelling.slow("site-survey")
    order_id = cancelling.create(vlan_order(100))
    cancelling.run_until(
        lambda: cancelling.activity(order_id, "assign-vlan")["state"] == "done", step_seconds=10
    )
    survey = cancelling.activity(order_id, "survey-site")
    assert survey["state"] == "inProgress"

    response = revise(cancelling, order_id, with_characteristics(cancelling.order(order_id), vlanId=200))

    assert response.status_code == 200, response.text
    plan = cancelling.plan(order_id)["activity"]
    release = next(a for a in plan if a.get("undoes") == cancelling.activity(order_id, "assign-vlan")["id"])
    redo = next(a for a in plan if a["name"] == "assign-vlan" and a["id"] != release["undoes"])
    configure = cancelling.activity(order_id, "configure-vlan")
    assert (release["name"], release["state"]) == ("release-vlan", "inProgress")
    assert redo["predecessors"] == [release["id"]]
    assert redo["characteristics"] == {"vlan": 200}
    assert configure["characteristics"] == {"vlan": 200}
    assert redo["id"] in configure["predecessors"]
    assert cancelling.activity(order_id, "survey-site") == {**survey, "href": survey["href"]}  # untouched
    cancelling.run_until(lambda: _state_of(cancelling, order_id, redo["id"]) == "done", step_seconds=10)
    assert sent_values(cancelling, "inventory", "vlan-id") == [("add", 100), ("delete", None), ("add", 200)]


def test_a_revision_of_a_service_with_a_modify_sends_modify_resource_orders(cancelling: Cancelling) -> None:
    cancelling.slow("olt-port-config")
    body = fibre_order()
    body["serviceOrderItem"][0]["service"]["serviceCharacteristic"] = characteristics(
        installationAddress="1 rue A"
    )
    order_id = cancelling.create(body)
    cancelling.run_until(
        lambda: cancelling.activity(order_id, "reserve-port")["state"] == "done", step_seconds=10
    )

    items = with_characteristics(
        cancelling.order(order_id), installationAddress="2 rue B", downloadSpeed=2000
    )
    response = revise(cancelling, order_id, items)

    assert response.status_code == 200, response.text
    change = cancelling.activity(order_id, "change-profile")
    assert change["resourceAction"] == "modify"
    assert change["characteristics"] == {"downloadMbps": 2000}
    assert cancelling.activity(order_id, "activate-line")["characteristics"] == {"downloadMbps": 2000}
    cancelling.run_until(lambda: bool(sent_values(cancelling, "activation", "broadband-profile")))
    assert sent_values(cancelling, "activation", "broadband-profile") == [("modify", 2000)]


def test_a_revision_after_the_point_of_no_return_is_refused_with_the_reason(cancelling: Cancelling) -> None:
    cancelling.slow("broadband-profile")
    order_id = cancelling.create(fibre_order())
    cancelling.run_until(
        lambda: cancelling.activity(order_id, "configure-port")["state"] == "done", step_seconds=10
    )
    before = cancelling.order(order_id)

    response = revise(cancelling, order_id, with_characteristics(before, downloadSpeed=2000))

    assert response.status_code == 409
    configure = cancelling.activity(order_id, "configure-port")
    assert response.json()["message"] == (
        f"too late to change item 1: activity configure-port ({configure['id']}) is done and is the point of no return"
    )
    assert cancelling.order(order_id) == before


def test_a_value_sent_to_a_system_under_way_is_refused_until_it_has_finished(cancelling: Cancelling) -> None:
    cancelling.slow("vlan-id")
    order_id = cancelling.create(vlan_order(100))

    response = revise(cancelling, order_id, with_characteristics(cancelling.order(order_id), vlanId=200))

    assert response.status_code == 409
    assert "assign-vlan" in response.json()["message"]
    assert "under way at inventory" in response.json()["message"]


def test_an_item_added_under_way_is_planned_and_started(cancelling: Cancelling) -> None:
    cancelling.slow("olt-port")
    order_id = cancelling.create(fibre_order())
    tv = {"id": "2", "action": "add", "service": {"serviceSpecification": {"id": "tv"}}}

    response = revise(cancelling, order_id, [*cancelling.order(order_id)["serviceOrderItem"], tv])
    cancelling.worker.run_until_idle()

    assert response.status_code == 200, response.text
    entitle = cancelling.activity(order_id, "entitle-tv", "2")
    assert entitle["state"] in ("inProgress", "done")
    assert [o["orderType"] for o in cancelling.simulator.created("activation")] == ["entitle-tv"]


def test_an_item_not_started_is_removed_and_its_activities_cancelled(cancelling: Cancelling) -> None:
    cancelling.slow("olt-port")
    tv = {
        "id": "2",
        "action": "add",
        "service": {"serviceSpecification": {"id": "tv"}},
        "serviceOrderItemRelationship": [{"relationshipType": "dependency", "orderItem": {"itemId": "1"}}],
    }
    body = fibre_order()
    body["serviceOrderItem"].append(tv)
    order_id = cancelling.create(body)
    entitle = cancelling.activity(order_id, "entitle-tv", "2")

    response = revise(cancelling, order_id, cancelling.order(order_id)["serviceOrderItem"][:1])

    assert response.status_code == 200, response.text
    assert [i["id"] for i in cancelling.order(order_id)["serviceOrderItem"]] == ["1"]
    assert _state_of(cancelling, order_id, entitle["id"]) == "cancelled"
    assert cancelling.state(order_id) == "inProgress"


def test_an_item_whose_work_has_started_cannot_be_removed(cancelling: Cancelling) -> None:
    cancelling.slow("olt-port")
    tv = {"id": "2", "action": "add", "service": {"serviceSpecification": {"id": "tv"}}}
    body = fibre_order()
    body["serviceOrderItem"].append(tv)
    order_id = cancelling.create(body)

    response = revise(cancelling, order_id, cancelling.order(order_id)["serviceOrderItem"][1:])

    assert response.status_code == 409
    assert "item 1 cannot be removed: its work has started" in response.json()["message"]


def _state_of(harness: Cancelling, order_id: str, activity_id: str) -> str:
    return str(next(a for a in harness.plan(order_id)["activity"] if a["id"] == activity_id)["state"])
