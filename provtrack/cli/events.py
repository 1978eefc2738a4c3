"""`provtrack events ...`: hub subscriptions and dead letters, for operators."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from provtrack.cli.options import DatabaseOption, checked, out, settings_from
from provtrack.cli.options import console as err

if TYPE_CHECKING:
    from provtrack.adapters.store.repository import SqlStore

events_app = typer.Typer(help="Event notifications: subscriptions and dead letters.", no_args_is_help=True)


def _store(database: str | None) -> SqlStore:
    from provtrack.bootstrap import Assembly

    return checked(lambda: Assembly.build(settings_from(database_url=database), migrate=True)).store


@events_app.command("subscriptions")
def subscriptions(database: DatabaseOption = None) -> None:
    """List the hub subscriptions (without secrets)."""
    from provtrack.services import events

    store = _store(database)
    try:
        table = Table("id", "callback", "query", "deliverTo", "state", "since")
        for s in events.list_subscriptions(store):
            table.add_row(s.id, s.callback, s.query or "", s.deliver_to.value, s.state, s.created_at)
        out.print(table)
    finally:
        store.dispose()


@events_app.command("dead-letters")
def dead_letters(
    subscription: Annotated[str | None, typer.Option(help="only this subscription's")] = None,
    database: DatabaseOption = None,
) -> None:
    """List the events that could not be delivered within the retry horizon."""
    from provtrack.services import events

    store = _store(database)
    try:
        table = Table("id", "subscription", "order", "event", "dead at", "attempts", "error", "delivered")
        for d in events.list_dead_letters(store, subscription_id=subscription):
            table.add_row(
                str(d.id),
                d.subscription_id,
                d.service_order_id,
                d.event_type,
                d.dead_at,
                str(d.attempts),
                d.last_error,
                d.delivered_at or ("queued" if d.replayed_at else ""),
            )
        out.print(table)
    finally:
        store.dispose()


@events_app.command("replay")
def replay(
    ids: Annotated[list[int] | None, typer.Argument(help="dead letter ids")] = None,
    subscription: Annotated[
        str | None, typer.Option(help="replay every undelivered dead letter of this subscription")
    ] = None,
    database: DatabaseOption = None,
) -> None:
    """Queue dead letters for one more delivery attempt by the worker (`provtrack serve` or `worker`)."""
    from provtrack.adapters.clock import utc_now
    from provtrack.services import events

    if not ids and subscription is None:
        err.print("give dead letter ids, or --subscription ID (see `provtrack events dead-letters`)")
        raise typer.Exit(2)
    store = _store(database)
    try:
        queued = events.replay_dead_letters(store, ids=ids or (), subscription_id=subscription, now=utc_now())
    except events.DeadLetterNotFound as exc:
        err.print(str(exc))
        raise typer.Exit(1) from None
    finally:
        store.dispose()
    out.print(f"queued {len(queued)} dead letter(s) for delivery: {', '.join(map(str, queued)) or '-'}")
