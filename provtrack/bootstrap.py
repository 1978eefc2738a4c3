"""Build the running parts from settings: engine, store, app. The one place they are assembled."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import ExitStack, asynccontextmanager, contextmanager
from datetime import datetime, timedelta

import structlog
from fastapi import FastAPI

from provtrack.adapters.store.database import create_database_engine
from provtrack.adapters.store.migrate import upgrade_database
from provtrack.adapters.store.notify import start_job_listener
from provtrack.adapters.store.repository import SqlStore
from provtrack.api.app import create_app
from provtrack.api.http import utc_now
from provtrack.engine.worker import Handler, Worker
from provtrack.settings import Settings


def configure_logging(level: str = "info") -> None:
    logging.basicConfig(format="%(message)s", level=level.upper())
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.dev.ConsoleRenderer(colors=False),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
    )


def build_store(settings: Settings, *, migrate: bool = False) -> SqlStore:
    engine = create_database_engine(settings.database_url)
    if migrate:
        upgrade_database(engine)
    return SqlStore(engine)


def build_handlers(settings: Settings, store: SqlStore) -> dict[str, Handler]:
    """The job handlers of every feature, by job kind."""
    handlers: dict[str, Handler] = {}
    return handlers


def build_worker(settings: Settings, store: SqlStore, *, clock: Callable[[], datetime] = utc_now) -> Worker:
    return Worker(
        store,
        build_handlers(settings, store),
        clock=clock,
        threads=settings.worker_threads,
        poll_interval=timedelta(seconds=settings.worker_poll_seconds),
    )


@contextmanager
def running_worker(settings: Settings, store: SqlStore) -> Iterator[Worker]:
    """A worker serving in a background thread (and its PostgreSQL listener) until the block ends."""
    worker = build_worker(settings, store)
    listener = start_job_listener(store.engine, store.jobs_committed, worker.stopping)
    thread = threading.Thread(target=worker.serve, name="provtrack-worker", daemon=True)
    thread.start()
    try:
        yield worker
    finally:
        worker.stop()
        thread.join(timeout=30)
        if listener is not None:
            listener.join(timeout=5)


def build_app(
    settings: Settings,
    *,
    migrate: bool = True,
    with_worker: bool = True,
    clock: Callable[[], datetime] = utc_now,
) -> FastAPI:
    store = build_store(settings, migrate=migrate)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        with ExitStack() as stack:
            if with_worker:
                stack.enter_context(running_worker(settings, store))
            yield
        store.dispose()

    return create_app(settings, store, clock=clock, lifespan=lifespan)
