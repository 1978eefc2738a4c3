"""`provtrack serve` and `provtrack worker`: the two process roles, assembled the same way."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer

from provtrack.cli.options import (
    CatalogOption,
    DatabaseOption,
    checked,
    console,
    redact,
    require_free_port,
    settings_from,
)
from provtrack.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from provtrack.bootstrap import Assembly
    from provtrack.simulator.demo_orders import CustomerOrders

BASE_PATH = "/tmf-api/serviceOrdering/v4"


HostOption = Annotated[
    str | None,
    typer.Option(help="address to listen on (env: PROVTRACK_HOST; default 127.0.0.1)", show_default=False),
]
PortOption = Annotated[
    int | None,
    typer.Option(help="port to listen on (env: PROVTRACK_PORT; default 8641)", show_default=False),
]
DemoOption = Annotated[
    bool,
    typer.Option(
        "--demo",
        help="demo mode: the shipped catalog, simulated downstream systems and a steady stream of orders",
    ),
]
ServeWorkerOption = Annotated[
    bool | None,
    typer.Option(
        "--worker/--no-worker",
        help="run the job worker in this process (env: PROVTRACK_SERVE_WORKER; default on); "
        "--no-worker serves the API only, for deployments with separate `provtrack worker` processes",
        show_default=False,
    ),
]
ApiProcessesOption = Annotated[
    int | None,
    typer.Option(
        "--workers",
        min=1,
        help="API processes sharing the port (env: PROVTRACK_API_PROCESSES; default 1); each runs "
        "a job worker too unless --no-worker. For PostgreSQL: on SQLite they queue on its one writer",
        show_default=False,
    ),
]
LiveOption = Annotated[
    bool | None,
    typer.Option(
        "--live/--no-live",
        help="show orders per state and each state change as they happen (a panel on a terminal, "
        "lines elsewhere); default on with --demo",
        show_default=False,
    ),
]


def serve(  # noqa: PLR0917 - Typer maps each parameter to an option
    host: HostOption = None,
    port: PortOption = None,
    database: DatabaseOption = None,
    catalog: CatalogOption = None,
    demo: DemoOption = False,
    worker: ServeWorkerOption = None,
    workers: ApiProcessesOption = None,
    live: LiveOption = None,
) -> None:
    """Migrate the database and serve the TMF641 API (docs at /docs)."""
    from provtrack.bootstrap import Assembly, configure_logging

    settings = settings_from(
        host=host,
        port=port,
        database_url=database,
        catalog=catalog,
        serve_worker=worker,
        api_processes=workers,
    )
    configure_logging(settings.log_level, settings.log_format)
    require_free_port(settings.host, settings.port, "the API (--port)")
    if demo:
        require_free_port("127.0.0.1", settings.demo_simulator_port, "the demo's simulated systems")
        require_free_port("127.0.0.1", settings.demo_partner_port, "the demo's simulated partners")
        settings = _start_demo_systems(settings)
        configure_logging(settings.log_level, settings.log_format)  # the simulators' uvicorn set its own
    else:
        say_if_no_catalog(settings)
    assembly = checked(lambda: Assembly.build(settings, migrate=True))
    token = _start_demo_clients(assembly) if demo else None
    for line in banner(settings, demo_token=token):
        console.print(line, markup=False, highlight=False)
    _run_api(assembly, settings, live=demo if live is None else live)


def _run_api(assembly: Assembly, settings: Settings, *, live: bool) -> None:
    """Serve until stopped: uvicorn's API processes, or this one (with its worker unless told not to)."""
    import gc

    import uvicorn

    if settings.api_processes > 1:
        # uvicorn starts the API processes itself; each builds its own assembly from the PROVTRACK_*
        # variables (this one migrated and checked the catalog and policy) and serves on the one port.
        export_settings(settings)
        with _live_view(assembly.store.engine, settings, on=live):
            uvicorn.run(
                "provtrack.bootstrap:app_from_environment",
                factory=True,
                workers=settings.api_processes,
                host=settings.host,
                port=settings.port,
                log_level=settings.log_level,
                access_log=False,  # each API process logs its requests itself (settings.access_log)
                log_config=None,
            )
        assembly.store.dispose()
        return
    application = assembly.app(with_worker=settings.serve_worker)
    # What was built so far lives as long as the process: out of the collector's way, a full
    # collection walks only what requests create (it put tens of ms into the dashboard's p99).
    gc.collect()
    gc.freeze()
    with _live_view(assembly.store.engine, settings, on=live):
        uvicorn.run(
            application,
            host=settings.host,
            port=settings.port,
            log_level=settings.log_level,
            access_log=False,  # the API logs its requests itself, with their ids (settings.access_log)
            log_config=None,  # uvicorn's lines go through configure_logging's handler, in its format
        )


def export_settings(settings: Settings) -> None:
    """Put the settings this command was given (options, demo choices) where the processes it starts
    read them: PROVTRACK_* variables of this process, which they inherit."""
    import os

    for name in settings.model_fields_set:
        value = getattr(settings, name)
        if value is None:
            continue
        text = str(value).lower() if isinstance(value, bool) else str(value)
        os.environ[f"PROVTRACK_{name.upper()}"] = text


def banner(settings: Settings, *, demo_token: str | None = None) -> list[str]:
    """What `serve` says it serves: the database, the URLs worth opening, each whole on a line, and
    how to call them (the demo's API key, or how to make one)."""
    base = settings.public_url or f"http://{_reachable(settings.host)}:{settings.port}"
    orders = f"{base}{BASE_PATH}/serviceOrder"
    lines = [
        f"provtrack serving on {base} with {redact(settings.database_url)}",
        f"  dashboard     {base}/  (sign in with an API key)",
        f"  API docs      {base}/docs  (ReDoc: {base}/redoc)",
        f"  TMF641 API    {orders}",
        f"  watch orders  {orders}?fields=state,externalId,expectedCompletionDate",
        f"  task queues   {base}/provtrack/v1/task?state=queued,assigned,inProgress",
    ]
    if demo_token is None:
        return [
            *lines,
            "every route but /provtrack/v1/health needs a bearer token: "
            "`provtrack token create --client NAME --scope admin` makes one (docs/security.md)",
        ]
    return [
        *lines,
        "demo API key (admin; a new one at each start, the previous one revoked):",
        f"  export PROVTRACK_TOKEN={demo_token}",
        '  then: curl -H "Authorization: Bearer $PROVTRACK_TOKEN" <one of the URLs above>',
    ]


def say_if_no_catalog(settings: Settings) -> None:
    """Without a catalog nothing can be planned: say so first, and what becomes of orders."""
    if settings.catalog:
        return
    if settings.accept_orders_without_catalog:
        consequence = "it accepts orders and leaves them acknowledged until it runs with one"
    else:
        consequence = "so it refuses them (503 NO_CATALOG)"
    console.print(
        f"[bold red]no provisioning catalog[/bold red]: provtrack cannot plan orders, {consequence}; "
        "give one with --catalog FILE, PROVTRACK_CATALOG or --demo",
        markup=True,
        highlight=False,
    )


def _reachable(host: str) -> str:
    """An address to put in a URL: a wildcard listener is reached on loopback from this machine."""
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host


@contextmanager
def _live_view(engine: Engine, settings: Settings, *, on: bool) -> Iterator[None]:
    if not on:
        yield
        return
    from provtrack.cli.live_view import LiveView

    with LiveView(engine, summary_every=settings.live_summary_seconds).running():
        yield


def worker(database: DatabaseOption = None, catalog: CatalogOption = None) -> None:
    """Run a standalone worker: claims due jobs (dispatch, polling, deliveries, timers) until stopped."""
    import signal
    import threading

    from provtrack.bootstrap import Assembly, configure_logging

    settings = settings_from(database_url=database, catalog=catalog)
    configure_logging(settings.log_level, settings.log_format)
    say_if_no_catalog(settings)
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


def _start_demo_systems(settings: Settings) -> Settings:
    """Simulated systems and partners in background threads, for `serve --demo`; the settings
    pointing at them."""
    import os

    from provtrack.simulator.partner_ordering import PartnerBehaviour, PartnerOrderingSimulator
    from provtrack.simulator.product_ordering import BASE, MOUNT, ProductOrderingSimulator
    from provtrack.simulator.resource_ordering import Behaviour, ResourceOrderingSimulator
    from provtrack.simulator.serving import serving_in_thread

    behaviour = Behaviour(delay=settings.demo_system_delay_seconds, failure_rate=0.05, hold_rate=0.05)
    simulator = ResourceOrderingSimulator(behaviour)
    application = simulator.app()
    application.mount(MOUNT, ProductOrderingSimulator().app())  # the customer order system (TMF622)
    serving = serving_in_thread(application, host="127.0.0.1", port=settings.demo_simulator_port)
    base = serving.__enter__()
    _DEMO_PARTS.append(serving)  # the simulators live as long as the process
    # A day of a partner's work is 4 s: the ONT ships in about 8 s, the off-net access in about 40 s.
    os.environ.setdefault("PROVTRACK_DEMO_WHOLESALE_TOKEN", "demo-token")  # the demo catalog's reference
    partners = PartnerOrderingSimulator(PartnerBehaviour(day_seconds=4.0, hold_rate=0.3, jeopardy_rate=0.3))
    partner_serving = serving_in_thread(partners.app(), host="127.0.0.1", port=settings.demo_partner_port)
    partner_base = partner_serving.__enter__()
    _DEMO_PARTS.append(partner_serving)
    return settings.model_copy(
        update={
            "catalog": settings.catalog or "demo",
            "simulator_url": base,
            "partner_simulator_url": partner_base,
            "product_ordering_url": settings.product_ordering_url or f"{base}{MOUNT}{BASE}",
            "policy": settings.policy or "demo",
        }
    )


def _start_demo_clients(assembly: Assembly) -> str:
    """A demo API key (the one of the previous demo revoked), and an order feed and a work force in
    background threads that use it; the key, for the banner."""
    import logging
    import threading
    from datetime import UTC, datetime

    from provtrack.services import access
    from provtrack.simulator.demo_orders import CustomerOrders

    settings, now = assembly.settings, datetime.now(UTC)
    access.revoke_keys_named(assembly.store, DEMO_KEY, now=now)
    _, token = access.create_api_key(assembly.store, client="demo", scopes="admin", name=DEMO_KEY, now=now)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    own = f"http://{settings.host}:{settings.port}"
    every = settings.demo_order_every_seconds
    assert settings.product_ordering_url is not None  # _start_demo_systems set it
    customer_orders = CustomerOrders(settings.product_ordering_url, cancel_share=0.1)
    for name, target, args in (
        ("provtrack-demo-feed", _feed, (own, every, customer_orders, token)),
        ("provtrack-demo-work-force", _work, (own, token)),
    ):
        threading.Thread(target=target, args=args, name=name, daemon=True).start()
    console.print(
        f"demo: simulated systems at {settings.simulator_url}, partners at {settings.partner_simulator_url}, "
        f"a new order every {every:g} s (one customer order in ten cancelled) and a work force working "
        "the queues",
        highlight=False,
    )
    return token


def _feed(base_url: str, every: float, customer_orders: CustomerOrders, token: str) -> None:
    """The demo's order feed, beside the server in this process, until the process ends."""
    import threading

    import structlog

    from provtrack.simulator.demo_orders import ServerUnreachable, feed_orders

    stop = threading.Event()
    try:
        feed_orders(
            base_url,
            every=every,
            count=None,
            stop=stop,
            wait=60.0,
            customer_orders=customer_orders,
            token=token,
        )
    except ServerUnreachable as exc:
        structlog.get_logger("provtrack.demo").error("demo order feed stopped", reason=str(exc))


def _work(base_url: str, token: str) -> None:
    """The demo's simulated work force, working the task queues until the process ends."""
    import threading

    from provtrack.simulator.work_force import run_work_force

    run_work_force(base_url=base_url, stop=threading.Event(), token=token)
