"""The `provtrack` command line: one module per command group, each building its settings and
store through the one assembly (`bootstrap.Assembly`)."""

from __future__ import annotations

import typer

from provtrack.cli.archive import archive
from provtrack.cli.catalog import catalog_app
from provtrack.cli.database import db_app
from provtrack.cli.events import events_app
from provtrack.cli.policy import policy_app
from provtrack.cli.serving import serve, worker
from provtrack.cli.simulation import demo_feed, simulate
from provtrack.cli.tokens import token_app

app = typer.Typer(help="provtrack: TMF641 service order tracking and provisioning.", no_args_is_help=True)
app.command()(serve)
app.command()(worker)
app.command()(archive)
app.command()(simulate)
app.command("demo")(demo_feed)
app.add_typer(db_app, name="db")
app.add_typer(catalog_app, name="catalog")
app.add_typer(events_app, name="events")
app.add_typer(policy_app, name="policy")
app.add_typer(token_app, name="token")


def main() -> None:
    app()
