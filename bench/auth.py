"""An administrator's API key for a benchmark's `provtrack serve` (every route but liveness needs a
bearer token): made in the database the server uses, once it is migrated."""

from __future__ import annotations

from datetime import UTC, datetime

from provtrack.adapters.store.database import create_database_engine
from provtrack.adapters.store.migrate import upgrade_database
from provtrack.adapters.store.repository import SqlStore
from provtrack.services import access


def admin_headers(database_url: str) -> dict[str, str]:
    store = SqlStore(create_database_engine(database_url))
    try:
        upgrade_database(store.engine)
        _, token = access.create_api_key(
            store, client="bench", scopes="admin", name="bench", now=datetime.now(UTC)
        )
    finally:
        store.dispose()
    return {"Authorization": f"Bearer {token}"}
