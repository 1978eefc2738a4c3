"""`provtrack demo` counts what the server accepted, fails when it refused, and stops with a clear
error after a bounded wait when no provtrack answers."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi import FastAPI
from typer.testing import CliRunner

from provtrack.bootstrap import Assembly
from provtrack.cli import app
from provtrack.services import access
from provtrack.settings import Settings
from provtrack.simulator.serving import serving_in_thread
from tests.integration.receiver import free_port


@contextmanager
def _serving(tmp_path: Path, catalog: str | None) -> Iterator[str]:
    """provtrack with real token checks; the feed's key (orders:write) is in PROVTRACK_TOKEN."""
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'p.db'}", catalog=catalog)
    assembly = Assembly.build(settings, migrate=True)
    _, token = access.create_api_key(
        assembly.store, client="feed", scopes="orders:write", name="demo feed", now=datetime.now(UTC)
    )
    with (
        pytest.MonkeyPatch.context() as environment,
        serving_in_thread(assembly.app(with_worker=False)) as base,
    ):
        environment.setenv("PROVTRACK_TOKEN", token)
        yield base


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    """provtrack with the demo catalog and no worker."""
    with _serving(tmp_path, "demo") as base:
        yield base


@pytest.fixture
def server_without_catalog(tmp_path: Path) -> Iterator[str]:
    with _serving(tmp_path, None) as base:
        yield base


def demo(*arguments: str) -> tuple[int, str]:
    done = CliRunner().invoke(app, ["demo", "--every", "0", *arguments])
    return done.exit_code, done.output


def test_demo_counts_the_orders_the_server_accepted(server: str) -> None:
    code, output = demo("--url", server, "--count", "2")

    assert code == 0, output
    assert "2 orders accepted, 0 refused" in output


def test_demo_fails_saying_why_when_the_server_refuses_its_orders(server_without_catalog: str) -> None:
    code, output = demo("--url", server_without_catalog, "--count", "2")

    assert code == 1
    assert "0 orders accepted, 2 refused" in output
    assert "last refusal: 503 NO_CATALOG: provtrack has no provisioning catalog" in output


def test_demo_without_a_token_is_refused_saying_why(server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROVTRACK_TOKEN")

    code, output = demo("--url", server, "--count", "1")

    assert code == 1
    assert "0 orders accepted, 1 refused" in output
    assert "last refusal: 401 UNAUTHENTICATED" in output


def test_demo_with_no_server_stops_after_its_wait_saying_so() -> None:
    url = f"http://127.0.0.1:{free_port()}"

    code, output = demo("--url", url, "--count", "2", "--wait", "0.5")

    assert code == 1
    assert f"demo stopped: no provtrack answers at {url} after 0.5 s" in output


def test_demo_at_a_server_that_is_not_provtrack_says_so() -> None:
    with serving_in_thread(FastAPI()) as other:
        code, output = demo("--url", other, "--count", "2", "--wait", "0.3")

    assert code == 1
    assert "GET /provtrack/v1/health answered 404: is it a provtrack server?" in output
