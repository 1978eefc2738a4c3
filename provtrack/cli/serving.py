"""`provtrack serve` and `provtrack worker`: the two process roles, assembled the same way."""

from __future__ import annotations

from typing import Annotated

import typer

from provtrack.cli.options import CatalogOption, DatabaseOption, checked, console, redact, settings_from
from provtrack.settings import Settings


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
    import gc

    import uvicorn

    from provtrack.bootstrap import Assembly, configure_logging

    settings = settings_from(
        host=host, port=port, database_url=database, catalog=catalog, serve_worker=worker
    )
    configure_logging(settings.log_level)
    if demo:
        settings = _start_demo(settings)
    assembly = checked(lambda: Assembly.build(settings, migrate=True))
    application = assembly.app(with_worker=settings.serve_worker)
    console.print(
        f"provtrack serving on http://{settings.host}:{settings.port} "
        f"(API /tmf-api/serviceOrdering/v4, docs /docs) with {redact(settings.database_url)}"
    )
    console.print(f"dashboard: http://{settings.host}:{settings.port}/")
    # What was built so far lives as long as the process: out of the collector's way, a full
    # collection walks only what requests create (it put tens of ms into the dashboard's p99).
    gc.collect()
    gc.freeze()
    uvicorn.run(
        application,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=settings.access_log,
    )


def worker(database: DatabaseOption = None, catalog: CatalogOption = None) -> None:
    """Run a standalone worker: claims due jobs (dispatch, polling, deliveries, timers) until stopped."""
    import signal
    import threading

    from provtrack.bootstrap import Assembly, configure_logging

    settings = settings_from(database_url=database, catalog=catalog)
    configure_logging(settings.log_level)
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


def _start_demo(settings: Settings) -> Settings:
    """Simulated systems and partners, an order feed and a work force in background threads, for
    `serve --demo`."""
    import logging
    import os
    import threading

    from provtrack.simulator.demo_orders import CustomerOrders, feed_orders
    from provtrack.simulator.partner_ordering import PartnerBehaviour, PartnerOrderingSimulator
    from provtrack.simulator.product_ordering import BASE, MOUNT, ProductOrderingSimulator
    from provtrack.simulator.resource_ordering import Behaviour, ResourceOrderingSimulator
    from provtrack.simulator.serving import serving_in_thread
    from provtrack.simulator.work_force import run_work_force

    simulator = ResourceOrderingSimulator(Behaviour(delay=4.0, failure_rate=0.05, hold_rate=0.05))
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
    logging.getLogger("httpx").setLevel(logging.WARNING)
    own = f"http://{settings.host}:{settings.port}"
    product_ordering = f"{base}{MOUNT}{BASE}"
    feed = {
        "base_url": own,
        "every": 3.0,
        "count": None,
        "customer_orders": CustomerOrders(product_ordering, cancel_share=0.1),
    }
    for name, target, kwargs in (
        ("provtrack-demo-feed", feed_orders, feed),
        ("provtrack-demo-work-force", run_work_force, {"base_url": own}),
    ):
        threading.Thread(
            target=target, kwargs={**kwargs, "stop": threading.Event()}, name=name, daemon=True
        ).start()
    console.print(
        f"demo: simulated systems at {base}, partners at {partner_base}, a new order every 3 s (one customer "
        f"order in ten cancelled) and a work force working the queues; watch "
        f"{own}/provtrack/v1/task?state=queued,assigned,inProgress and "
        f"{own}/tmf-api/serviceOrdering/v4/serviceOrder?fields=state,externalId,expectedCompletionDate"
    )
    return settings.model_copy(
        update={
            "catalog": settings.catalog or "demo",
            "simulator_url": base,
            "partner_simulator_url": partner_base,
            "product_ordering_url": settings.product_ordering_url or product_ordering,
            "policy": settings.policy or "demo",
        }
    )
