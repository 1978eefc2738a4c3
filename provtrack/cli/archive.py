"""`provtrack archive`: finished orders out of the hot tables and the default lists."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated

import typer

from provtrack.cli.options import DatabaseOption, checked, console, settings_from, stderr_console

_AGE = re.compile(r"^\s*(\d+)\s*([dhm])\s*$")
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}


def parse_age(text: str) -> timedelta:
    """`90d`, `36h` or `45m`: how long ago an order must have finished to be archived."""
    found = _AGE.match(text)
    if found is None:
        raise typer.BadParameter(f"{text!r} is not an age: give days, hours or minutes, e.g. 90d, 36h, 45m")
    return timedelta(**{_UNITS[found.group(2)]: int(found.group(1))})


def archive(
    older_than: Annotated[
        str,
        typer.Option(
            "--older-than",
            help="archive orders completed, failed or cancelled longer ago than this (90d, 36h, 45m)",
        ),
    ],
    database: DatabaseOption = None,
    batch: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="orders moved per transaction (env: PROVTRACK_ARCHIVE_BATCH; default 500)",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Move finished orders out of the hot tables and the default lists; GET by id and `asOf` still
    read them. Safe to run again, or while provtrack runs: each batch is one transaction."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from provtrack.adapters.clock import utc_now
    from provtrack.bootstrap import Assembly
    from provtrack.services.archive import archivable_orders, archive_finished_orders

    age = parse_age(older_than)
    settings = settings_from(database_url=database, archive_batch=batch)
    store = checked(lambda: Assembly.build(settings, migrate=True)).store
    try:
        now = utc_now()
        total = archivable_orders(store, older_than=age, now=now)
        columns = (TextColumn("archiving"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
        with Progress(*columns, console=stderr_console(), transient=True) as progress:
            task = progress.add_task("archive", total=total)
            moved = archive_finished_orders(
                store,
                older_than=age,
                now=now,
                batch=settings.archive_batch,
                moved=lambda count: progress.advance(task, count),
            )
        console.print(f"archived {moved} orders finished more than {older_than.strip()} ago", highlight=False)
    finally:
        store.dispose()
