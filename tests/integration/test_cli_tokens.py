"""`provtrack token create | list | revoke`: a key is printed once and works at once; the list never
shows a key; a revoked key is refused."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from provtrack.adapters.store.repository import SqlStore
from provtrack.api.app import create_app
from provtrack.cli import app
from provtrack.settings import Settings
from tests.integration.tmf import ORDERS, assert_tmf_error


def test_a_key_made_by_the_cli_works_and_once_revoked_is_refused(store: SqlStore, database_url: str) -> None:
    runner = CliRunner()
    created = runner.invoke(
        app,
        [
            "token",
            "create",
            "--client",
            "bss",
            "--scope",
            "orders:read orders:write",
            "--database",
            database_url,
        ],
    )
    assert created.exit_code == 0, created.output
    token = created.stdout.strip()
    assert token.startswith("pt_")
    headers = {"Authorization": f"Bearer {token}"}
    api = TestClient(create_app(Settings(database_url=database_url, auth_cache_seconds=0), store))
    assert api.get(ORDERS, headers=headers).status_code == 200

    listed = runner.invoke(app, ["token", "list", "--json", "--database", database_url])
    assert listed.exit_code == 0, listed.output
    [row] = [json.loads(line) for line in listed.stdout.splitlines()]
    assert row["client"] == "bss"
    assert row["scopes"] == "orders:read orders:write"
    assert token not in listed.output
    assert token.split("_", 2)[2] not in listed.output  # the secret (it may hold "_" itself)

    revoked = runner.invoke(app, ["token", "revoke", row["id"], "--database", database_url])
    assert revoked.exit_code == 0, revoked.output
    assert_tmf_error(api.get(ORDERS, headers=headers), 401, "UNAUTHENTICATED")
    again = runner.invoke(app, ["token", "revoke", row["id"], "--database", database_url])
    assert again.exit_code == 1


def test_an_unknown_scope_is_refused_naming_the_scopes(store: SqlStore, database_url: str) -> None:
    created = CliRunner().invoke(
        app,
        ["token", "create", "--client", "bss", "--scope", "orders:everything", "--database", database_url],
    )

    assert created.exit_code == 2
    assert "unknown scope orders:everything" in created.output
    assert "orders:read" in created.output
