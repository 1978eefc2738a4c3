"""Operating it: `/ready` says whether the database answers, its schema is current and workers take
due jobs; `/metrics` has requests, orders by state, jobs due and late, undelivered events,
escalations and authentication failures."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from provtrack.adapters.store.database import create_database_engine
from provtrack.adapters.store.migrate import upgrade_database
from provtrack.adapters.store.repository import SqlStore
from provtrack.api.app import create_app
from provtrack.domain.jobs import JobRequest
from provtrack.services import access
from provtrack.settings import Settings
from tests.conftest import AS_ADMIN, FakeClock
from tests.factories import order_body
from tests.integration.tmf import ORDERS, assert_tmf_error


def test_ready_when_the_database_answers_is_current_and_no_job_waits(client: TestClient) -> None:
    response = client.get("/ready")

    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "checks": {"database": "ok", "migrations": "ok", "worker": "ok"},
    }


def test_not_ready_while_a_due_job_waits_over_a_minute(
    client: TestClient, store: SqlStore, clock: FakeClock
) -> None:
    with store.transaction(write=True) as tx:
        tx.schedule_job(JobRequest("provisioning.plan", "o-1", clock.now), now=clock.now)
    assert client.get("/ready").status_code == 200  # due now: a worker may be about to take it

    clock.advance(seconds=61)

    message = assert_tmf_error(client.get("/ready"), 503, "NOT_READY")
    assert message == "worker: 1 jobs due for over a minute are not taken: is a worker running?"


def test_not_ready_on_a_database_behind_the_code(tmp_path: Path, clock: FakeClock) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = create_database_engine(url)
    upgrade_database(engine, "0007")
    store = SqlStore(engine)
    try:
        with TestClient(
            create_app(Settings(database_url=url), store, clock=clock, authenticator=AS_ADMIN)
        ) as old:
            message = assert_tmf_error(old.get("/ready"), 503, "NOT_READY")
    finally:
        store.dispose()

    assert message.startswith("migrations: the schema is at 0007, the code needs ")
    assert "provtrack db upgrade" in message


def test_ready_and_metrics_need_the_metrics_scope(
    database_url: str, store: SqlStore, clock: FakeClock
) -> None:
    app = create_app(Settings(database_url=database_url, auth_cache_seconds=0), store, clock=clock)
    _, monitoring = access.create_api_key(
        store, client="prometheus", scopes="metrics:read", name="m", now=clock()
    )
    _, orders = access.create_api_key(store, client="bss", scopes="orders:read", name="o", now=clock())
    with TestClient(app) as api:
        for path in ("/ready", "/metrics"):
            assert_tmf_error(api.get(path), 401)
            assert_tmf_error(api.get(path, headers={"Authorization": f"Bearer {orders}"}), 403)
            assert api.get(path, headers={"Authorization": f"Bearer {monitoring}"}).status_code == 200


def metric(text: str, name: str) -> float:
    """The value of one sample line `name{labels} value` (0 when absent)."""
    for line in text.splitlines():
        if line.startswith(name + " ") or (line.startswith(name + "{") and line.split(" ")[0] == name):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_metrics_count_orders_by_state_jobs_requests_and_refusals(
    database_url: str, store: SqlStore, clock: FakeClock
) -> None:
    app = create_app(Settings(database_url=database_url, auth_cache_seconds=0), store, clock=clock)
    _, token = access.create_api_key(store, client="ops", scopes="admin", name="ops", now=clock())
    admin = {"Authorization": f"Bearer {token}"}
    with TestClient(app) as api:
        before = api.get("/metrics", headers=admin).text
        api.post(ORDERS, json=order_body(), headers=admin)
        api.get(ORDERS)  # refused: no token
        clock.advance(minutes=2)  # the plan job (no worker here) is late

        text = api.get("/metrics", headers=admin).text

    assert metric(text, 'provtrack_service_orders{state="acknowledged"}') == 1
    assert metric(text, 'provtrack_job_queue{status="due"}') >= 1
    assert metric(text, 'provtrack_job_queue{status="late"}') >= 1
    assert metric(text, "provtrack_event_dead_letters") == 0
    assert metric(text, 'provtrack_escalations{status="open"}') == 0
    missing = 'provtrack_auth_failures_total{reason="missing"}'
    assert metric(text, missing) == metric(before, missing) + 1
    created = 'provtrack_http_requests_total{method="POST",route="/tmf-api/serviceOrdering/v4/serviceOrder",status="201"}'
    assert metric(text, created) == metric(before, created) + 1
