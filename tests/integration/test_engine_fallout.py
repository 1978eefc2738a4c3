"""Fallout: a failed activity holds the order; an operator retries, skips or fails it."""

from __future__ import annotations

from provtrack.domain.clock import format_datetime
from provtrack.services import provisioning
from provtrack.services.ports import Context
from tests.integration.engine_harness import Engine, body, engine, fibre, simulator, tv

__all__ = ["engine", "simulator"]


def failed_first_activity(engine: Engine) -> tuple[str, dict[str, object]]:
    """An order whose first resource order the inventory system fails."""
    engine.simulator.behaviour.failure_rate = 1.0
    order_id = engine.create(body(fibre()))
    engine.run_until(lambda: engine.state(order_id) == "held", step_seconds=10)
    engine.simulator.behaviour.failure_rate = 0.0
    return order_id, engine.activity(order_id, "reserve-port")


def test_a_failed_resource_order_holds_the_order_with_an_error_message(engine: Engine) -> None:
    order_id, activity = failed_first_activity(engine)

    assert activity["state"] == "fallout"
    assert activity["externalState"] == "failed"
    assert "inventory reports the resource order failed" in str(activity["reason"])
    order = engine.order(order_id)
    [error] = order["errorMessage"]
    assert error["code"] == "ACTIVITY_FAILED"
    assert f"/provtrack/v1/activity/{activity['id']}" in error["message"]
    assert order["serviceOrderItem"][0]["state"] == "held"
    assert engine.activity(order_id, "configure-port")["state"] == "planned"


def test_retrying_a_failed_activity_sends_a_new_resource_order_and_the_order_moves_on(engine: Engine) -> None:
    order_id, activity = failed_first_activity(engine)

    response = engine.api.post(f"/provtrack/v1/activity/{activity['id']}/retry")
    assert response.status_code == 200, response.text
    assert response.json()["state"] == "inProgress"
    assert response.json()["attempt"] == 2
    assert engine.state(order_id) == "inProgress"

    engine.run_until(lambda: engine.state(order_id) == "completed", step_seconds=10)
    assert [o["externalId"] for o in engine.simulator.created("inventory")][:2] == [
        f"{activity['id']}.1",
        f"{activity['id']}.2",
    ]


def test_skipping_a_failed_activity_records_why_and_its_successors_run(engine: Engine) -> None:
    order_id, activity = failed_first_activity(engine)

    refused = engine.api.post(f"/provtrack/v1/activity/{activity['id']}/skip", json={})
    assert refused.status_code == 400
    response = engine.api.post(
        f"/provtrack/v1/activity/{activity['id']}/skip",
        json={"reason": "port reserved by hand in the inventory"},
        headers={"X-Actor": "coordinator-7"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["skipReason"] == "port reserved by hand in the inventory"

    engine.run_until(lambda: engine.state(order_id) == "completed", step_seconds=10)
    milestone = engine.order(order_id)["milestone"][0]
    assert milestone["status"] == "skipped"
    assert milestone["message"] == "reserve-port skipped: port reserved by hand in the inventory"
    with engine.store.transaction(write=False) as tx:
        actors = {c.actor for c in tx.audit_trail(order_id) if c.subject == f"activity[{activity['id']}]"}
    assert "test-admin:coordinator-7" in actors  # the client the token proved, and who it names


def test_failing_an_activity_fails_its_item_and_cancels_what_depended_on_it(engine: Engine) -> None:
    order_id, activity = failed_first_activity(engine)

    response = engine.api.post(
        f"/provtrack/v1/activity/{activity['id']}/fail", json={"reason": "no fibre in this street"}
    )
    assert response.status_code == 200, response.text

    order = engine.order(order_id)
    assert order["state"] == "failed"
    assert [a["state"] for a in engine.plan(order_id)["activity"]] == ["failed", "cancelled", "cancelled"]
    again = engine.api.post(f"/provtrack/v1/activity/{activity['id']}/retry")
    assert again.status_code == 409
    assert again.json()["code"] == "ILLEGAL_STATE_TRANSITION"


def test_a_refused_resource_order_keeps_the_downstream_answer(engine: Engine) -> None:
    engine.simulator.behaviour.refuse_specs = ["olt-port"]
    order_id = engine.create(body(fibre()))
    engine.worker.run_until_idle()

    activity = engine.activity(order_id, "reserve-port")
    assert activity["state"] == "fallout"
    assert activity["error"]["status"] == 400
    assert activity["error"]["body"]["message"] == "resource specification olt-port is not orderable here"
    assert engine.state(order_id) == "held"


def test_a_held_downstream_order_blocks_the_activity_with_the_downstream_reason(engine: Engine) -> None:
    order_id = engine.create(body(fibre()))
    engine.worker.run_until_idle()
    [created] = engine.simulator.created("inventory")
    engine.simulator.orders[("inventory", created["id"])].steps = [(0, "held", "waiting for a truck roll")]

    engine.clock.advance(seconds=10)
    engine.worker.run_until_idle()

    activity = engine.activity(order_id, "reserve-port")
    assert activity["state"] == "blocked"
    assert activity["reason"] == "waiting for a truck roll"
    assert engine.state(order_id) == "inProgress"


def test_a_notification_for_an_order_not_yet_known_is_parked_then_applied(engine: Engine) -> None:
    order_id = engine.create(body(tv("2", after=None)))
    ctx = Context(now=format_datetime(engine.clock.now), actor="test", new_id=lambda: "x")
    provisioning.plan_order(engine.store, order_id, engine.catalog, ctx=ctx)
    activity = engine.activity(order_id, "entitle-tv")

    # The system's notification names only its own id (no externalId): nothing can match it yet.
    outcome = provisioning.record_notification(
        engine.store, "activation", {"id": "ACT-1", "state": "completed"}, engine.catalog, ctx=ctx
    )
    assert outcome == "parked"
    provisioning.record_resource_order(
        engine.store, activity["id"], 1, {"id": "ACT-1", "state": "acknowledged"}, engine.catalog, ctx=ctx
    )

    assert engine.activity(order_id, "entitle-tv")["state"] == "done"
    assert engine.state(order_id) == "completed"
