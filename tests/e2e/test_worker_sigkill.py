"""A worker process killed with SIGKILL in the middle of a plan loses nothing and duplicates nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from provtrack.adapters.store.database import create_database_engine
from provtrack.adapters.store.migrate import upgrade_database
from provtrack.adapters.store.repository import SqlStore
from provtrack.domain.clock import format_datetime
from provtrack.services.orders import create_order
from provtrack.services.ports import Context
from provtrack.simulator.resource_ordering import Behaviour, ResourceOrderingSimulator
from provtrack.simulator.serving import serving_in_thread
from tests.e2e.waiting import wait_for

CATALOG = """
systems:
  inventory:
    url: {sim}/inventory/tmf-api/resourceOrderingManagement/v4
    progress: poll
    pollInterval: PT0.2S
services:
  fibre:
    add:
      - {{id: reserve-port, system: inventory, resourceSpecification: olt-port, expectedDuration: PT1M}}
      - {{id: configure-port, system: inventory, resourceSpecification: olt-port-config,
          after: [reserve-port], expectedDuration: PT1M}}
      - {{id: activate-line, system: inventory, resourceSpecification: broadband-profile,
          after: [configure-port], expectedDuration: PT1M}}
"""


@pytest.fixture(params=[True, False], ids=["deduplicating-system", "forgetful-system"])
def simulator(request: pytest.FixtureRequest) -> Iterator[tuple[ResourceOrderingSimulator, str]]:
    # Each POST answers 0.5 s after the order is created: the window in which the worker is killed.
    # A forgetful system creates a new order for a repeated externalId: only provtrack's look-up
    # before it sends again keeps the count at one.
    behaviour = Behaviour(delay=0.0, post_latency=0.5, deduplicate=request.param)
    simulator = ResourceOrderingSimulator(behaviour)
    with serving_in_thread(simulator.app()) as url:
        yield simulator, url


def test_a_worker_killed_mid_plan_is_replaced_and_the_order_completes_without_duplicates(
    tmp_path: Path, simulator: tuple[ResourceOrderingSimulator, str]
) -> None:
    sim, sim_url = simulator
    database = f"sqlite:///{tmp_path / 'provtrack.db'}"
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(CATALOG.format(sim=sim_url))
    store = SqlStore(create_database_engine(database))
    upgrade_database(store.engine)
    ctx = Context(format_datetime(datetime.now(UTC)), "test", lambda: str(uuid.uuid4()))
    order = create_order(
        store,
        {
            "serviceOrderItem": [
                {"id": "1", "action": "add", "service": {"serviceSpecification": {"id": "fibre"}}}
            ]
        },
        ctx=ctx,
    )

    def state() -> str:
        with store.transaction(write=False) as tx:
            found = tx.get_order(order.id)
        assert found is not None
        return found.state.value

    env = {
        **os.environ,
        "PROVTRACK_WORKER_LEASE_SECONDS": "1",
        "PROVTRACK_WORKER_POLL_SECONDS": "0.1",
        "PROVTRACK_LOG_LEVEL": "warning",
    }
    command = [sys.executable, "-m", "provtrack", "worker", "--database", database, "--catalog", str(catalog)]

    def start_worker(name: str) -> subprocess.Popen[bytes]:
        with (tmp_path / f"{name}.log").open("wb") as log:
            return subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)

    first = start_worker("first")
    try:
        # Killed while the second resource order's POST is in flight: created downstream, unanswered.
        # `created` (not `posts_received`, counted before the order exists): the order is there
        # and its POST is still unanswered for post_latency seconds.
        wait_for(lambda: len(sim.created()) >= 2, timeout=30, what="the second resource order")
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    finally:
        if first.poll() is None:
            first.kill()
    assert state() == "inProgress"
    assert len(sim.created()) == 2

    second = start_worker("second")
    try:
        wait_for(lambda: state() == "completed", timeout=60, what="the order to complete")
    finally:
        second.send_signal(signal.SIGTERM)
        try:
            # A worker asked to stop finishes its running jobs and exits; it must not hang.
            second.wait(timeout=30)
        except subprocess.TimeoutExpired:
            second.kill()
            raise
    store.dispose()

    created = sim.created()
    assert [o["orderType"] for o in created] == ["reserve-port", "configure-port", "activate-line"]
    assert len({o["externalId"] for o in created}) == 3  # one resource order per activity
    assert sim.posts_received == 3  # the order in flight when the worker died was found, not sent again
