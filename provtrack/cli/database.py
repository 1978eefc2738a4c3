"""`provtrack db ...`: the database schema."""

from __future__ import annotations

import typer

from provtrack.cli.options import DatabaseOption, console, redact, settings_from

db_app = typer.Typer(help="Database schema.", no_args_is_help=True)


@db_app.command("upgrade")
def db_upgrade(database: DatabaseOption = None) -> None:
    """Create or upgrade the schema to the newest version."""
    from provtrack.adapters.store.database import create_database_engine
    from provtrack.adapters.store.migrate import current_revisions, upgrade_database

    settings = settings_from(database_url=database)
    engine = create_database_engine(settings.database_url)
    try:
        upgrade_database(engine)
        console.print(
            f"database {redact(settings.database_url)} at revision {', '.join(current_revisions(engine))}"
        )
    finally:
        engine.dispose()
