"""What every benchmark prints and shares: the machine and versions, medians, servers on free ports,
a Rich progress bar, and the JSON summary `bench/suite.py` collects (`--json PATH`)."""

from __future__ import annotations

import json
import os
import platform
import socket
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

BENCH = Path(__file__).resolve().parent
console = Console(width=None if sys.stdout.isatty() else 120)


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def versions() -> dict[str, str]:
    found = {"python": platform.python_version(), "sqlite": sqlite3.sqlite_version}
    for package in ("provtrack", "fastapi", "uvicorn", "sqlalchemy", "psycopg", "pydantic", "orjson"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            continue
    return found


def machine() -> dict[str, Any]:
    return {
        "cpu": cpu_model(),
        "cpus": os.cpu_count(),
        "load_average": round(os.getloadavg()[0], 1),
        "versions": versions(),
    }


def print_header(title: str) -> dict[str, Any]:
    """Print what a reader needs to reproduce the run: the machine, the versions, the command."""
    described = machine()
    console.rule(title)
    console.print(
        f"machine: {described['cpu']}, {described['cpus']} CPUs, load average {described['load_average']}"
    )
    console.print("versions: " + ", ".join(f"{k} {v}" for k, v in described["versions"].items()))
    console.print("command: " + " ".join(["python", *(_relative(a) for a in sys.argv)]))
    return described


def _relative(argument: str) -> str:
    """A file of the repository as a path from its root (`bench/x.py`); any other argument as given."""
    path = Path(argument)
    if argument.startswith("-") or not path.exists():
        return argument
    try:
        return str(path.resolve().relative_to(BENCH.parent))
    except ValueError:
        return argument


def progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=not sys.stdout.isatty(),
    )


def write_json(path: Path | None, summary: dict[str, Any]) -> None:
    """The run's figures for bench/suite.py (which writes them into docs/benchmarks.md)."""
    if path is not None:
        path.write_text(json.dumps(summary, indent=1))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_listening(port: int, process: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"server not listening on {port} after {timeout}s:\n{log.read_text()}")


@contextmanager
def server(
    command: list[str], port: int, log: Path, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, cwd=BENCH.parent, env={**os.environ, **(env or {})}
        )
    try:
        wait_until_listening(port, process, log)
        yield process
    finally:
        stop(process)


def stop(process: subprocess.Popen[bytes], timeout: float = 15) -> None:
    """SIGTERM, then SIGKILL if it has not ended within `timeout` seconds."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
