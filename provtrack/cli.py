"""The `provtrack` command line."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, TypeVar

import typer
from rich.console import Console

from provtrack.cli_events import events_app
from provtrack.cli_policy import policy_app
from provtrack.settings import Settings

app = typer.Typer(help="provtrack: TMF641 service order tracking and provisioning.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")
catalog_app = typer.Typer(help="Provisioning catalog.", no_args_is_help=True)
app.add_typer(catalog_app, name="catalog")
app.add_typer(events_app, name="events")
app.add_typer(policy_app, name="policy")
console = Console(stderr=True)

DatabaseOption = Annotated[
    str | None,
    typer.Option(
        "--database",
        help="sqlite:///PATH or postgresql://USER@HOST:PORT/DB (env: PROVTRACK_DATABASE_URL; default sqlite:///./provtrack.db)",
        show_default=False,
    ),
]


CatalogOption = Annotated[
    str | None,
    typer.Option(
        "--catalog",
        help="provisioning catalog YAML (docs/catalog.md), or `demo` (env: PROVTRACK_CATALOG)",
        show_default=False,
    ),
]
T = TypeVar("T")


def _settings(**overrides: object) -> Settings:
    values = {k: v for k, v in overrides.items() if v is not None}
    return Settings(**values)  # type: ignore[arg-type]


@app.command()
def serve(  # noqa: PLR0917 - Typer maps each parameter to an option
    host: Annotated[
        str | None,
        typer.Option(
            help="address to listen on (env: PROVTRACK_HOST; default 127.0.0.1)", show_default=False
        ),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(help="port to listen on (env: PROVTRACK_PORT; default 8641)", show_default=False),
    ] = None,
    database: DatabaseOption = None,
    catalog: CatalogOption = None,
    demo: Annotated[
        bool,
        typer.Option(
            "--demo",
            help="demo mode: the shipped catalog, simulated downstream systems and a steady stream of orders",
        ),
    ] = False,
    worker: Annotated[
        bool | None,
        typer.Option(
            "--worker/--no-worker",
            help="run the job worker in this process (env: PROVTRACK_SERVE_WORKER; default on); "
            "--no-worker serves the API only, for deployments with separate `provtrack worker` processes",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Migrate the database and serve the TMF641 API (docs at /docs)."""
    import uvicorn

    from provtrack.bootstrap import build_app, configure_logging

    settings = _settings(host=host, port=port, database_url=database, catalog=catalog, serve_worker=worker)
    configure_logging(settings.log_level)
    if demo:
        settings = _start_demo(settings)
    application = _checked_catalog(
        lambda: build_app(settings, migrate=True, with_worker=settings.serve_worker)
    )
    console.print(
        f"provtrack serving on http://{settings.host}:{settings.port} "
        f"(API /tmf-api/serviceOrdering/v4, docs /docs) with {_redact(settings.database_url)}"
    )
    uvicorn.run(
        application,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=settings.access_log,
    )


@app.command()
def worker(database: DatabaseOption = None, catalog: CatalogOption = None) -> None:
    """Run a standalone worker: claims due jobs (dispatch, polling, deliveries, timers) until stopped."""
    import signal

    from provtrack.adapters.store.notify import start_job_listener
    from provtrack.bootstrap import build_store, build_worker, configure_logging

    settings = _settings(database_url=database, catalog=catalog)
    configure_logging(settings.log_level)
    store = build_store(settings, migrate=True)
    runner = _checked_catalog(lambda: build_worker(settings, store))
    start_job_listener(store.engine, store.jobs_committed, runner.stopping)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: runner.request_stop())
    console.print(f"provtrack worker {runner.owner} on {_redact(settings.database_url)}")
    try:
        runner.serve()
    finally:
        runner.stop()
        store.dispose()


@db_app.command("upgrade")
def db_upgrade(database: DatabaseOption = None) -> None:
    """Create or upgrade the schema to the newest version."""
    from provtrack.adapters.store.database import create_database_engine
    from provtrack.adapters.store.migrate import current_revisions, upgrade_database

    settings = _settings(database_url=database)
    engine = create_database_engine(settings.database_url)
    try:
        upgrade_database(engine)
        console.print(
            f"database {_redact(settings.database_url)} at revision {', '.join(current_revisions(engine))}"
        )
    finally:
        engine.dispose()


@catalog_app.command("check")
def catalog_check(file: Annotated[str, typer.Argument(help="catalog YAML file, or `demo`")]) -> None:
    """Validate a provisioning catalog; problems are listed as FILE:LINE: message."""
    from provtrack.adapters.catalog_file import load_catalog

    found = _checked_catalog(lambda: load_catalog(file))
    activities = sum(len(a) for spec in found.services.values() for a in spec.activities.values())
    console.print(
        f"{found.source}: ok: {len(found.systems)} systems, {len(found.services)} service specifications, "
        f"{activities} activities",
        soft_wrap=True,
    )


@app.command()
def simulate(
    *,
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8652,
    delay: Annotated[
        float, typer.Option(help="seconds until a resource order reaches its final state")
    ] = 2.0,
    failure_rate: Annotated[float, typer.Option(help="share of resource orders that fail")] = 0.0,
    hold_rate: Annotated[float, typer.Option(help="share held (truck roll) before completing")] = 0.0,
    instant: Annotated[
        bool, typer.Option(help="with --delay 0: the POST answer is already completed")
    ] = False,
    seed: Annotated[int | None, typer.Option(help="random seed, for repeatable runs")] = None,
) -> None:
    """Run simulated TMF652 resource ordering systems at http://HOST:PORT/<system>/tmf-api/resourceOrderingManagement/v4."""
    import uvicorn

    from provtrack.simulator.resource_ordering import Behaviour, ResourceOrderingSimulator

    behaviour = Behaviour(
        delay=delay, failure_rate=failure_rate, hold_rate=hold_rate, instant=instant, seed=seed
    )
    console.print(
        f"provtrack simulator on http://{host}:{port}/<system>/tmf-api/resourceOrderingManagement/v4"
    )
    uvicorn.run(ResourceOrderingSimulator(behaviour).app(), host=host, port=port, log_level="warning")


@app.command("demo")
def demo_feed(
    url: Annotated[str, typer.Option(help="the provtrack server to feed")] = "http://127.0.0.1:8641",
    every: Annotated[float, typer.Option(help="seconds between two orders")] = 3.0,
    count: Annotated[int | None, typer.Option(help="stop after this many orders")] = None,
) -> None:
    """Feed a running server a steady stream of realistic orders (FTTH, E-Line, SD-WAN, SIM, IPTV)."""
    import threading

    from provtrack.simulator.demo_orders import feed_orders

    console.print(f"feeding {url} an order every {every}s (Ctrl-C to stop)")
    try:
        sent = feed_orders(url, every=every, count=count, stop=threading.Event())
    except KeyboardInterrupt:
        return
    console.print(f"{sent} orders sent")


_DEMO_PARTS: list[object] = []


def _start_demo(settings: Settings) -> Settings:
    """Simulated systems and an order feed in background threads, for `serve --demo`."""
    import logging
    import threading

    from provtrack.simulator.demo_orders import feed_orders
    from provtrack.simulator.resource_ordering import Behaviour, ResourceOrderingSimulator
    from provtrack.simulator.serving import serving_in_thread

    simulator = ResourceOrderingSimulator(Behaviour(delay=4.0, failure_rate=0.05, hold_rate=0.05))
    serving = serving_in_thread(simulator.app(), host="127.0.0.1", port=settings.demo_simulator_port)
    base = serving.__enter__()
    _DEMO_PARTS.append(serving)  # the simulator lives as long as the process
    logging.getLogger("httpx").setLevel(logging.WARNING)
    own = f"http://{settings.host}:{settings.port}"
    feeder = threading.Thread(
        target=feed_orders,
        kwargs={"base_url": own, "every": 3.0, "count": None, "stop": threading.Event()},
        name="provtrack-demo-feed",
        daemon=True,
    )
    feeder.start()
    console.print(
        f"demo: simulated systems at {base}, a new order every 3 s; watch "
        f"{own}/tmf-api/serviceOrdering/v4/serviceOrder?fields=state,externalId,expectedCompletionDate"
    )
    return settings.model_copy(update={"catalog": settings.catalog or "demo", "simulator_url": base})


def _checked_catalog(build: Callable[[], T]) -> T:
    from provtrack.domain.catalog import InvalidCatalog

    try:
        return build()
    except InvalidCatalog as exc:
        console.print(f"[red]catalog refused[/red]\n{exc}", markup=True, highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def main() -> None:
    app()
