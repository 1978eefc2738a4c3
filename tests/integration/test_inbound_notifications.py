"""Nothing inbound is trusted: a TMF652 notification is accepted only at the callback provtrack
registered (it carries an unguessable token), and one that finishes a resource order is believed
only once the system, read back, says the same. A forged "completed" changes nothing."""

from __future__ import annotations

from typing import Any

import httpx

from provtrack.domain.clock import format_datetime
from provtrack.services import access, hub_subscriptions
from provtrack.services.ports import Context
from tests.integration.engine_harness import Engine, body, engine, simulator, tv
from tests.integration.tmf import assert_tmf_error

__all__ = ["engine", "simulator"]

LISTENER = "/provtrack/v1/tmf652/activation"


def started_tv_order(engine: Engine) -> tuple[str, dict[str, Any]]:
    """An order whose one activity has a resource order at `activation` that stays open."""
    engine.simulator.behaviour.delay = 3600
    order_id = engine.create(body(tv(after=None)))
    engine.worker.run_until_idle()
    activity = engine.activity(order_id, "entitle-tv")
    assert activity["state"] == "inProgress"
    assert activity["externalId"]
    return order_id, activity


def notification(activity: dict[str, Any], state: str) -> dict[str, Any]:
    return {
        "eventType": "ResourceOrderStateChangeEvent",
        "event": {"resourceOrder": {"id": activity["externalId"], "state": state}},
    }


def the_token(engine: Engine) -> str:
    with engine.store.transaction(write=False) as tx:
        token = tx.access.listener_token("tmf652:activation")
    assert token
    return token


def test_the_callback_provtrack_registers_carries_a_token(engine: Engine) -> None:
    callbacks = list(engine.simulator.subscribers["activation"].values())

    assert callbacks == [
        f"{engine.api.base_url}{LISTENER}/{the_token(engine)}".replace("//provtrack", "/provtrack")
    ]
    assert len(the_token(engine)) >= 32


def test_a_notification_without_the_token_is_refused_and_changes_nothing(engine: Engine) -> None:
    order_id, activity = started_tv_order(engine)

    for path in (
        f"{LISTENER}/listener/x",
        f"{LISTENER}/not-the-token/listener/resourceOrderStateChangeEvent",
    ):
        response = engine.api.post(path, json=notification(activity, "completed"))
        assert_tmf_error(response, 401, "UNAUTHENTICATED")

    engine.worker.run_until_idle()
    assert engine.activity(order_id, "entitle-tv")["state"] == "inProgress"
    assert engine.state(order_id) == "inProgress"


def test_a_forged_completion_with_the_token_is_checked_at_the_system_and_changes_nothing(
    engine: Engine,
) -> None:
    order_id, activity = started_tv_order(engine)
    url = f"{LISTENER}/{the_token(engine)}/listener/resourceOrderStateChangeEvent"

    response = engine.api.post(url, json=notification(activity, "completed"))

    assert response.status_code == 204  # taken, and found untrue: the system says it is not finished
    engine.worker.run_until_idle()
    assert engine.activity(order_id, "entitle-tv")["state"] == "inProgress"
    assert engine.state(order_id) == "inProgress"


def test_a_completion_the_system_confirms_is_applied(engine: Engine) -> None:
    order_id, activity = started_tv_order(engine)
    engine.simulator.orders[("activation", activity["externalId"])].steps = [(0.0, "completed", None)]
    url = f"{LISTENER}/{the_token(engine)}/listener/resourceOrderStateChangeEvent"

    assert engine.api.post(url, json=notification(activity, "completed")).status_code == 204

    engine.run_until(lambda: engine.state(order_id) == "completed")


def test_a_completion_of_an_order_the_system_does_not_know_is_refused(engine: Engine) -> None:
    order_id, _activity = started_tv_order(engine)
    url = f"{LISTENER}/{the_token(engine)}/listener/resourceOrderStateChangeEvent"
    forged = {"event": {"resourceOrder": {"id": "no-such-order", "state": "completed"}}}

    assert_tmf_error(engine.api.post(url, json=forged), 422, "NOT_CONFIRMED")
    assert engine.activity(order_id, "entitle-tv")["state"] == "inProgress"


def test_a_system_declared_unreadable_is_believed(engine: Engine) -> None:
    import dataclasses

    order_id, activity = started_tv_order(engine)
    system = engine.catalog.systems["activation"]
    engine.catalog.systems["activation"] = dataclasses.replace(system, confirm=False)
    url = f"{LISTENER}/{the_token(engine)}/listener/resourceOrderStateChangeEvent"

    assert engine.api.post(url, json=notification(activity, "completed")).status_code == 204

    engine.run_until(lambda: engine.state(order_id) == "completed")


def test_the_token_stays_the_same_across_restarts_so_the_subscription_is_reused(engine: Engine) -> None:
    before = the_token(engine)

    assert access.listener_token(engine.store, "tmf652:activation", now=engine.clock()) == before
    assert isinstance(engine.api, httpx.Client)


def test_orders_sent_while_no_subscription_existed_are_read_again_once_one_is_made(engine: Engine) -> None:
    engine.simulator.subscribers["activation"].clear()  # the system lost our subscription
    order_id, activity = started_tv_order(engine)
    engine.simulator.orders[("activation", activity["externalId"])].steps = [(0.0, "completed", None)]
    engine.worker.run_until_idle()
    assert engine.state(order_id) == "inProgress"  # its completion reached nobody

    now = engine.clock()
    ctx = Context(now=format_datetime(now), actor="test", new_id=lambda: "x")
    hub_subscriptions.subscribe_to_hubs(engine.store, engine.catalog, ctx=ctx)  # as at a start

    # Read again at once: the safety poll is five minutes away and the clock does not move.
    engine.run_until(lambda: engine.state(order_id) == "completed")
    assert len(engine.simulator.subscribers["activation"]) == 1
    assert engine.clock() == now
