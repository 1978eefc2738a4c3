"""`provtrack events ...`: hub subscriptions and dead letters, for operators."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from provtrack.cli.options import DatabaseOption, JsonOption, checked, out, print_rows, settings_from
from provtrack.cli.options import console as err

if TYPE_CHECKING:
    from provtrack.adapters.store.repository import SqlStore

events_app = typer.Typer(help="Event notifications: subscriptions and dead letters.", no_args_is_help=True)


def _store(database: str | None) -> SqlStore:
    from provtrack.bootstrap import Assembly

    return checked(lambda: Assembly.build(settings_from(database_url=database), migrate=True)).store


@events_app.command("subscriptions")
def subscriptions(database: DatabaseOption = None, as_json: JsonOption = False) -> None:
    """List the hub subscriptions (without secrets)."""
    from provtrack.services import events

    store = _store(database)
    try:
        rows = [
            {
                "id": s.id,
                "callback": s.callback,
                "query": s.query,
                "deliverTo": s.deliver_to.value,
                "state": s.state,
                "since": s.created_at,
            }
            for s in events.list_subscriptions(store)
        ]
    finally:
        store.dispose()
    columns = {"id": "id", "callback": "callback", "query": "query", "deliverTo": "deliverTo"}
    print_rows({**columns, "state": "state", "since": "since"}, rows, keys=["id"], as_json=as_json)


@events_app.command("dead-letters")
def dead_letters(
    subscription: Annotated[str | None, typer.Option(help="only this subscription's")] = None,
    database: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    """List the events that could not be delivered within the retry horizon."""
    from provtrack.services import events

    store = _store(database)
    try:
        rows = [
            {
                "id": d.id,
                "subscription": d.subscription_id,
                "serviceOrder": d.service_order_id,
                "eventType": d.event_type,
                "deadAt": d.dead_at,
                "attempts": d.attempts,
                "lastError": d.last_error,
                "delivered": d.delivered_at or ("queued" if d.replayed_at else None),
            }
            for d in events.list_dead_letters(store, subscription_id=subscription)
        ]
    finally:
        store.dispose()
    columns = {
        "id": "id",
        "subscription": "subscription",
        "serviceOrder": "order",
        "eventType": "event",
        "deadAt": "dead at",
        "attempts": "attempts",
        "lastError": "error",
        "delivered": "delivered",
    }
    print_rows(columns, rows, keys=["id", "subscription", "serviceOrder"], as_json=as_json)


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
