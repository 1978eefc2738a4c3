"""Operator actions over the API follow the activity's state table: a refused one is a 409 that says
the state the activity is in, and records nothing (no audit row, no milestone, no event)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from tests.integration.engine_harness import Engine, body, engine, fibre, simulator

__all__ = ["engine", "simulator"]


def in_flight_first_activity(engine: Engine) -> tuple[str, dict[str, Any]]:
    """An order whose first resource order was sent and is still open downstream."""
    order_id = engine.create(body(fibre()))
    engine.worker.run_until_idle()
    activity = engine.activity(order_id, "reserve-port")
    assert activity["state"] == "inProgress"
    assert activity.get("externalId")  # the inventory system has it
    return order_id, activity


def failed_first_activity(engine: Engine) -> tuple[str, dict[str, Any]]:
    """An order whose first resource order the inventory system fails."""
    engine.simulator.behaviour.failure_rate = 1.0
    order_id = engine.create(body(fibre()))
    engine.run_until(lambda: engine.state(order_id) == "held", step_seconds=10)
    engine.simulator.behaviour.failure_rate = 0.0
    return order_id, engine.activity(order_id, "reserve-port")


def recorded(engine: Engine, order_id: str) -> tuple[int, list[str]]:
    """How many audit rows the order has, and the events it has caused, in order."""
    with engine.store.transaction(write=False) as tx:
        trail = len(tx.audit_trail(order_id))
    with engine.store.engine.connect() as conn:
        rows = conn.execute(
            text("SELECT event_type FROM outbox_event WHERE service_order_id = :o ORDER BY id"),
            {"o": order_id},
        )
        events = [str(r[0]) for r in rows]
    return trail, events


def act(engine: Engine, activity: dict[str, Any], action: str, reason: str | None = None) -> Any:
    return engine.api.post(
        f"/provtrack/v1/activity/{activity['id']}/{action}",
        json={"reason": reason} if reason is not None else None,
    )


def assert_refused(response: Any, action: str, state: str) -> None:
    assert response.status_code == 409, response.text
    error = response.json()
    assert error["code"] == "ILLEGAL_STATE_TRANSITION"
    assert f"cannot {action} activity" in error["message"]
    assert f"it is {state}" in error["message"]


def test_retrying_an_activity_still_in_flight_is_refused_and_sends_no_second_resource_order(
    engine: Engine,
) -> None:
    order_id, activity = in_flight_first_activity(engine)
    before = recorded(engine, order_id)

    response = act(engine, activity, "retry")

    assert_refused(response, "retry", "inProgress")
    engine.worker.run_until_idle()
    assert [o["externalId"] for o in engine.simulator.created("inventory")] == [f"{activity['id']}.1"]
    assert engine.activity(order_id, "reserve-port")["attempt"] == 1
    assert recorded(engine, order_id) == before


def test_skipping_an_activity_twice_refuses_the_second_and_keeps_one_milestone_and_the_first_reason(
    engine: Engine,
) -> None:
    order_id, activity = failed_first_activity(engine)
    first = act(engine, activity, "skip", "port reserved by hand")
    assert first.status_code == 200, first.text
    before = recorded(engine, order_id)

    second = act(engine, activity, "skip", "reserved again, by someone else")

    assert_refused(second, "skip", "skipped")
    assert recorded(engine, order_id) == before
    order = engine.order(order_id)
    assert [m["name"] for m in order["milestone"]] == ["reserve-port"]
    assert engine.activity(order_id, "reserve-port")["skipReason"] == "port reserved by hand"


def test_failing_an_activity_twice_refuses_the_second_and_keeps_the_first_reason(engine: Engine) -> None:
    order_id, activity = failed_first_activity(engine)
    first = act(engine, activity, "fail", "no fibre in this street")
    assert first.status_code == 200, first.text
    before = recorded(engine, order_id)

    second = act(engine, activity, "fail", "changed my mind")

    assert_refused(second, "fail", "failed")
    assert recorded(engine, order_id) == before
    assert engine.activity(order_id, "reserve-port")["reason"] == "no fibre in this street"
