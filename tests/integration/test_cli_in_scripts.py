"""The list commands work in scripts: ids are never cut, at a narrow terminal or in a pipe, and
`--json` gives one object per line that parses back."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from provtrack.adapters.store.repository import SqlStore
from provtrack.cli import app
from provtrack.domain.events import DeliverTo, Subscription

LONG_ID = "304eb22e-d9a1-4c53-9a55-6e3c1f0b7a42"  # a subscription id as the hub makes them


@pytest.fixture
def subscribed(store: SqlStore) -> SqlStore:
    with store.transaction(write=True) as tx:
        tx.events.add_subscription(
            Subscription(
                id=LONG_ID,
                callback="https://listener.example.net/tmf641/a/rather/long/path/to/the/listener",
                query="eventType=ServiceOrderStateChangeEvent&event.serviceOrder.state=completed",
                deliver_to=DeliverTo.CALLBACK,
                secret="whsec_c2VjcmV0",
                created_at="2026-11-27T09:00:00.000Z",
                after_event=0,
            )
        )
    return store


@pytest.mark.parametrize(
    "terminal",
    [
        pytest.param({"TTY_COMPATIBLE": "1", "COLUMNS": "60"}, id="narrow-terminal"),
        pytest.param({"TTY_COMPATIBLE": "0"}, id="pipe"),
    ],
)
def test_subscription_ids_are_whole_at_a_narrow_terminal_and_in_a_pipe(
    subscribed: SqlStore, database_url: str, terminal: dict[str, str]
) -> None:
    listed = CliRunner().invoke(app, ["events", "subscriptions", "--database", database_url], env=terminal)

    assert listed.exit_code == 0, listed.output
    assert LONG_ID in listed.output  # on one line, uncut


def test_subscriptions_as_json_lines_parse_back(subscribed: SqlStore, database_url: str) -> None:
    listed = CliRunner().invoke(app, ["events", "subscriptions", "--json", "--database", database_url])

    assert listed.exit_code == 0, listed.output
    [row] = [json.loads(line) for line in listed.stdout.splitlines()]
    assert row["id"] == LONG_ID
    assert row["deliverTo"] == "callback"


def test_dead_letters_as_json_lines_when_there_are_none(subscribed: SqlStore, database_url: str) -> None:
    listed = CliRunner().invoke(app, ["events", "dead-letters", "--json", "--database", database_url])

    assert listed.exit_code == 0, listed.output
    assert listed.stdout == ""


def test_policy_simulate_prints_a_table_or_json_lines_never_a_repr(
    store: SqlStore, database_url: str
) -> None:
    from provtrack.services import orders
    from provtrack.services.ports import Context

    ctx = Context("2026-11-27T09:00:00.000Z", "test", lambda: "order-with-a-long-id-0001")
    item = {"id": "1", "action": "add", "service": {"serviceSpecification": {"id": "fibre"}}}
    order = orders.create_order(store, {"category": "business", "serviceOrderItem": [item]}, ctx=ctx)
    for state in ("inProgress", "held"):  # held for more than 4 h: a ladder fires
        orders.patch_order(store, order.id, {"state": state}, json_patch=False, ctx=ctx)
    runner = CliRunner()
    at = ["--at", "2026-12-20T09:00:00Z", "--database", database_url]

    table = runner.invoke(
        app, ["policy", "simulate", "demo", *at], env={"TTY_COMPATIBLE": "1", "COLUMNS": "70"}
    )
    as_json = runner.invoke(app, ["policy", "simulate", "demo", "--json", *at])

    assert table.exit_code == 0, table.output
    assert "Firing(" not in table.output
    assert "order-with-a-long-id-0001" in table.output
    assert as_json.exit_code == 0, as_json.output
    firings = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert firings
    assert {f["serviceOrder"] for f in firings} == {"order-with-a-long-id-0001"}
