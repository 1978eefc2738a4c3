"""The one place the benchmarks take their credentials from (every route but liveness needs a bearer
token): `PROVTRACK_BENCH_TOKEN` when set (a server someone else started), else an administrator's
API key the bench makes in the database of the server it starts (`admin_headers`), which
`auth_headers` then gives every request of this process."""

from __future__ import annotations

import os
from datetime import UTC, datetime

from provtrack.adapters.store.database import create_database_engine
from provtrack.adapters.store.migrate import upgrade_database
from provtrack.adapters.store.repository import SqlStore
from provtrack.services import access

TOKEN_VARIABLE = "PROVTRACK_BENCH_TOKEN"
_MADE: dict[str, str] = {}  # the header of the key this process made last


def admin_headers(database_url: str) -> dict[str, str]:
    """An administrator's key made in `database_url` (migrated first); remembered for auth_headers."""
    store = SqlStore(create_database_engine(database_url))
    try:
        upgrade_database(store.engine)
        _, token = access.create_api_key(
            store, client="bench", scopes="admin", name="bench", now=datetime.now(UTC)
        )
    finally:
        store.dispose()
    _MADE.clear()
    _MADE["Authorization"] = f"Bearer {token}"
    return dict(_MADE)


def auth_headers() -> dict[str, str]:
    token = os.environ.get(TOKEN_VARIABLE, "").strip()
    return {"Authorization": f"Bearer {token}"} if token else dict(_MADE)
