"""The first ten minutes of a new user, off a terminal (a log file, CI, a container): `make run`'s own
command lines show the orders flowing in lines nothing wraps; a server without a catalog says so and
refuses orders; a busy port is reported before any banner."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import httpx
import pytest
from typer.testing import CliRunner

from provtrack.cli import app
from tests.e2e.waiting import admin_headers, wait_for
from tests.integration.receiver import free_port
from tests.integration.tmf import ORDERS

REPOSITORY = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
TRANSITION = re.compile(rf"^\S+Z order ({UUID}) \(BSS-\d+\) (\w+) -> (\w+)$")
SUMMARY = re.compile(
    r"^orders: (\d+) created, (\d+) in progress, (\d+) completed, (\d+) held(?:, \d+ \w+)*, (\d+) in jeopardy$"
)


def make_run_commands(port: int) -> list[str]:
    """`make run`'s command lines as make would run them (the install step taken as done)."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    printed = subprocess.run(
        ["make", "-s", "-n", "-o", ".venv/.installed-run", "run", f"PROVTRACK_PORT={port}"],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout.splitlines()
    commands = [line for line in printed if "provtrack " in line]
    assert len(commands) == 2, printed  # db upgrade, then serve
    return [line.replace(".venv/bin/", f"{BIN}/") for line in commands]


@pytest.fixture
def quick_demo(tmp_path: Path) -> dict[str, str]:
    """The environment of a demo that moves in seconds, on a database of the test's own."""
    return {
        **os.environ,
        "COLUMNS": "80",  # what a log file or a container gets: nothing may wrap at it
        "PROVTRACK_DATABASE_URL": f"sqlite:///{tmp_path / 'provtrack.db'}",
        "PROVTRACK_DEMO_SIMULATOR_PORT": str(free_port()),
        "PROVTRACK_DEMO_PARTNER_PORT": str(free_port()),
        "PROVTRACK_DEMO_ORDER_EVERY_SECONDS": "0.5",
        "PROVTRACK_DEMO_SYSTEM_DELAY_SECONDS": "0.3",
        "PROVTRACK_LIVE_SUMMARY_SECONDS": "1",
    }


def test_make_run_off_a_terminal_shows_orders_flowing_in_lines_nothing_wraps(
    tmp_path: Path, quick_demo: dict[str, str]
) -> None:
    port = free_port()
    upgrade, serve = make_run_commands(port)
    log = tmp_path / "make-run.log"

    upgraded = subprocess.run(
        shlex.split(upgrade),
        env=quick_demo,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    with log.open("wb") as out, _running(serve, quick_demo, tmp_path, out):
        wait_for(lambda: _completed_orders(log) >= 2, timeout=90, what="two demo orders to complete")
        wait_for(lambda: _summaries(log)[-1][2] >= 2, timeout=10, what="a summary counting them")
    lines = log.read_text().splitlines()

    assert re.fullmatch(r"database sqlite:///\S+ at revision \d{4}", upgraded.stderr.strip()), upgraded.stderr
    base = f"http://127.0.0.1:{port}"
    assert f"  API docs      {base}/docs  (ReDoc: {base}/redoc)" in lines
    watch = f"{base}/tmf-api/serviceOrdering/v4/serviceOrder?fields=state,externalId,expectedCompletionDate"
    assert f"  watch orders  {watch}" in lines  # 111 characters on one line: nothing wrapped at 80
    for line in lines:
        for url in re.findall(r"https?://\S*", line):
            assert re.fullmatch(r"https?://[\w.-]+:\d+(/[\w/{}<>.-]*)?(\?[\w=,.&-]*[\w])?[),]?", url), line
    transitions = [m.groups() for m in map(TRANSITION.match, lines) if m]
    moves = {(old, new) for _, old, new in transitions}
    assert {("new", "acknowledged"), ("acknowledged", "inProgress"), ("inProgress", "completed")} <= moves
    first = transitions[0][0]
    assert [new for order, _, new in transitions if order == first][:2] == ["acknowledged", "inProgress"]
    assert len(_summaries(log)) >= 2


def test_serve_without_a_catalog_says_so_at_once_and_refuses_orders_saying_why(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "PROVTRACK_DATABASE_URL": f"sqlite:///{tmp_path / 'p.db'}", "PROVTRACK_CATALOG": ""}
    log = tmp_path / "serve.log"
    item = {"id": "1", "action": "add", "service": {"serviceSpecification": {"id": "ftth-residential"}}}

    with log.open("wb") as out, _running(f"{BIN}/provtrack serve --port {port}", env, tmp_path, out):
        wait_for(lambda: _answers(f"http://127.0.0.1:{port}/provtrack/v1/health"), timeout=30, what="serve")
        refused = httpx.post(
            f"http://127.0.0.1:{port}{ORDERS}",
            json={"serviceOrderItem": [item]},
            headers=admin_headers(env["PROVTRACK_DATABASE_URL"]),
            timeout=10,
        )

    assert refused.status_code == 503
    assert refused.json()["code"] == "NO_CATALOG"
    assert "--catalog" in refused.json()["message"]
    first_line = log.read_text().splitlines()[0]
    assert first_line.startswith("no provisioning catalog: provtrack cannot plan orders")


@pytest.mark.parametrize(
    "command",
    [["simulate", "--port"], ["serve", "--port"]],
    ids=["simulate", "serve"],
)
def test_a_busy_port_is_reported_before_any_banner(tmp_path: Path, command: list[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {**os.environ, "PROVTRACK_DATABASE_URL": f"sqlite:///{tmp_path / 'p.db'}"}
        done = subprocess.run(
            [f"{BIN}/provtrack", *command, str(port)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    assert done.returncode == 1
    assert done.stderr.startswith(f"cannot listen on 127.0.0.1:{port}"), done.stderr
    assert "serving on" not in done.stderr + done.stdout
    assert "simulator on" not in done.stderr + done.stdout


@contextmanager
def _running(command: str, env: dict[str, str], cwd: Path, out: BinaryIO) -> Iterator[None]:
    """A long-running command, stopped as Ctrl-C would stop it (SIGINT), then waited for (bounded)."""
    process = subprocess.Popen(shlex.split(command), env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
            raise


def _completed_orders(log: Path) -> int:
    return sum(
        1 for m in map(TRANSITION.match, log.read_text().splitlines()) if m and m.group(3) == "completed"
    )


def _summaries(log: Path) -> list[tuple[int, ...]]:
    found = [SUMMARY.match(line) for line in log.read_text().splitlines()]
    return [tuple(int(g) for g in m.groups()) for m in found if m] or [(0, 0, 0, 0, 0)]


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.TransportError:
        return False


@pytest.mark.parametrize(
    "command", [[], ["simulate"], ["serve"], ["demo"]], ids=["all", "simulate", "serve", "demo"]
)
def test_help_off_a_terminal_wraps_between_words_never_inside_a_url(command: list[str]) -> None:
    helped = CliRunner().invoke(app, [*command, "--help"], env={"TTY_COMPATIBLE": "0"})

    assert helped.exit_code == 0, helped.output
    urls = re.findall(r"https?://\S+", helped.output)
    for url in urls:
        assert re.fullmatch(r"https?://[\w.:<>/-]+[\w>/][.,\]]?", url), url
    if command in ([], ["simulate"]):
        assert "http://HOST:PORT/<system>/tmf-api/resourceOrderingManagement/v4," in helped.output


def test_the_readme_first_screen_gives_the_commands_what_you_see_where_to_click_and_how_long() -> None:
    first_screen = (REPOSITORY / "README.md").read_text().split("## Try it", 1)[0]

    for needed in ("make run", "make test", "What you see", "http://127.0.0.1:8641/docs", "about a minute"):
        assert needed in first_screen, needed
    assert "make shell" in (REPOSITORY / "README.md").read_text()  # provtrack is in .venv/bin, not on PATH


def test_make_shell_puts_the_venv_on_path() -> None:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    printed = subprocess.run(
        ["make", "-s", "-n", "-o", ".venv/.installed-run", "shell"],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout

    assert f'PATH="{REPOSITORY}/.venv/bin:$PATH"' in printed


def test_the_tmf641_page_cites_the_specification_by_its_public_name_not_a_local_file() -> None:
    page = (REPOSITORY / "docs" / "tmf641.md").read_text()

    assert "TMF641-ServiceOrdering-v4.1.0.swagger.json" in page
    assert "4.1.0" in page
    assert "shared/" not in page
