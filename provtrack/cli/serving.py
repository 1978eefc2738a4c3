"""`provtrack serve` and `provtrack worker`: the two process roles, assembled the same way."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from provtrack.cli.options import CatalogOption, DatabaseOption, checked, console, redact, settings_from
from provtrack.settings import Settings

if TYPE_CHECKING:
    from provtrack.bootstrap import Assembly


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

    from provtrack.bootstrap import Assembly, configure_logging

    settings = settings_from(
        host=host, port=port, database_url=database, catalog=catalog, serve_worker=worker
    )
    configure_logging(settings.log_level, settings.log_format)
    assembly = checked(lambda: Assembly.build(_demo_settings(settings) if demo else settings, migrate=True))
    if demo:
        configure_logging(settings.log_level, settings.log_format)  # the simulator's uvicorn set its own
        _start_demo(assembly)
    application = assembly.app(with_worker=settings.serve_worker)
    console.print(
        f"provtrack serving on http://{settings.host}:{settings.port} "
        f"(API /tmf-api/serviceOrdering/v4, docs /docs) with {redact(settings.database_url)}"
    )
    if not demo:
        console.print(
            "every route but /provtrack/v1/health needs a bearer token: "
            "`provtrack token create --client NAME --scope admin` makes one (docs/security.md)"
        )
    uvicorn.run(
        application,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=False,  # the API logs its requests itself, with their ids (settings.access_log)
        log_config=None,  # uvicorn's lines go through configure_logging's handler, in its format
    )


def worker(database: DatabaseOption = None, catalog: CatalogOption = None) -> None:
    """Run a standalone worker: claims due jobs (dispatch, polling, deliveries, timers) until stopped."""
    import signal
    import threading

    from provtrack.bootstrap import Assembly, configure_logging

    settings = settings_from(database_url=database, catalog=catalog)
    configure_logging(settings.log_level, settings.log_format)
    assembly = checked(lambda: Assembly.build(settings, migrate=True))
    stop = threading.Event()  # a signal asks; the worker then finishes its running jobs
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        with assembly.running(with_worker=True) as runner:
            assert runner is not None
            console.print(f"provtrack worker {runner.owner} on {redact(settings.database_url)}")
            while not stop.wait(1.0):
                pass
    finally:
        assembly.store.dispose()


_DEMO_PARTS: list[object] = []
DEMO_KEY = "demo (serve --demo)"


def _demo_settings(settings: Settings) -> Settings:
    """Simulated systems in a background thread, for `serve --demo`; the settings pointing at them."""
    from provtrack.simulator.resource_ordering import Behaviour, ResourceOrderingSimulator
    from provtrack.simulator.serving import serving_in_thread

    simulator = ResourceOrderingSimulator(Behaviour(delay=4.0, failure_rate=0.05, hold_rate=0.05))
    serving = serving_in_thread(simulator.app(), host="127.0.0.1", port=settings.demo_simulator_port)
    base = serving.__enter__()
    _DEMO_PARTS.append(serving)  # the simulator lives as long as the process
    return settings.model_copy(update={"catalog": settings.catalog or "demo", "simulator_url": base})


def _start_demo(assembly: Assembly) -> None:
    """A demo API key (the one of the previous demo revoked) and an order feed that uses it."""
    import logging
    import threading
    from datetime import UTC, datetime

    from provtrack.services import access
    from provtrack.simulator.demo_orders import feed_orders

    settings, now = assembly.settings, datetime.now(UTC)
    access.revoke_keys_named(assembly.store, DEMO_KEY, now=now)
    _, token = access.create_api_key(assembly.store, client="demo", scopes="admin", name=DEMO_KEY, now=now)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    own = f"http://{settings.host}:{settings.port}"
    feeder = threading.Thread(
        target=feed_orders,
        kwargs={"base_url": own, "every": 3.0, "count": None, "stop": threading.Event(), "token": token},
        name="provtrack-demo-feed",
        daemon=True,
    )
    feeder.start()
    console.print(
        f"demo: simulated systems at {settings.simulator_url}, a new order every 3 s. Demo API key (admin; "
        f"a new one at each start):\n\n  export PROVTRACK_TOKEN={token}\n\nthen watch\n\n  curl -H "
        f'"Authorization: Bearer $PROVTRACK_TOKEN" '
        f"'{own}/tmf-api/serviceOrdering/v4/serviceOrder?fields=state,externalId,expectedCompletionDate'\n",
        highlight=False,
    )
