"""Cross-process wake-up on PostgreSQL: LISTEN for the NOTIFY a job-scheduling commit sends."""

from __future__ import annotations

import threading

import psycopg
import structlog
from sqlalchemy import Engine

from provtrack.adapters.store.repository import JOBS_CHANNEL

log = structlog.get_logger("provtrack.notify")


def start_job_listener(
    engine: Engine, wake: threading.Event, stop: threading.Event
) -> threading.Thread | None:
    """Set `wake` whenever another process commits a job. Nothing to do on SQLite."""
    if engine.dialect.name != "postgresql":
        return None
    url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)

    def listen() -> None:
        while not stop.is_set():
            try:
                with psycopg.connect(url, autocommit=True) as conn:
                    conn.execute(f"LISTEN {JOBS_CHANNEL}")
                    while not stop.is_set():
                        for _ in conn.notifies(timeout=1.0, stop_after=1):
                            wake.set()
            except psycopg.Error:
                log.exception("job listener lost its connection; reconnecting")
                stop.wait(1.0)

    thread = threading.Thread(target=listen, name="provtrack-job-listener", daemon=True)
    thread.start()
    return thread
