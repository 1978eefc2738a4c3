"""What every command shares: its options, the settings they make, and how errors are printed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, TypeVar

import typer
from rich.console import Console

from provtrack.settings import Settings

# Messages go to stderr, results to stdout; neither wraps: a pipe or a log gets whole lines.
console = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)
T = TypeVar("T")

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


def redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
