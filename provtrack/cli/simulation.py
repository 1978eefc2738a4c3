"""`provtrack simulate` and `provtrack demo`: simulated downstream systems, and a feed of demo orders."""

from __future__ import annotations

from typing import Annotated

import typer

from provtrack.cli.options import console, require_free_port


def simulate(
    *,
    mode: Annotated[
        str,
        typer.Option(help="`resource`: TMF652 systems; `partner`: TMF641 partners (docs/coordination.md)"),
    ] = "resource",
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[
        int | None, typer.Option(help="port to listen on (8652 for systems, 8653 for partners)")
    ] = None,
    delay: Annotated[
        float, typer.Option(help="seconds until a resource order reaches its final state")
    ] = 2.0,
    failure_rate: Annotated[float, typer.Option(help="share of resource orders that fail")] = 0.0,
    hold_rate: Annotated[float, typer.Option(help="share held (truck roll) before completing")] = 0.0,
    instant: Annotated[
        bool, typer.Option(help="with --delay 0: the POST answer is already completed")
    ] = False,
    seed: Annotated[int | None, typer.Option(help="random seed, for repeatable runs")] = None,
    day_seconds: Annotated[
        float, typer.Option(help="partner mode: real seconds per simulated day (time compression)")
    ] = 5.0,
    product_orders: Annotated[
        bool,
        typer.Option(
            "--product-orders",
            help="also a TMF622 product ordering API (the customer order system) at /productOrdering/...; "
            "point PROVTRACK_PRODUCT_ORDERING_URL at it",
        ),
    ] = False,
) -> None:
    """Run simulated TMF652 systems at http://HOST:PORT/<system>/tmf-api/resourceOrderingManagement/v4,
    or with --mode partner simulated partners at http://HOST:PORT/<partner>/tmf-api/serviceOrdering/v4."""
    import uvicorn

    if mode == "partner":
        _simulate_partners(host, port or 8653, day_seconds=day_seconds, seed=seed)
        return
    if mode != "resource":
        raise typer.BadParameter("--mode is `resource` or `partner`")
    port = port or 8652
    from provtrack.simulator.product_ordering import BASE, MOUNT, ProductOrderingSimulator
    from provtrack.simulator.resource_ordering import Behaviour, ResourceOrderingSimulator

    behaviour = Behaviour(
        delay=delay, failure_rate=failure_rate, hold_rate=hold_rate, instant=instant, seed=seed
    )
    application = ResourceOrderingSimulator(behaviour).app()
    require_free_port(host, port, "the simulator (--port)")
    console.print(
        f"provtrack simulator on http://{host}:{port}/<system>/tmf-api/resourceOrderingManagement/v4"
    )
    if product_orders:
        application.mount(MOUNT, ProductOrderingSimulator().app())
        console.print(f"product ordering (TMF622) on http://{host}:{port}{MOUNT}{BASE}")
    uvicorn.run(application, host=host, port=port, log_level="warning")


def _simulate_partners(host: str, port: int, *, day_seconds: float, seed: int | None) -> None:
    import uvicorn

    from provtrack.simulator.partner_ordering import PartnerBehaviour, PartnerOrderingSimulator

    partners = PartnerOrderingSimulator(PartnerBehaviour(day_seconds=day_seconds, seed=seed))
    require_free_port(host, port, "the partner simulator (--port)")
    console.print(f"provtrack partner simulator on http://{host}:{port}/<partner>/tmf-api/serviceOrdering/v4")
    uvicorn.run(partners.app(), host=host, port=port, log_level="warning")


def demo_feed(  # noqa: PLR0917 - Typer maps each parameter to an option
    url: Annotated[str, typer.Option(help="the provtrack server to feed")] = "http://127.0.0.1:8641",
    every: Annotated[float, typer.Option(help="seconds between two orders")] = 3.0,
    count: Annotated[int | None, typer.Option(help="stop after this many orders")] = None,
    wait: Annotated[float, typer.Option(help="seconds to wait for the server to answer first")] = 10.0,
    product_ordering_url: Annotated[
        str | None,
        typer.Option(
            help="a TMF622 API (`simulate --product-orders`): each order comes from a product order there"
        ),
    ] = None,
    cancel_share: Annotated[
        float, typer.Option(help="with --product-ordering-url: share of customer orders cancelled soon after")
    ] = 0.1,
    token: Annotated[
        str | None,
        typer.Option(help="bearer token with orders:write (env: PROVTRACK_TOKEN)", envvar="PROVTRACK_TOKEN"),
    ] = None,
) -> None:
    """Feed a running server a steady stream of realistic orders (FTTH, E-Line, SD-WAN, SIM, IPTV).

    Ends with the orders accepted and refused; exit status 1 if any was refused or no server answers.
    """
    import threading

    from provtrack.simulator.demo_orders import CustomerOrders, ServerUnreachable, feed_orders

    customer_orders = CustomerOrders(product_ordering_url, cancel_share) if product_ordering_url else None
    console.print(f"feeding {url} an order every {every:g} s (Ctrl-C to stop)", highlight=False)
    try:
        fed = feed_orders(
            url,
            every=every,
            count=count,
            stop=threading.Event(),
            wait=wait,
            customer_orders=customer_orders,
            token=token,
        )
    except KeyboardInterrupt:
        return
    except ServerUnreachable as exc:
        console.print(f"[red]demo stopped[/red]: {exc}", markup=True, highlight=False)
        raise typer.Exit(1) from None
    console.print(f"{fed.accepted} orders accepted, {fed.refused} refused", highlight=False)
    if fed.refused:
        console.print(f"last refusal: {fed.last_refusal}", markup=False, highlight=False)
        raise typer.Exit(1)
