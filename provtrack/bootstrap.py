"""The one assembly of a provtrack process: settings, store, catalog, features, worker, app.

Every process role builds itself here the same way: `provtrack serve`, `serve --no-worker` and
`provtrack worker` differ only in whether they serve HTTP and whether they run a worker. A feature
plugs in twice, both explicit: its after-change hook goes to the store (`Assembly.build`), its job
kinds to the worker (`Assembly.handlers`). Nothing is built at import time.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from fastapi import FastAPI

from provtrack.adapters.catalog_file import load_catalog
from provtrack.adapters.clock import new_id, utc_now
from provtrack.adapters.email import SmtpMailer
from provtrack.adapters.policy_file import PolicyWatcher, ReloadingPolicy
from provtrack.adapters.store.database import create_database_engine
from provtrack.adapters.store.migrate import upgrade_database
from provtrack.adapters.store.notify import start_job_listener
from provtrack.adapters.store.repository import SqlStore
from provtrack.adapters.tmf622 import ProductOrderingClient
from provtrack.adapters.tmf638 import ServiceInventoryClient
from provtrack.adapters.tmf641_partner import PartnerOrderingClient
from provtrack.adapters.tmf652 import ResourceOrderingClient
from provtrack.adapters.webhooks import HttpSender
from provtrack.api.app import create_app
from provtrack.api.errors import ERRORS
from provtrack.api.hub import events_config
from provtrack.api.jwt import jwt_verifier
from provtrack.api.security import Authenticator, Tokens
from provtrack.domain.catalog import Catalog
from provtrack.domain.clock import format_datetime
from provtrack.engine.cancellation import CancellationEngine
from provtrack.engine.events import EventDelivery
from provtrack.engine.jeopardy import JeopardyEngine
from provtrack.engine.metrics import MetricsSnapshots
from provtrack.engine.partners import PartnerEngine
from provtrack.engine.product_orders import ProductOrderingEngine
from provtrack.engine.provisioning import ProvisioningEngine
from provtrack.engine.trust import TrustMaintenance
from provtrack.engine.worker import Closeable, Handler, JobHandlers, Worker
from provtrack.services import (
    delivery,
    events,
    hub_subscriptions,
    idempotency,
    metrics,
    partners,
    product_orders,
    provisioning,
)
from provtrack.services.cancellation import CancellationBookkeeping
from provtrack.services.jeopardy import JeopardyMonitor
from provtrack.services.ports import Context
from provtrack.services.product_orders import ProductOrderWatch
from provtrack.services.tasks import TaskQueue
from provtrack.settings import Settings
from provtrack.web.app import install_dashboard


def configure_logging(level: str = "info", fmt: str = "console") -> None:
    """Readable console lines, or (`fmt="json"`) one JSON object per line, the server's own lines
    (uvicorn, alembic) included; the request id, trace, client and order ride on each line."""
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if fmt == "json":
        renderer: Any = structlog.processors.JSONRenderer()
        shared.append(structlog.processors.dict_tracebacks)
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=False)
        shared.append(structlog.processors.format_exc_info)
    handler = logging.StreamHandler()
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
        )
    )
    logging.basicConfig(handlers=[handler], level=level.upper(), force=True)
    logging.getLogger("alembic").setLevel(logging.WARNING)  # one line per migration is enough
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers = []  # through the root handler above, in the same format
        logging.getLogger(name).propagate = True
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
    )


def build_catalog(settings: Settings) -> Catalog | None:
    """The provisioning catalog, validated (InvalidCatalog names file and line), or None."""
    if not settings.catalog:
        return None
    overrides = partner_overrides = None
    if settings.simulator_url:
        base = settings.simulator_url.rstrip("/")
        catalog = load_catalog(settings.catalog)
        overrides = {name: f"{base}/{name}/tmf-api/resourceOrderingManagement/v4" for name in catalog.systems}
        if catalog.inventory_url:
            overrides["@inventory"] = f"{base}/inventory/tmf-api/serviceInventory/v4"
    if settings.partner_simulator_url:
        base = settings.partner_simulator_url.rstrip("/")
        partner_overrides = {
            name: f"{base}/{name}/tmf-api/serviceOrdering/v4"
            for name in load_catalog(settings.catalog).partners
        }
    return load_catalog(settings.catalog, overrides=overrides, partner_overrides=partner_overrides)


@dataclass
class Assembly:
    """The parts of one process. `build` makes them; the roles differ only in what they start."""

    settings: Settings
    store: SqlStore
    catalog: Catalog | None
    policy: ReloadingPolicy
    jeopardy: JeopardyMonitor
    tasks: TaskQueue
    cancellation: CancellationBookkeeping
    product_order_watch: ProductOrderWatch
    clock: Callable[[], datetime] = utc_now

    @classmethod
    def build(
        cls,
        settings: Settings,
        *,
        migrate: bool = False,
        catalog: Catalog | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> Assembly:
        """Store and features from settings. `catalog` replaces the one the settings name (tests,
        benchmarks); InvalidCatalog and InvalidPolicy name the file and line."""
        policy = ReloadingPolicy(settings.policy)
        jeopardy = JeopardyMonitor(policy, email=settings.smtp_host is not None)
        catalog = catalog or build_catalog(settings)
        engine = create_database_engine(
            settings.database_url,
            pool_size=settings.database_pool_size,
            pool_timeout=settings.database_pool_timeout_seconds,
        )
        if migrate:
            upgrade_database(engine, lock_timeout_seconds=settings.migration_lock_timeout_seconds)
        # Cancellation first: the jeopardy refresh then sees an order the cancellation has settled;
        # jeopardy before the task queues: they take the level it has just assessed.
        cancellation = CancellationBookkeeping(catalog)
        watch = ProductOrderWatch(_product_order_poll(settings))
        tasks = TaskQueue(catalog)
        hooks = (cancellation.after_change, watch.after_change, jeopardy.after_change, tasks.after_change)
        store = SqlStore(engine, after_change=hooks)
        return cls(settings, store, catalog, policy, jeopardy, tasks, cancellation, watch, clock)

    # --- the worker -------------------------------------------------------------------------------

    def features(self, *, sender: events.Sender | None = None) -> list[JobHandlers]:
        """Every feature with job kinds: event delivery, the provisioning engine, partner orders,
        cancellation, product orders, jeopardy, metrics. Each opens its own downstream clients (a
        `sender` given here becomes theirs): `close_features` closes them."""
        settings = self.settings
        return [
            EventDelivery(
                self.store,
                sender
                or HttpSender(
                    timeout=settings.events_attempt_timeout_seconds,
                    per_subscriber=settings.events_max_in_flight_per_subscriber,
                ),
                events_config(settings),
            ),
            ProvisioningEngine(
                self.store,
                self.catalog,
                ResourceOrderingClient(timeout=settings.downstream_timeout_seconds),
                listener_base_url=settings.listener_base_url(),
                inventory_client=ServiceInventoryClient(timeout=settings.downstream_timeout_seconds),
                lease=timedelta(seconds=settings.worker_lease_seconds),
                clock=self.clock,
            ),
            PartnerEngine(
                self.store,
                self.catalog,
                PartnerOrderingClient(timeout=settings.downstream_timeout_seconds),
                listener_base_url=settings.listener_base_url(),
                clock=self.clock,
            ),
            CancellationEngine(
                self.store,
                self.catalog,
                ResourceOrderingClient(timeout=settings.downstream_timeout_seconds),
                PartnerOrderingClient(timeout=settings.downstream_timeout_seconds),
            ),
            ProductOrderingEngine(
                self.store,
                self.catalog,
                ProductOrderingClient(timeout=settings.downstream_timeout_seconds),
                url=settings.product_ordering_url,
                listener_base_url=settings.listener_base_url(),
                poll_interval=timedelta(seconds=settings.product_ordering_poll_seconds),
            ),
            JeopardyEngine(
                self.store,
                sender or HttpSender(timeout=settings.events_attempt_timeout_seconds),
                secret=settings.policy_webhook_secret,
                mailer=self._mailer(),
            ),
            MetricsSnapshots(self.store),
            TrustMaintenance(self.store),
        ]

    def handlers(self, *, sender: events.Sender | None = None) -> dict[str, Handler]:
        """The job handlers of every feature, by job kind; two features may not claim one kind."""
        return merge_handlers(feature.handlers() for feature in self.features(sender=sender))

    def worker(self, features: Sequence[JobHandlers] | None = None) -> Worker:
        """A worker for every feature's jobs (`features`: ones already built, to close after it)."""
        settings = self.settings
        handlers = self.handlers() if features is None else merge_handlers(f.handlers() for f in features)
        return Worker(
            self.store,
            handlers,
            clock=self.clock,
            threads=settings.worker_threads,
            poll_interval=timedelta(seconds=settings.worker_poll_seconds),
            lease=timedelta(seconds=settings.worker_lease_seconds),
            batch=settings.worker_claim_batch,
        )

    def start(self) -> None:
        """What every role does once at start: the hub subscriptions of the catalog's systems and
        partners and of the product ordering API (a job each, run by whichever worker claims it,
        retried until it works), planning again the orders accepted when no catalog was configured,
        the outbox prune job and the hourly count of open orders (each kept if it is there)."""
        now = self.clock()
        ctx = Context(format_datetime(now), "provtrack", new_id)
        if self.catalog is not None:
            hub_subscriptions.subscribe_to_hubs(self.store, self.catalog, ctx=ctx)
            partners.subscribe_to_partner_hubs(self.store, self.catalog, ctx=ctx)
            stranded = provisioning.plan_stranded_orders(self.store, ctx=ctx)
            if stranded:
                structlog.get_logger("provtrack").info("planning orders left unplanned", orders=len(stranded))
        if self.settings.product_ordering_url:
            product_orders.subscribe_to_hub(self.store, ctx=ctx)
        delivery.schedule_pruning(self.store, now=now)
        metrics.schedule_snapshot(self.store, now=now)
        idempotency.schedule_pruning(self.store, now=now)

    @contextmanager
    def running(self, *, with_worker: bool) -> Iterator[Worker | None]:
        """What a long-running role runs beside its main loop until the block ends: the policy
        file's watcher (a broken edit is reported at once, the last good policy kept), and with
        `with_worker` a worker; without one, `start()` still asks for the hub subscriptions."""
        with ExitStack() as stack:
            stack.enter_context(PolicyWatcher(self.policy))
            if with_worker:
                yield stack.enter_context(self.running_worker())
            else:
                self.start()
                yield None

    @contextmanager
    def running_worker(self) -> Iterator[Worker]:
        """A worker serving in a background thread (with its cross-process wake-up) until the block
        ends: `serve` runs it beside the API, `provtrack worker` alone. Once it has stopped, the
        features' downstream clients are closed."""
        features = self.features()
        worker = self.worker(features)
        listener = start_job_listener(self.store.engine, self.store.jobs_committed, worker.stopping)
        self.start()
        thread = threading.Thread(target=worker.serve, name="provtrack-worker", daemon=True)
        thread.start()
        try:
            yield worker
        finally:
            worker.stop()
            thread.join(timeout=30)
            if listener is not None:
                listener.join(timeout=5)
            close_features(features)

    def _mailer(self) -> SmtpMailer | None:
        settings = self.settings
        if not settings.smtp_host:
            return None
        return SmtpMailer(
            settings.smtp_host,
            settings.smtp_port,
            sender=settings.smtp_from,
            starttls=settings.smtp_starttls,
            username=settings.smtp_username,
            password=settings.smtp_password,
        )

    # --- the API ----------------------------------------------------------------------------------

    def app(self, *, with_worker: bool, authenticator: Authenticator | None = None) -> FastAPI:
        """The HTTP application; with a worker in this process, or beside `provtrack worker`s. Its
        callers authenticate with bearer tokens (`authenticator`: the store's API keys, and the
        JWTs of the configured issuer)."""

        @asynccontextmanager
        async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
            with self.running(with_worker=with_worker):
                yield
            self.store.dispose()

        app = create_app(
            self.settings,
            self.store,
            clock=self.clock,
            lifespan=lifespan,
            worker_in_process=with_worker,
            catalog=self.catalog,
            jeopardy=self.jeopardy,
            require_catalog=not self.settings.accept_orders_without_catalog,
            authenticator=authenticator or self.authenticator(),
        )
        install_dashboard(app, errors=ERRORS, poll_seconds=self.settings.dashboard_poll_seconds)
        return app

    def authenticator(self) -> Authenticator:
        """API keys from the store, and JWTs when an issuer is configured (docs/security.md)."""
        return Tokens(
            self.store,
            clock=self.clock,
            jwt=jwt_verifier(self.settings),
            cache_seconds=self.settings.auth_cache_seconds,
        )


def app_from_environment() -> FastAPI:
    """One API process of `provtrack serve --workers N` (a uvicorn app factory): its settings from
    the PROVTRACK_* variables `serve` exported; `serve` has migrated the database already."""
    import gc

    settings = Settings()
    configure_logging(settings.log_level)
    app = Assembly.build(settings).app(with_worker=settings.serve_worker)
    gc.collect()
    gc.freeze()  # as `serve` does: what was built lives as long as the process
    return app


def _product_order_poll(settings: Settings) -> timedelta | None:
    if not settings.product_ordering_url:
        return None
    return timedelta(seconds=settings.product_ordering_poll_seconds)


def close_features(features: Iterable[JobHandlers]) -> None:
    """Close what the features opened (their downstream clients): each feature with `close()`."""
    for feature in features:
        if isinstance(feature, Closeable):
            feature.close()


def merge_handlers(
    groups: Sequence[Mapping[str, Handler]] | Iterator[Mapping[str, Handler]],
) -> dict[str, Handler]:
    handlers: dict[str, Handler] = {}
    for group in groups:
        for kind, handler in group.items():
            if kind in handlers:
                raise ValueError(f"two features handle the job kind {kind!r}")
            handlers[kind] = handler
    return handlers
