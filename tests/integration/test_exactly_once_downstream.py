"""Exactly one resource order per activity at a system that does NOT drop a repeated externalId:
a POST whose outcome is unknown is looked up before it is sent again; and one hub subscription per
system, however often provtrack starts."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from provtrack.adapters.catalog_file import parse_catalog_text
from provtrack.adapters.store.repository import SqlStore
from provtrack.adapters.tmf652 import ResourceOrderingClient
from provtrack.api.app import create_app
from provtrack.bootstrap import Assembly
from provtrack.domain.clock import format_datetime
from provtrack.domain.jobs import Lease
from provtrack.engine.provisioning import ProvisioningEngine
from provtrack.engine.worker import Worker
from provtrack.services import provisioning
from provtrack.services.ports import Context
from provtrack.settings import Settings
from provtrack.simulator.resource_ordering import Behaviour, ResourceOrderingSimulator
from provtrack.simulator.serving import serving_in_thread
from tests.conftest import AS_ADMIN, FakeClock
from tests.integration.engine_harness import CATALOG, TMF652, Engine, body, fibre


def orders_per_activity(simulator: ResourceOrderingSimulator) -> Counter[str]:
    """How many resource orders the system holds for each activity (externalId `<activity>.<attempt>`)."""
    return Counter(str(o["externalId"]).rpartition(".")[0] for o in simulator.created())


@pytest.fixture
def forgetful() -> Iterator[tuple[ResourceOrderingSimulator, str]]:
    """Simulated systems that create a new order for every POST, repeated externalId or not."""
    simulator = ResourceOrderingSimulator(Behaviour(delay=0.0, deduplicate=False, seed=3))
    with serving_in_thread(simulator.app()) as url:
        yield simulator, url


def engine_with(
    forgetful: tuple[ResourceOrderingSimulator, str],
    store: SqlStore,
    clock: FakeClock,
    database_url: str,
    *,
    timeout: float,
) -> Iterator[Engine]:
    sim, sim_url = forgetful
    catalog = parse_catalog_text(CATALOG.format(sim=sim_url, tmf652=TMF652), source="test-catalog.yaml")
    app = create_app(
        Settings(database_url=database_url), store, clock=clock, catalog=catalog, authenticator=AS_ADMIN
    )
    with serving_in_thread(app) as api_url, httpx.Client(base_url=api_url, timeout=10) as api:
        engine = ProvisioningEngine(
            store, catalog, ResourceOrderingClient(timeout=timeout), listener_base_url=api_url
        )
        worker = Worker(store, engine.handlers(), clock=clock, threads=2)
        yield Engine(api, worker, sim, store, clock, catalog)
        worker.stop()
        engine.close()


@pytest.fixture
def impatient(
    forgetful: tuple[ResourceOrderingSimulator, str], store: SqlStore, clock: FakeClock, database_url: str
) -> Iterator[Engine]:
    """An engine that gives up on a POST after 0.3 s."""
    yield from engine_with(forgetful, store, clock, database_url, timeout=0.3)


@pytest.fixture
def patient(
    forgetful: tuple[ResourceOrderingSimulator, str], store: SqlStore, clock: FakeClock, database_url: str
) -> Iterator[Engine]:
    yield from engine_with(forgetful, store, clock, database_url, timeout=5)


def test_a_post_that_timed_out_after_the_system_created_the_order_is_found_not_sent_again(
    impatient: Engine,
) -> None:
    impatient.simulator.behaviour.post_latency = 1.0  # each order is created, then the answer is late
    order_id = impatient.create(body(fibre()))

    impatient.run_until(lambda: impatient.state(order_id) == "completed", step_seconds=5, timeout=30)

    assert orders_per_activity(impatient.simulator) == {
        a["id"]: 1 for a in impatient.plan(order_id)["activity"]
    }
    assert impatient.simulator.posts_received == 3


def test_a_dispatch_taken_over_from_an_engine_that_died_mid_post_is_found_not_sent_again(
    patient: Engine,
) -> None:
    order_id = patient.create(body(fibre()))
    dead = Lease("provtrack-engine-dead", patient.clock.now + timedelta(seconds=60))
    ctx = Context(now=format_datetime(patient.clock.now), actor="test", new_id=lambda: str(uuid.uuid4()))
    [request] = provisioning.plan_order(
        patient.store, order_id, patient.catalog, ctx=ctx, lease=dead
    ).dispatch_now
    # The engine holding the dispatch POSTs it, the system creates the order, and the engine dies
    # before it records the answer.
    with httpx.Client() as client:
        url = patient.catalog.systems[request.system].url
        assert client.post(f"{url}/resourceOrder", json=request.body).status_code == 201

    patient.clock.advance(seconds=61)  # its lease runs out: a worker takes the dispatch over
    patient.run_until(lambda: patient.state(order_id) == "completed", step_seconds=15, timeout=30)

    assert orders_per_activity(patient.simulator) == {a["id"]: 1 for a in patient.plan(order_id)["activity"]}
    assert patient.activity(order_id, "reserve-port")["externalId"] == patient.simulator.created()[0]["id"]


def test_five_starts_leave_one_subscription_at_the_system(tmp_path: Path) -> None:
    simulator = ResourceOrderingSimulator(Behaviour())
    with serving_in_thread(simulator.app()) as sim_url:
        catalog = tmp_path / "catalog.yaml"
        catalog.write_text(CATALOG.format(sim=sim_url, tmf652=TMF652))
        settings = Settings(database_url=f"sqlite:///{tmp_path / 'p.db'}", catalog=str(catalog))
        for _ in range(5):  # what `provtrack serve` does at each start
            assembly = Assembly.build(settings, migrate=True)
            assembly.start()
            assembly.worker().run_until_idle()
            assembly.store.dispose()
        assert len(simulator.subscribers["activation"]) == 1

        simulator.subscribers["activation"].clear()  # the system lost it (a restart of its own)
        assembly = Assembly.build(settings)
        assembly.start()
        assembly.worker().run_until_idle()
        assert len(simulator.subscribers["activation"]) == 1

        catalog.write_text(
            CATALOG.format(sim=sim_url, tmf652=TMF652).replace("progress: hub", "progress: poll")
        )
        assembly = Assembly.build(settings)
        assembly.start()
        assembly.worker().run_until_idle()
        assembly.store.dispose()
        assert simulator.subscribers["activation"] == {}  # it no longer notifies us: ended
