"""Waiting for another process to reach a state: polled, bounded, failing with what was awaited."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_for(condition: Callable[[], bool], *, timeout: float, what: str, every: float = 0.01) -> None:
    """Until `condition()` holds, looking `every` seconds (longer for a costly look); fails after
    `timeout` seconds naming `what`."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(every)


def admin_headers(database_url: str) -> dict[str, str]:
    """The header of an administrator's API key, made in the (migrated) database a server uses:
    `provtrack serve` checks bearer tokens on every route but liveness."""
    from datetime import UTC, datetime

    from provtrack.adapters.store.database import create_database_engine
    from provtrack.adapters.store.migrate import upgrade_database
    from provtrack.adapters.store.repository import SqlStore
    from provtrack.services import access

    store = SqlStore(create_database_engine(database_url))
    try:
        upgrade_database(store.engine)
        _, token = access.create_api_key(
            store, client="e2e", scopes="admin", name="e2e", now=datetime.now(UTC)
        )
    finally:
        store.dispose()
    return {"Authorization": f"Bearer {token}"}
