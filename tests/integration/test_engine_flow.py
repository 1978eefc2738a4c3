"""From service order to resource orders and back, over real HTTP on loopback."""

from __future__ import annotations

import itertools

from provtrack.adapters.tmf652 import ResourceOrderingClient
from provtrack.domain.clock import parse_datetime
from provtrack.domain.jobs import Job
from provtrack.engine.provisioning import ProvisioningEngine
from provtrack.services.provisioning import INVENTORY_JOB
from tests.integration.engine_harness import Engine, body, engine, fibre, simulator, tv

__all__ = ["engine", "simulator"]


def test_a_three_activity_chain_runs_in_order_and_completes_the_order(engine: Engine) -> None:
    order_id = engine.create(body(fibre()))
    engine.worker.run_until_idle()

    # Planned and started: only the first activity has gone out; the order knows when it should end.
    order = engine.order(order_id)
    assert order["state"] == "inProgress"
    assert order["expectedCompletionDate"] == "2026-11-27T09:17:00.000Z"  # 2 + 5 + 10 minutes
    assert [o["orderType"] for o in engine.simulator.created()] == ["reserve-port"]
    plan = engine.plan(order_id)
    assert [a["name"] for a in plan["activity"]] == ["reserve-port", "configure-port", "activate-line"]
    assert [a["state"] for a in plan["activity"]] == ["inProgress", "planned", "planned"]
    assert len(plan["criticalPath"]) == 3

    engine.run_until(lambda: engine.state(order_id) == "completed", step_seconds=10)

    order = engine.order(order_id)
    assert order["completionDate"] == order["milestone"][-1]["milestoneDate"]
    assert [m["name"] for m in order["milestone"]] == ["reserve-port", "configure-port", "activate-line"]
    assert {i["state"] for i in order["serviceOrderItem"]} == {"completed"}
    assert [o["orderType"] for o in engine.simulator.created()] == [
        "reserve-port",
        "configure-port",
        "activate-line",
    ]
    request = engine.simulator.created("activation")[0]
    assert request["orderItem"][0]["resource"]["resourceCharacteristic"] == [
        {"name": "downloadMbps", "value": 1000}
    ]
    activities = engine.plan(order_id)["activity"]
    assert all(a["state"] == "done" and a["externalId"] for a in activities)
    for before, after in itertools.pairwise(activities):
        assert parse_datetime(after["actualStartDate"]) >= parse_datetime(before["actualEndDate"])
    with engine.store.transaction(write=False) as tx:
        trail = tx.audit_trail(order_id)
    activity_moves = [
        (c.subject, c.new) for c in trail if c.subject.startswith("activity[") and c.attribute == "state"
    ]
    assert activity_moves.count((f"activity[{activities[0]['id']}]", "done")) == 1
    assert len(activity_moves) == 6  # planned -> inProgress -> done, three times


def test_an_item_that_depends_on_another_waits_for_all_its_activities(engine: Engine) -> None:
    order_id = engine.create(body(tv("2", after="1"), fibre("1")))
    engine.worker.run_until_idle()
    assert [o["orderType"] for o in engine.simulator.created()] == ["reserve-port"]

    engine.run_until(lambda: engine.state(order_id) == "completed", step_seconds=10)

    entitle = engine.activity(order_id, "entitle-tv")
    activate = engine.activity(order_id, "activate-line")
    assert len(entitle["predecessors"]) == 3
    assert parse_datetime(entitle["actualStartDate"]) >= parse_datetime(activate["actualEndDate"])
    assert engine.simulator.created()[-1]["orderType"] == "entitle-tv"


def test_an_order_for_an_unknown_specification_is_rejected_naming_the_item(engine: Engine) -> None:
    unknown = {"id": "7", "action": "add", "service": {"serviceSpecification": {"id": "carrier-pigeon"}}}
    order_id = engine.create(body(fibre("1"), unknown))
    engine.worker.run_until_idle()

    order = engine.order(order_id)
    assert order["state"] == "rejected"
    [error] = order["errorMessage"]
    assert error["code"] == "UNKNOWN_SPECIFICATION"
    assert error["message"] == "item 7: service specification 'carrier-pigeon' is not in the catalog"
    assert error["serviceOrderItem"] == [{"itemId": "7", "serviceOrderId": order_id}]
    assert {i["state"] for i in order["serviceOrderItem"]} == {"rejected"}
    assert engine.api.get(f"/provtrack/v1/serviceOrder/{order_id}/plan").status_code == 404
    assert engine.simulator.created() == []


def test_an_order_with_a_requested_start_waits_for_it(engine: Engine) -> None:
    order_id = engine.create(body(fibre(), requestedStartDate="2026-11-28T08:00:00Z"))
    engine.worker.run_until_idle()

    order = engine.order(order_id)
    assert order["state"] == "acknowledged"
    assert order["expectedCompletionDate"] == "2026-11-28T08:17:00.000Z"
    assert engine.simulator.created() == []

    engine.clock.advance(hours=23)
    engine.worker.run_until_idle()
    assert engine.state(order_id) == "inProgress"
    assert len(engine.simulator.created()) == 1


def test_a_downstream_that_answers_500_twice_then_201_gets_one_resource_order(engine: Engine) -> None:
    engine.simulator.behaviour.fail_posts = 2
    order_id = engine.create(body(fibre()))
    engine.worker.run_until_idle()
    assert engine.simulator.posts_received == 1
    assert engine.activity(order_id, "reserve-port")["state"] == "inProgress"
    [dispatch] = engine.store.pending_jobs(kind="provisioning.dispatch")
    assert dispatch["attempts"] == 1
    assert "HTTP 500" in dispatch["last_error"]

    engine.run_until(lambda: engine.state(order_id) == "completed", step_seconds=10)

    assert engine.simulator.posts_received == 5  # 2 failed + 3 activities
    assert len(engine.simulator.created("inventory")) == 2


def test_a_notification_sent_before_the_post_answers_is_not_lost(engine: Engine) -> None:
    engine.simulator.behaviour.notify_before_response = True
    order_id = engine.create(body(tv("2", after=None)))

    engine.run_until(lambda: engine.state(order_id) == "completed")

    entitle = engine.activity(order_id, "entitle-tv")
    assert entitle["externalId"] == engine.simulator.created("activation")[0]["id"]
    assert engine.simulator.notifications_sent >= 1


def test_a_completed_item_creates_its_service_in_the_inventory(engine: Engine) -> None:
    order_id = engine.create(body(fibre()))
    engine.run_until(lambda: engine.state(order_id) == "completed", step_seconds=10)
    engine.worker.run_until_idle()

    service = engine.order(order_id)["serviceOrderItem"][0]["service"]
    [stored] = engine.simulator.services.values()
    assert service["id"] == stored["id"]
    assert service["href"] == stored["href"]
    assert stored["state"] == "active"
    assert stored["serviceSpecification"] == {"id": "fibre"}
    assert stored["serviceOrderItem"] == [{"serviceOrderId": order_id, "itemId": "1"}]


def test_an_inventory_create_run_again_finds_the_service_an_earlier_run_created(engine: Engine) -> None:
    engine.simulator.behaviour.instant = True
    order_id = engine.create(body(fibre()))
    engine.run_until(lambda: engine.state(order_id) == "completed", step_seconds=10)
    [created] = engine.simulator.services.values()  # by the first run of the inventory job
    assert engine.simulator.service_posts == 1
    handler = ProvisioningEngine(engine.store, engine.catalog, ResourceOrderingClient()).update_inventory
    # The same job taken over from a worker that died before recording the answer.
    handler(
        Job(1, INVENTORY_JOB, f"{order_id}/1", engine.clock.now, {}, 0, taken_over=True), engine.clock.now
    )

    assert engine.simulator.service_posts == 1  # found, not posted again
    assert engine.order(order_id)["serviceOrderItem"][0]["service"]["id"] == created["id"]


def test_a_deleted_service_is_terminated_in_the_inventory(engine: Engine) -> None:
    item = {
        "id": "1",
        "action": "delete",
        "service": {"id": "svc-tv-7", "serviceSpecification": {"id": "tv"}},
    }
    order_id = engine.create(body(item))
    engine.run_until(lambda: engine.state(order_id) == "completed")
    engine.worker.run_until_idle()

    assert engine.simulator.created("activation")[0]["orderItem"][0]["action"] == "delete"
    assert engine.simulator.services[("inventory", "svc-tv-7")]["state"] == "terminated"


def test_a_completed_order_expects_its_completion_when_it_completed(engine: Engine) -> None:
    order_id = engine.create(body(fibre()))
    engine.worker.run_until_idle()
    assert engine.order(order_id)["expectedCompletionDate"] == "2026-11-27T09:17:00.000Z"  # projected

    engine.run_until(lambda: engine.state(order_id) == "completed", step_seconds=10)

    order = engine.order(order_id)
    assert order["expectedCompletionDate"] == order["completionDate"]
