"""The `provtrack` command line."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from provtrack.settings import Settings

app = typer.Typer(help="provtrack: TMF641 service order tracking and provisioning.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")
console = Console(stderr=True)

DatabaseOption = Annotated[
    str | None,
    typer.Option(
        "--database",
        help="sqlite:///PATH or postgresql://USER@HOST:PORT/DB [env: PROVTRACK_DATABASE_URL; default sqlite:///./provtrack.db]",
        show_default=False,
    ),
]


def _settings(**overrides: object) -> Settings:
    values = {k: v for k, v in overrides.items() if v is not None}
    return Settings(**values)  # type: ignore[arg-type]


@app.command()
def serve(
    host: Annotated[
        str | None,
        typer.Option(
            help="address to listen on [env: PROVTRACK_HOST; default 127.0.0.1]", show_default=False
        ),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(help="port to listen on [env: PROVTRACK_PORT; default 8641]", show_default=False),
    ] = None,
    database: DatabaseOption = None,
) -> None:
    """Migrate the database and serve the TMF641 API (docs at /docs)."""
    import uvicorn

    from provtrack.bootstrap import build_app, configure_logging

    settings = _settings(host=host, port=port, database_url=database)
    configure_logging(settings.log_level)
    application = build_app(settings, migrate=True)
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
def worker(database: DatabaseOption = None) -> None:
    """Run a standalone worker: claims due jobs (dispatch, polling, deliveries, timers) until stopped."""
    import signal

    from provtrack.adapters.store.notify import start_job_listener
    from provtrack.bootstrap import build_store, build_worker, configure_logging

    settings = _settings(database_url=database)
    configure_logging(settings.log_level)
    store = build_store(settings, migrate=True)
    runner = build_worker(settings, store)
    start_job_listener(store.engine, store.jobs_committed, runner.stopping)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: runner.stop())
    console.print(f"provtrack worker {runner.owner} on {_redact(settings.database_url)}")
    try:
        runner.serve()
    finally:
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


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def main() -> None:
    app()
