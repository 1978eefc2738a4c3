"""The archive on SQLite and PostgreSQL, and what the API and the command line make of it."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from provtrack.adapters.store.repository import SqlStore
from provtrack.cli import app
from provtrack.services.archive import archive_finished_orders
from tests import archive_cases
from tests.archive_cases import LONG_AGO, NOW, add_order
from tests.conftest import FakeClock
from tests.integration.tmf import ORDERS


def test_finished_orders_older_than_the_cutoff_leave_the_list_and_stay_readable(store: SqlStore) -> None:
    archive_cases.finished_orders_older_than_the_cutoff_leave_the_list_and_stay_readable(store)


def test_archiving_again_moves_nothing_twice(store: SqlStore) -> None:
    archive_cases.archiving_again_moves_nothing_twice(store)


def test_an_archived_order_answers_by_id_and_as_of_but_is_not_listed(
    client: TestClient, store: SqlStore, clock: FakeClock
) -> None:
    clock.now = NOW
    order_id = add_order(store, "completed", at=LONG_AGO)
    while_in_progress = (LONG_AGO + timedelta(minutes=30)).isoformat().replace("+00:00", "Z")
    archive_finished_orders(store, older_than=timedelta(days=90), now=NOW, batch=10)

    found = client.get(f"{ORDERS}/{order_id}")
    assert found.status_code == 200
    assert found.json()["state"] == "completed"
    assert found.json()["href"].endswith(f"/serviceOrder/{order_id}")
    assert (
        client.get(f"{ORDERS}/{order_id}", params={"asOf": while_in_progress}).json()["state"] == "inProgress"
    )
    assert client.get(ORDERS).json() == []


def test_provtrack_archive_moves_what_finished_before_the_age_and_says_how_many(
    store: SqlStore, database_url: str
) -> None:
    add_order(store, "completed", at=LONG_AGO)
    add_order(store, "cancelled", at=LONG_AGO)
    add_order(store, None, at=LONG_AGO)
    command = ["archive", "--older-than", "90d", "--database", database_url, "--batch", "1"]

    first = CliRunner().invoke(app, command)
    second = CliRunner().invoke(app, command)

    assert first.exit_code == 0, first.output
    assert "archived 2 orders finished more than 90d ago" in first.output
    assert "archived 0 orders" in second.output
