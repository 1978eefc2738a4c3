"""Build the running parts from settings: engine, store, app. The one place they are assembled."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import ExitStack, asynccontextmanager, contextmanager
from datetime import datetime, timedelta

import structlog
from fastapi import FastAPI

from provtrack.adapters.catalog_file import load_catalog
from provtrack.adapters.email import SmtpMailer
from provtrack.adapters.policy_file import ReloadingPolicy
from provtrack.adapters.store.database import create_database_engine
from provtrack.adapters.store.escalation import DurationCache, SqlJeopardyRecords
from provtrack.adapters.store.migrate import upgrade_database
from provtrack.adapters.store.notify import start_job_listener
from provtrack.adapters.store.repository import SqlStore
from provtrack.adapters.tmf638 import ServiceInventoryClient
from provtrack.adapters.tmf652 import ResourceOrderingClient
from provtrack.adapters.webhooks import HttpSender
from provtrack.api.app import create_app
from provtrack.api.http import new_id, utc_now
from provtrack.api.hub import events_config
from provtrack.domain.catalog import Catalog
from provtrack.domain.clock import format_datetime
from provtrack.engine.events import EventDelivery
from provtrack.engine.jeopardy import JeopardyEngine
from provtrack.engine.provisioning import ProvisioningEngine
from provtrack.engine.worker import Handler, Worker
from provtrack.services import delivery, events, jeopardy, provisioning
from provtrack.services.orders import Context
from provtrack.settings import Settings


def configure_logging(level: str = "info") -> None:
    logging.basicConfig(format="%(message)s", level=level.upper())
    logging.getLogger("alembic").setLevel(logging.WARNING)  # one line per migration is enough
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
    store = SqlStore(engine)
    watch_jeopardy(settings, store)
    return store


def watch_jeopardy(settings: Settings, store: SqlStore, *, policy: ReloadingPolicy | None = None) -> None:
    """Jeopardy monitoring of the store's orders, under PROVTRACK_POLICY (reloaded when it changes)."""
    durations = DurationCache()
    jeopardy.watch(
        store,
        jeopardy.Monitor(
            policy or ReloadingPolicy(settings.policy),
            lambda tx: SqlJeopardyRecords(tx.conn, cache=durations, write=tx.write),
            email=settings.smtp_host is not None,
        ),
    )


def build_handlers(settings: Settings, store: SqlStore) -> dict[str, Handler]:
    """The job handlers of every feature, by job kind."""
    handlers: dict[str, Handler] = {}
    handlers.update(event_handlers(settings, store))
    handlers.update(provisioning_handlers(settings, store))
    handlers.update(jeopardy_handlers(settings, store))
    return handlers


def jeopardy_handlers(
    settings: Settings, store: SqlStore, *, sender: events.Sender | None = None
) -> dict[str, Handler]:
    """Jeopardy timers, escalation steps, pending auto-cancel and escalation webhooks."""
    sender = sender or HttpSender(timeout=settings.events_attempt_timeout_seconds)
    mailer = None
    if settings.smtp_host:
        mailer = SmtpMailer(
            settings.smtp_host,
            settings.smtp_port,
            sender=settings.smtp_from,
            starttls=settings.smtp_starttls,
            username=settings.smtp_username,
            password=settings.smtp_password,
        )
    return JeopardyEngine(store, sender, secret=settings.policy_webhook_secret, mailer=mailer).handlers()


def build_catalog(settings: Settings) -> Catalog | None:
    """The provisioning catalog, validated (InvalidCatalog names file and line), or None."""
    if not settings.catalog:
        return None
    overrides = None
    if settings.simulator_url:
        base = settings.simulator_url.rstrip("/")
        catalog = load_catalog(settings.catalog)
        overrides = {name: f"{base}/{name}/tmf-api/resourceOrderingManagement/v4" for name in catalog.systems}
        if catalog.inventory_url:
            overrides["@inventory"] = f"{base}/inventory/tmf-api/serviceInventory/v4"
    return load_catalog(settings.catalog, overrides=overrides)


def listener_base_url(settings: Settings) -> str:
    base = settings.listener_url or settings.public_url or f"http://{settings.host}:{settings.port}"
    return base.rstrip("/")


def provisioning_handlers(
    settings: Settings, store: SqlStore, *, catalog: Catalog | None = None
) -> dict[str, Handler]:
    """Plan, start, dispatch, poll and subscribe: the provisioning engine's jobs."""
    engine = ProvisioningEngine(
        store,
        catalog or build_catalog(settings),
        ResourceOrderingClient(timeout=settings.downstream_timeout_seconds),
        listener_base_url=listener_base_url(settings),
        inventory=ServiceInventoryClient(timeout=settings.downstream_timeout_seconds),
        lease=timedelta(seconds=settings.worker_lease_seconds),
        clock=utc_now,
    )
    return engine.handlers()


def start_provisioning(
    settings: Settings, store: SqlStore, *, clock: Callable[[], datetime] = utc_now
) -> None:
    """Subscribe to the hubs of the catalog's systems (a job per system, retried until it works)."""
    catalog = build_catalog(settings)
    if catalog is not None:
        provisioning.subscribe_to_hubs(
            store, catalog, ctx=Context(format_datetime(clock()), "provtrack", new_id)
        )


def event_handlers(
    settings: Settings, store: SqlStore, *, sender: events.Sender | None = None
) -> dict[str, Handler]:
    """Webhook delivery: one job per (subscription, order) stream, replays, outbox pruning."""
    sender = sender or HttpSender(
        timeout=settings.events_attempt_timeout_seconds,
        per_subscriber=settings.events_max_in_flight_per_subscriber,
    )
    return EventDelivery(store, sender, events_config(settings)).handlers()


def build_worker(settings: Settings, store: SqlStore, *, clock: Callable[[], datetime] = utc_now) -> Worker:
    delivery.schedule_pruning(store, now=clock())  # the outbox prune job, unless it is there
    return Worker(
        store,
        build_handlers(settings, store),
        clock=clock,
        threads=settings.worker_threads,
        poll_interval=timedelta(seconds=settings.worker_poll_seconds),
        lease=timedelta(seconds=settings.worker_lease_seconds),
    )


@contextmanager
def running_worker(settings: Settings, store: SqlStore) -> Iterator[Worker]:
    """A worker serving in a background thread (and its cross-process wake-up) until the block ends."""
    worker = build_worker(settings, store)
    listener = start_job_listener(store.engine, store.jobs_committed, worker.stopping)
    start_provisioning(settings, store)
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

    app = create_app(settings, store, clock=clock, lifespan=lifespan, worker_in_process=with_worker)
    app.state.catalog = build_catalog(settings)
    return app
