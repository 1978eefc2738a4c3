"""What every command shares: its options, the settings they make, and how errors are printed."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any, TextIO, TypeVar

import orjson
import typer
from rich.console import Console
from rich.table import Table

from provtrack.settings import Settings

T = TypeVar("T")
UNBOUNDED = 1_000_000  # the width of a table written to a pipe or a file: never cut, never wrapped


def _console(stream: TextIO) -> Console:
    """A console on the stream as it is now (a terminal and its width, or not): made per call, so a
    command run in-process by a test sees the stream and COLUMNS the test set."""
    found = Console(file=stream, soft_wrap=True)
    return found if found.is_terminal else Console(file=stream, soft_wrap=True, width=UNBOUNDED)


class _Stream:
    """`console` (stderr, messages) and `out` (stdout, results), resolved when printed to."""

    def __init__(self, name: str) -> None:
        self.name = name

    def print(self, *objects: Any, **options: Any) -> None:
        _console(getattr(sys, self.name)).print(*objects, **options)


def stderr_console() -> Console:
    """The stderr console itself, for progress bars (they redraw on a terminal only)."""
    return _console(sys.stderr)


console = _Stream("stderr")
out = _Stream("stdout")
JsonOption = Annotated[bool, typer.Option("--json", help="one JSON object per line, for scripts")]


def print_rows(
    columns: Mapping[str, str], rows: Sequence[Mapping[str, Any]], *, keys: Sequence[str], as_json: bool
) -> None:
    """Rows as a table (`columns`: field -> heading), or as JSON lines. The `keys` columns (ids an
    operator copies into the next command) are never cut: other columns fold around them."""
    if as_json:
        for row in rows:
            sys.stdout.write(orjson.dumps(dict(row)).decode() + "\n")
        return
    table = Table(*[], show_lines=False)
    for field, heading in columns.items():
        if field in keys:
            widest = max((len(str(r.get(field) or "")) for r in rows), default=len(heading))
            table.add_column(heading, no_wrap=True, min_width=max(widest, len(heading)))
        else:
            table.add_column(heading, overflow="fold")
    for row in rows:
        table.add_row(*(_cell(row.get(field)) for field in columns))
    out.print(table)


def _cell(value: Any) -> str:
    return "" if value is None else str(value)


DatabaseOption = Annotated[
    str | None,
    typer.Option(
        "--database",
        help="sqlite:///PATH or postgresql://USER@HOST:PORT/DB (env: PROVTRACK_DATABASE_URL; default sqlite:///./provtrack.db)",
        show_default=False,
    ),
]
CatalogOption = Annotated[
    str | None,
    typer.Option(
        "--catalog",
        help="provisioning catalog YAML (docs/catalog.md), or `demo` (env: PROVTRACK_CATALOG)",
        show_default=False,
    ),
]


def settings_from(**overrides: object) -> Settings:
    """The settings of a command: its options where given, else PROVTRACK_* variables, else defaults."""
    values = {k: v for k, v in overrides.items() if v is not None}
    return Settings(**values)  # type: ignore[arg-type]


def checked(build: Callable[[], T]) -> T:
    """Build something that reads the catalog or the policy; a broken file ends the command with its
    problems listed as FILE: line N: message."""
    from provtrack.domain.catalog import InvalidCatalog
    from provtrack.domain.policy import InvalidPolicy

    try:
        return build()
    except InvalidCatalog as exc:
        console.print(f"[red]catalog refused[/red]\n{exc}", markup=True, highlight=False)
        raise typer.Exit(2) from None
    except InvalidPolicy as exc:
        console.print(f"[red]policy refused[/red]\n{exc}", markup=True, highlight=False)
        raise typer.Exit(1) from None


def require_free_port(host: str, port: int, what: str) -> None:
    """End the command before it says anything else when `host:port` cannot be listened on."""
    import socket

    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
            probe.bind((host, port))
    except OSError as exc:
        console.print(
            f"cannot listen on {host}:{port} for {what}: {exc.strerror or exc}; "
            "is another provtrack (or another program) using it? Stop it or choose another port.",
            markup=False,
            highlight=False,
        )
        raise typer.Exit(1) from None


def redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
