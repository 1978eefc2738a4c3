"""`provtrack catalog ...`: the provisioning catalog."""

from __future__ import annotations

from typing import Annotated

import typer

from provtrack.cli.options import checked, console

catalog_app = typer.Typer(help="Provisioning catalog.", no_args_is_help=True)


@catalog_app.command("check")
def catalog_check(file: Annotated[str, typer.Argument(help="catalog YAML file, or `demo`")]) -> None:
    """Validate a provisioning catalog; problems are listed as FILE:LINE: message."""
    from provtrack.adapters.catalog_file import load_catalog

    found = checked(lambda: load_catalog(file))
    activities = sum(len(a) for spec in found.services.values() for a in spec.activities.values())
    console.print(
        f"{found.source}: ok: {len(found.systems)} systems, {len(found.services)} service specifications, "
        f"{activities} activities"
    )
