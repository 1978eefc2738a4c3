"""`provtrack events ...`: an operator lists dead letters and replays them from the command line."""

from __future__ import annotations

from typer.testing import CliRunner

from provtrack.adapters.store.repository import SqlStore
from provtrack.cli import app
from provtrack.domain.events import DeliverTo, StoredEvent, Stream, Subscription
from provtrack.services import events


def test_an_operator_lists_dead_letters_and_queues_them_for_replay(
    store: SqlStore, database_url: str
) -> None:
    with store.transaction(write=True) as tx:
        tx.events.add_subscription(
            Subscription(
                id="sub-1",
                callback="https://listener.example.net/tmf641",
                query=None,
                deliver_to=DeliverTo.CALLBACK,
                secret="whsec_c2VjcmV0",
                created_at="2026-11-27T09:00:00.000Z",
                after_event=0,
            )
        )
        event = StoredEvent(7, "e-7", "order-1", "ServiceOrderCreateEvent", "2026-11-27T09:00:00.000Z", None)
        tx.events.add_dead_letter(
            Stream("sub-1", "order-1", 0),
            event,
            now="2026-11-28T09:00:00.000Z",
            attempts=30,
            error="HTTP 503",
        )
    [dead] = events.list_dead_letters(store)
    runner = CliRunner()

    listed = runner.invoke(app, ["events", "dead-letters", "--database", database_url])
    assert listed.exit_code == 0, listed.output
    assert "order-1" in listed.output
    assert "HTTP 503" in listed.output

    replayed = runner.invoke(app, ["events", "replay", str(dead.id), "--database", database_url])
    assert replayed.exit_code == 0, replayed.output
    assert "queued 1 dead letter" in replayed.output
    assert [j["key"] for j in store.pending_jobs(kind="events.redeliver")] == ["sub-1"]  # its replay job
    assert events.list_dead_letters(store)[0].replayed_at is not None

    missing = runner.invoke(app, ["events", "replay", "999999", "--database", database_url])
    assert missing.exit_code == 1
    assert runner.invoke(app, ["events", "replay", "--database", database_url]).exit_code == 2
