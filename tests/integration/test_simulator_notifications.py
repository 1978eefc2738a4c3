"""The TMF652 simulator over real HTTP on loopback: every resource order announces each of its state
changes, once and in order, to every hub subscriber, ending in its final state."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from provtrack.simulator.resource_ordering import Behaviour, ResourceOrderingSimulator
from provtrack.simulator.serving import serving_in_thread
from tests.integration.receiver import Receiver

TMF652 = "activation/tmf-api/resourceOrderingManagement/v4"
ORDERS = 24
SEQUENCES = {
    ("inProgress", "completed"),
    ("inProgress", "failed"),
    ("inProgress", "held", "inProgress", "completed"),
}


def mixed(**options: float | bool) -> Behaviour:
    """Completions, failures and holds: each scenario shows up among the orders."""
    return Behaviour(failure_rate=0.25, hold_rate=0.25, seed=11, **options)  # type: ignore[arg-type]


@dataclass
class EarlyClock:
    """A monotonic clock whose sleeps end a millisecond before they should, as uvloop's timers can
    (they count whole milliseconds from a loop time cached when the loop's iteration began)."""

    now: float = 1000.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds - 0.001
        await asyncio.sleep(0)


@pytest.fixture
def receivers() -> Iterator[list[Receiver]]:
    started = [Receiver().start(), Receiver().start()]
    yield started
    for receiver in started:
        receiver.stop()


def sequences(receiver: Receiver) -> dict[str, list[str]]:
    seen: dict[str, list[str]] = {}
    for received in receiver.accepted:
        assert received.path == "/events/listener/resourceOrderStateChangeEvent"
        order = received.event["event"]["resourceOrder"]
        seen.setdefault(order["id"], []).append(order["state"])
    return seen


def run_orders(simulator: ResourceOrderingSimulator, receivers: list[Receiver]) -> dict[str, str]:
    """Subscribe the receivers, create the orders, wait for every announced step; the orders read back."""
    with serving_in_thread(simulator.app()) as url, httpx.Client(base_url=f"{url}/{TMF652}") as client:
        for receiver in receivers:
            assert client.post("/hub", json={"callback": receiver.url}).status_code == 201
        for n in range(ORDERS):
            item = {"id": "1", "action": "add", "resource": {"resourceSpecification": {"id": "port"}}}
            created = client.post("/resourceOrder", json={"externalId": f"ACT-{n}", "orderItem": [item]})
            assert created.status_code == 201, created.text
        steps = sum(len(order.steps) for order in simulator.orders.values())
        for receiver in receivers:
            receiver.wait_for_accepted(steps)
        return {order["id"]: order["state"] for order in client.get("/resourceOrder").json()}


def assert_every_order_walked_its_steps(
    simulator: ResourceOrderingSimulator, receivers: list[Receiver], read_back: dict[str, str]
) -> None:
    expected = {order_id: [state for _, state, _ in o.steps] for (_, order_id), o in simulator.orders.items()}
    assert len(expected) == ORDERS
    assert {tuple(states) for states in expected.values()} == SEQUENCES
    for receiver in receivers:
        assert sequences(receiver) == expected
    assert read_back == {order_id: states[-1] for order_id, states in expected.items()}


def test_every_order_notifies_each_state_change_in_order_to_every_subscriber(
    receivers: list[Receiver],
) -> None:
    simulator = ResourceOrderingSimulator(mixed(delay=0.0))

    read_back = run_orders(simulator, receivers)

    assert_every_order_walked_its_steps(simulator, receivers, read_back)
    assert simulator.notifications_sent == sum(len(r.accepted) for r in receivers)


def test_a_timer_that_fires_early_loses_no_state_change(receivers: list[Receiver]) -> None:
    clock = EarlyClock()
    simulator = ResourceOrderingSimulator(mixed(delay=60.0), clock=clock, sleep=clock.sleep)

    read_back = run_orders(simulator, receivers)

    assert_every_order_walked_its_steps(simulator, receivers, read_back)


def test_a_notification_sent_before_the_post_answers_is_followed_by_the_rest_in_order(
    receivers: list[Receiver],
) -> None:
    simulator = ResourceOrderingSimulator(mixed(delay=0.0, notify_before_response=True))

    read_back = run_orders(simulator, receivers)

    assert_every_order_walked_its_steps(simulator, receivers, read_back)


def test_an_instant_order_announces_its_final_state_once(receivers: list[Receiver]) -> None:
    simulator = ResourceOrderingSimulator(Behaviour(delay=0.0, instant=True, failure_rate=0.5, seed=11))

    read_back = run_orders(simulator, receivers)

    finals = {states[-1] for states in sequences(receivers[0]).values()}
    assert finals == {"completed", "failed"}
    for receiver in receivers:
        assert all(len(states) == 1 for states in sequences(receiver).values())
        assert {order_id: states[0] for order_id, states in sequences(receiver).items()} == read_back
