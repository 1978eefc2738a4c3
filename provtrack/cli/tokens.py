"""`provtrack token ...`: API keys for the clients of the API (docs/security.md). A key is shown
once, when it is created; the store keeps only its hash."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated

import typer

from provtrack.cli.options import DatabaseOption, JsonOption, checked, out, print_rows, settings_from
from provtrack.cli.options import console as err

if TYPE_CHECKING:
    from provtrack.adapters.store.repository import SqlStore

token_app = typer.Typer(help="API keys: create, list, revoke.", no_args_is_help=True)


def _store(database: str | None) -> SqlStore:
    from provtrack.bootstrap import Assembly

    return checked(lambda: Assembly.build(settings_from(database_url=database), migrate=True)).store


@token_app.command("create")
def create(
    client: Annotated[str, typer.Option(help="the client the key acts as: it owns what it creates")],
    scope: Annotated[
        list[str],
        typer.Option(
            help="a scope, repeated or space separated: orders:read orders:write orders:cancel "
            "tasks:work events:manage metrics:read admin"
        ),
    ],
    name: Annotated[str, typer.Option(help="what the key is for (shown by `token list`)")] = "",
    days: Annotated[int | None, typer.Option(help="expires after this many days; default never")] = None,
    database: DatabaseOption = None,
) -> None:
    """Create an API key and print it (this once: only its hash is kept)."""
    from provtrack.domain.access import InvalidScopes
    from provtrack.services import access

    store = _store(database)
    now = datetime.now(UTC)
    try:
        key, token = access.create_api_key(
            store,
            client=client,
            scopes=" ".join(scope),
            name=name or client,
            now=now,
            expires_at=now + timedelta(days=days) if days else None,
        )
    except (InvalidScopes, ValueError) as exc:
        err.print(f"[red]refused[/red]: {exc}", markup=True, highlight=False)
        raise typer.Exit(2) from None
    finally:
        store.dispose()
    err.print(
        f"API key {key.id} for {key.client} ({' '.join(sorted(key.scopes))}); keep it, it is shown once:"
    )
    out.print(token, highlight=False, soft_wrap=True)


@token_app.command("list")
def list_keys(database: DatabaseOption = None, as_json: JsonOption = False) -> None:
    """List the API keys (never the keys themselves)."""
    from provtrack.services import access

    store = _store(database)
    try:
        rows = [
            {
                "id": k.id,
                "client": k.client,
                "name": k.name,
                "scopes": " ".join(sorted(k.scopes)),
                "created": k.created_at,
                "expires": k.expires_at,
                "revoked": k.revoked_at,
            }
            for k in access.list_api_keys(store)
        ]
    finally:
        store.dispose()
    columns = {"id": "id", "client": "client", "name": "name", "scopes": "scopes", "created": "created"}
    print_rows({**columns, "expires": "expires", "revoked": "revoked"}, rows, keys=["id"], as_json=as_json)


@token_app.command("revoke")
def revoke(
    key_id: Annotated[str, typer.Argument(help="the key's id (`token list`)")],
    database: DatabaseOption = None,
) -> None:
    """Revoke an API key: refused from then on (within PROVTRACK_AUTH_CACHE_SECONDS, 5 s)."""
    from provtrack.services import access

    store = _store(database)
    try:
        access.revoke_api_key(store, key_id, now=datetime.now(UTC))
    except access.ApiKeyNotFound as exc:
        err.print(f"[red]{exc}[/red]", markup=True, highlight=False)
        raise typer.Exit(1) from None
    finally:
        store.dispose()
    err.print(f"API key {key_id} revoked")
