"""Many processes, one PostgreSQL database: `serve --workers 2 --no-worker` and three `provtrack worker`
processes, started at once on a blank schema (they migrate under the advisory lock), run every order
to completion with each activity's resource order created once downstream and each event delivered
once per subscriber; then the same with one worker killed (SIGKILL) mid-run.

The suite runs 300 orders, which takes about a minute a run on this shared 2-core machine (five
provtrack processes, PostgreSQL, the simulated system and two subscribers share its cores); the long
form is PROVTRACK_SCALE_OUT_ORDERS=2000.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections import Counter, defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, text

from provtrack.adapters.store.database import create_database_engine
from provtrack.simulator.resource_ordering import Behaviour, ResourceOrderingSimulator
from provtrack.simulator.serving import serving_in_thread
from tests.conftest import postgres_schema
from tests.e2e.waiting import admin_headers, wait_for
from tests.integration.receiver import Receiver, free_port

ORDERS = int(os.environ.get("PROVTRACK_SCALE_OUT_ORDERS", "300"))
PATIENCE = 60 + ORDERS * 0.3  # seconds to wait for the orders, then for their events: generous, bounded
API = "/tmf-api/serviceOrdering/v4"
pytestmark = [pytest.mark.postgres, pytest.mark.timeout(180 + ORDERS * 0.6)]

STATE_CHANGES = "ServiceOrderStateChangeEvent"
# Two chained resource orders per order at a system that answers `completed` at once.
CATALOG = """
systems:
  inventory:
    url: {sim}/inventory/tmf-api/resourceOrderingManagement/v4
    progress: poll
    pollInterval: PT1H
services:
  fibre:
    add:
      - {{id: reserve-port, system: inventory, resourceSpecification: olt-port, expectedDuration: PT1M}}
      - {{id: activate-line, system: inventory, resourceSpecification: broadband-profile,
          after: [reserve-port], expectedDuration: PT1M}}
"""
ACTIVITIES_PER_ORDER = 2


def api_client(base_url: str) -> httpx.Client:
    """The one HTTP client of this test: credentials, when the API asks for them, go here."""
    return httpx.Client(base_url=f"{base_url}{API}", timeout=30, limits=httpx.Limits(max_connections=16))


@dataclass
class Deployment:
    """The processes of one run and what they talk to."""

    api: httpx.Client
    database: Engine
    simulator: ResourceOrderingSimulator
    workers: list[subprocess.Popen[bytes]]
    logs: Path

    def completed(self) -> int:
        with self.database.connect() as conn:
            return int(
                conn.execute(
                    text("SELECT count(*) FROM service_order WHERE state = 'completed'")
                ).scalar_one()
            )

    def worker_owner(self, index: int) -> str:
        """The lease owner name worker `index` announced when it started."""
        found = re.search(r"provtrack worker (\S+) on", (self.logs / f"worker-{index}.log").read_text())
        assert found is not None
        return found.group(1)


def started(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)


def stopped(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@contextmanager
def deployment(tmp_path: Path, *, lease_seconds: float) -> Iterator[Deployment]:
    """The simulated system, then two API processes and three workers, all started at once."""
    # A forgetful system: a second POST for one activity would show as a second resource order.
    simulator = ResourceOrderingSimulator(Behaviour(delay=0.0, instant=True, deduplicate=False))
    with ExitStack() as stack:
        database_url = stack.enter_context(postgres_schema())
        sim_url = stack.enter_context(serving_in_thread(simulator.app()))
        catalog = tmp_path / "catalog.yaml"
        catalog.write_text(CATALOG.format(sim=sim_url))
        port = free_port()
        env = {
            **os.environ,
            "PROVTRACK_DATABASE_URL": database_url,
            "PROVTRACK_CATALOG": str(catalog),
            "PROVTRACK_PORT": str(port),
            "PROVTRACK_EVENTS_CALLBACK_ALLOW": "127.0.0.1",
            "PROVTRACK_WORKER_LEASE_SECONDS": str(lease_seconds),
            "PROVTRACK_LOG_LEVEL": "warning",
        }
        provtrack = [sys.executable, "-m", "provtrack"]
        processes = [
            started([*provtrack, "serve", "--workers", "2", "--no-worker"], env, tmp_path / "serve.log")
        ]
        processes += [started([*provtrack, "worker"], env, tmp_path / f"worker-{n}.log") for n in range(3)]
        for process in reversed(processes):
            stack.callback(stopped, process)
        api = stack.enter_context(api_client(f"http://127.0.0.1:{port}"))
        wait_for(lambda: _answers(api), timeout=60, what="the API processes to answer")
        api.headers.update(admin_headers(database_url))  # made once they migrated the schema
        logs = [tmp_path / f"worker-{n}.log" for n in range(3)]
        wait_for(
            lambda: all("provtrack worker " in log.read_text() for log in logs),
            timeout=60,
            what="the three workers to start",
        )
        engine = create_database_engine(database_url, pool_size=2)
        stack.callback(engine.dispose)
        yield Deployment(api, engine, simulator, processes[1:], tmp_path)
        for process in processes:
            assert process.poll() is None or process.returncode == -signal.SIGKILL, (
                f"a process ended early with {process.returncode}: see its log"
            )


def _answers(api: httpx.Client) -> bool:
    try:
        return api.get("/serviceOrder", params={"limit": 1}).status_code in (200, 401)  # 401: no key yet
    except httpx.TransportError:
        return False


@dataclass
class Subscribers:
    everything: Receiver
    state_changes: Receiver

    def stop(self) -> None:
        self.everything.stop()
        self.state_changes.stop()


@pytest.fixture
def subscribers() -> Iterator[Subscribers]:
    running = Subscribers(Receiver().start(), Receiver().start())
    yield running
    running.stop()


def subscribe(api: httpx.Client, subscribers: Subscribers) -> None:
    for callback, query in (
        (subscribers.everything.url, None),
        (subscribers.state_changes.url, f"eventType={STATE_CHANGES}"),
    ):
        body = {"callback": callback, **({"query": query} if query else {})}
        response = api.post("/hub", json=body)
        assert response.status_code == 201, response.text


def order_body(n: int) -> dict[str, Any]:
    item = {"id": "1", "action": "add", "service": {"serviceSpecification": {"id": "fibre"}}}
    return {"externalId": f"SCALE-{n}", "serviceOrderItem": [item]}


def create_orders(api: httpx.Client, count: int) -> list[str]:
    def create(n: int) -> str:
        response = api.post("/serviceOrder", json=order_body(n))
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(create, range(count)))


def expected_events(database: Engine) -> tuple[set[str], set[str]]:
    """The outbox's events: all of them, and the state changes."""
    with database.connect() as conn:
        rows = conn.execute(text("SELECT event_id, event_type FROM outbox_event")).all()
    return {r.event_id for r in rows}, {r.event_id for r in rows if r.event_type == STATE_CHANGES}


def deliveries_pending(database: Engine) -> int:
    with database.connect() as conn:
        return int(
            conn.execute(
                text("SELECT count(*) FROM job WHERE kind LIKE 'events.%' AND kind <> 'events.prune'")
            ).scalar_one()
        )


def event_ids(receiver: Receiver) -> list[str]:
    return [str(r.event["eventId"]) for r in receiver.accepted]


def assert_every_order_completed_once_downstream(run: Deployment, order_ids: list[str]) -> None:
    assert run.completed() == len(order_ids)
    created = run.simulator.created()
    by_activity = Counter(o["externalId"].rsplit(".", 1)[0] for o in created)
    assert len(by_activity) == ACTIVITIES_PER_ORDER * len(order_ids)
    assert set(by_activity.values()) == {1}, "an activity has two resource orders downstream"
    orders = Counter(
        ref["name"]
        for o in created
        for ref in o["externalReference"]
        if ref["externalReferenceType"] == "provtrackServiceOrder"
    )
    assert set(orders) == set(order_ids)
    assert set(orders.values()) == {ACTIVITIES_PER_ORDER}


def wait_for_deliveries(run: Deployment, subscribers: Subscribers) -> tuple[set[str], set[str]]:
    everything, state_changes = expected_events(run.database)

    def delivered() -> bool:
        return (
            set(event_ids(subscribers.everything)) >= everything
            and set(event_ids(subscribers.state_changes)) >= state_changes
            and deliveries_pending(run.database) == 0
        )

    wait_for(delivered, timeout=PATIENCE, what="every event delivered to both subscribers", every=0.25)
    return everything, state_changes


def test_two_api_processes_and_three_workers_run_every_order_once_end_to_end(
    tmp_path: Path, subscribers: Subscribers
) -> None:
    with deployment(tmp_path, lease_seconds=60) as run:
        subscribe(run.api, subscribers)
        order_ids = create_orders(run.api, ORDERS)
        wait_for(
            lambda: run.completed() == ORDERS,
            timeout=PATIENCE,
            what=f"{ORDERS} orders to complete",
            every=0.1,
        )
        everything, state_changes = wait_for_deliveries(run, subscribers)
        assert_every_order_completed_once_downstream(run, order_ids)

    # Nobody died: each event reached each subscriber exactly once, and nothing else did.
    assert sorted(event_ids(subscribers.everything)) == sorted(everything)
    assert sorted(event_ids(subscribers.state_changes)) == sorted(state_changes)
    assert {r.event["eventType"] for r in subscribers.state_changes.accepted} == {STATE_CHANGES}
    assert len(everything) >= 3 * ORDERS  # created, inProgress, completed at least


def test_a_worker_killed_mid_run_loses_and_duplicates_nothing(
    tmp_path: Path, subscribers: Subscribers
) -> None:
    # A short lease: the killed worker's jobs come back within seconds, not a minute.
    with deployment(tmp_path, lease_seconds=5) as run:
        subscribe(run.api, subscribers)
        victim = run.workers[0]
        with ThreadPoolExecutor(1) as background:
            creating = background.submit(create_orders, run.api, ORDERS)
            wait_for(
                lambda: run.completed() >= ORDERS // 4,
                timeout=PATIENCE,
                what="a quarter of the orders",
                every=0.05,
            )
            victim.send_signal(signal.SIGKILL)
            victim.wait(timeout=10)
            order_ids = creating.result()
        wait_for(
            lambda: run.completed() == ORDERS,
            timeout=PATIENCE,
            what=f"{ORDERS} orders to complete",
            every=0.1,
        )
        everything, state_changes = wait_for_deliveries(run, subscribers)
        assert_every_order_completed_once_downstream(run, order_ids)

    for receiver, expected in (
        (subscribers.everything, everything),
        (subscribers.state_changes, state_changes),
    ):
        received = Counter(event_ids(receiver))
        assert set(received) == expected
        # Delivery is at least once across a crash: a POST the victim made before it could record it
        # is sent again by the worker that takes the stream over, with the same webhook-id, by which
        # a subscriber recognises it. Only those few POSTs in flight can repeat.
        webhook_ids: dict[str, set[str]] = defaultdict(set)
        for request in receiver.accepted:
            webhook_ids[str(request.event["eventId"])].add(request.headers["webhook-id"])
        assert all(len(ids) == 1 for ids in webhook_ids.values()), "a repeated event changed its webhook-id"
        assert sum(received.values()) - len(received) <= 8  # the victim's threads
