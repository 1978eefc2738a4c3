"""Without a provisioning catalog nothing can be planned: orders are refused at once, saying why, and
orders an earlier run left unplanned are planned as soon as a catalog is configured."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from provtrack.adapters.clock import new_id
from provtrack.bootstrap import Assembly
from provtrack.domain.states import OrderState
from provtrack.services import orders, provisioning
from provtrack.services.ports import Context
from provtrack.settings import Settings
from tests.conftest import AS_ADMIN
from tests.factories import item, order_body
from tests.integration.tmf import ORDERS, assert_tmf_error

CONTEXT = Context("2026-11-27T09:00:00.000Z", "api", new_id)


def test_without_a_catalog_an_order_is_refused_at_once_saying_why(tmp_path: Path) -> None:
    assembly = Assembly.build(Settings(database_url=f"sqlite:///{tmp_path / 'p.db'}"), migrate=True)
    try:
        with TestClient(assembly.app(with_worker=False, authenticator=AS_ADMIN)) as client:
            message = assert_tmf_error(client.post(ORDERS, json=order_body()), 503, "NO_CATALOG")
            listed = client.get(ORDERS).json()
    finally:
        assembly.store.dispose()

    assert "no provisioning catalog" in message
    assert "--catalog FILE" in message
    assert listed == []


def test_an_operator_may_have_orders_held_until_a_catalog_comes(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'p.db'}", accept_orders_without_catalog=True)
    assembly = Assembly.build(settings, migrate=True)
    try:
        with TestClient(assembly.app(with_worker=False, authenticator=AS_ADMIN)) as client:
            created = client.post(ORDERS, json=order_body())
    finally:
        assembly.store.dispose()

    assert created.status_code == 201, created.text
    assert created.json()["state"] == "acknowledged"


def test_with_a_catalog_the_same_order_is_accepted(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'p.db'}", catalog="demo")
    assembly = Assembly.build(settings, migrate=True)
    try:
        with TestClient(assembly.app(with_worker=False, authenticator=AS_ADMIN)) as client:
            created = client.post(ORDERS, json=order_body(item("1", spec="ftth-residential")))
    finally:
        assembly.store.dispose()

    assert created.status_code == 201, created.text


def test_orders_left_unplanned_without_a_catalog_are_planned_once_one_is_configured(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'p.db'}"
    without = Assembly.build(Settings(database_url=url), migrate=True)
    # As an earlier provtrack accepted it: the planning job then failed for good on the missing catalog.
    stranded = orders.create_order(without.store, order_body(item("1", spec="ftth-residential")), ctx=CONTEXT)
    without.worker().run_due()
    gave_up = without.store.pending_jobs(kind="provisioning.plan")
    without.store.dispose()

    configured = Assembly.build(Settings(database_url=url, catalog="demo"), migrate=True)
    try:
        configured.start()
        asked_again = configured.store.pending_jobs(kind="provisioning.plan")
        assert configured.catalog is not None
        # What the job does (its handler would also send the first resource orders at once).
        provisioning.plan_order(configured.store, stranded.id, configured.catalog, ctx=CONTEXT)
        with configured.store.transaction(write=False) as tx:
            order = tx.get_order(stranded.id)
            plan = tx.plans.get(stranded.id)
    finally:
        configured.store.dispose()

    assert [(j["key"], j["failed_at"] is not None) for j in gave_up] == [(stranded.id, True)]
    assert [(j["key"], j["failed_at"]) for j in asked_again] == [(stranded.id, None)]
    assert plan is not None
    assert plan.activities
    assert order is not None
    assert order.state is OrderState.IN_PROGRESS
