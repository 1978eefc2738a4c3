"""Build the running parts from settings: engine, store, app. The one place they are assembled."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime

import structlog
from fastapi import FastAPI

from provtrack.adapters.store.database import create_database_engine
from provtrack.adapters.store.migrate import upgrade_database
from provtrack.adapters.store.repository import SqlStore
from provtrack.api.app import create_app
from provtrack.api.http import utc_now
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


def build_app(
    settings: Settings, *, migrate: bool = True, clock: Callable[[], datetime] = utc_now
) -> FastAPI:
    store = build_store(settings, migrate=migrate)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        store.dispose()

    return create_app(settings, store, clock=clock, lifespan=lifespan)
