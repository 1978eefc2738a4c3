"""`provtrack simulate` and `provtrack demo`: simulated downstream systems, and a feed of demo orders."""

from __future__ import annotations

from typing import Annotated

import typer

from provtrack.cli.options import console


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


def demo_feed(
    url: Annotated[str, typer.Option(help="the provtrack server to feed")] = "http://127.0.0.1:8641",
    every: Annotated[float, typer.Option(help="seconds between two orders")] = 3.0,
    count: Annotated[int | None, typer.Option(help="stop after this many orders")] = None,
    token: Annotated[
        str | None,
        typer.Option(help="bearer token with orders:write (env: PROVTRACK_TOKEN)", envvar="PROVTRACK_TOKEN"),
    ] = None,
) -> None:
    """Feed a running server a steady stream of realistic orders (FTTH, E-Line, SD-WAN, SIM, IPTV)."""
    import threading

    from provtrack.simulator.demo_orders import feed_orders

    console.print(f"feeding {url} an order every {every}s (Ctrl-C to stop)")
    try:
        sent = feed_orders(url, every=every, count=count, stop=threading.Event(), token=token)
    except KeyboardInterrupt:
        return
    console.print(f"{sent} orders sent")
