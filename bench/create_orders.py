"""Benchmark provtrack's TMF641 API against the framework ceiling, over real HTTP on loopback.

The harness seeds a store with realistic orders, starts `provtrack serve` and the bare FastAPI
endpoints of `bench/ceiling.py` (same uvicorn settings, separate processes, free loopback ports), and
measures with an httpx load client, alternating the two servers in every repetition:

- create: POST /serviceOrder (two items, FTTH + IPTV) against the ceiling that only parses the body;
- GET by id against the ceiling that answers a stored document of the same size from memory;
- GET list (`state=...&limit=50`, default sort) with the seeded orders in the store.

Figures are medians over the repetitions; ratios are taken from one run.

    python bench/create_orders.py [--orders 2000] [--concurrency 16] [--seed-orders 100000]
                                  [--database postgresql://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import platform
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

# httpcore tries `import sniffio` on every lock it sets up; anyio no longer installs sniffio and a failed
# import is not cached, which costs the load client more CPU than the servers spend (encode/httpcore#1103).
# We run on asyncio, which httpcore assumes when sniffio is absent: make the absence cheap.
if importlib.util.find_spec("sniffio") is None:
    sys.modules["sniffio"] = None  # type: ignore[assignment]

import httpx
import orjson
import sqlalchemy
from auth import admin_headers
from bodies import order_body
from rich.console import Console
from rich.table import Table
from seed import seed

from provtrack.adapters.store.database import create_database_engine, normalise_url
from provtrack.adapters.store.migrate import upgrade_database
from provtrack.api.http import with_href

BENCH = Path(__file__).resolve().parent
BASE_PATH = "/tmf-api/serviceOrdering/v4"
LIST_STATES = ("acknowledged", "inProgress", "held", "completed")
console = Console(width=None if sys.stdout.isatty() else 120)


# --- load ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """One measured batch of requests against one server."""

    requests: int
    seconds: float
    latencies: list[float]  # seconds, one per request
    server_cpu: float | None  # seconds of server process CPU over the batch
    client_cpu: float  # seconds of this process's CPU over the batch

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


Send = Callable[[httpx.AsyncClient, int], Awaitable[httpx.Response]]


@dataclass(frozen=True)
class Target:
    """A server under load and its virtual users: one httpx client with one keep-alive connection each.

    (One shared pool of many connections costs httpcore time quadratic in the connections.)
    """

    name: str
    pid: int
    clients: list[httpx.AsyncClient]


async def load(target: Target, send: Send, *, requests: int, concurrency: int, expect: Sequence[int]) -> Run:
    """Send `requests` requests, `concurrency` at a time; every answer must have an expected status."""
    latencies: list[float] = []
    next_index = iter(range(requests))

    async def user(client: httpx.AsyncClient) -> None:
        for i in next_index:
            started = time.perf_counter()
            response = await send(client, i)
            latencies.append(time.perf_counter() - started)
            if response.status_code not in expect:
                raise RuntimeError(f"{response.request.url} answered {response.status_code}: {response.text}")

    server_before = process_cpu(target.pid)
    client_before = time.process_time()
    started = time.perf_counter()
    await asyncio.gather(*(user(client) for client in target.clients[:concurrency]))
    seconds = time.perf_counter() - started
    server_after = process_cpu(target.pid)
    server_cpu = None if server_before is None or server_after is None else server_after - server_before
    return Run(requests, seconds, latencies, server_cpu, time.process_time() - client_before)


def process_cpu(pid: int | None) -> float | None:
    """User + system CPU seconds of a process, all threads (Linux /proc); None elsewhere."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_until_idle(pid: int, *, busy: float = 0.05, window: float = 0.5, timeout: float = 60) -> None:
    """Wait until the server's background work (its job worker) is done: < `busy` of a CPU for `window`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        before = process_cpu(pid)
        time.sleep(window)
        after = process_cpu(pid)
        if before is None or after is None or (after - before) / window < busy:
            return
    console.print(f"[yellow]server {pid} still busy after {timeout}s; measuring anyway[/]")


# --- servers ------------------------------------------------------------------------------------


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
def server(command: list[str], port: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        # The API alone is measured: orders are accepted without a catalog and never planned.
        env = {**os.environ, "PROVTRACK_ACCEPT_ORDERS_WITHOUT_CATALOG": "true"}
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=BENCH.parent, env=env)
    try:
        wait_until_listening(port, process, log)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def users(port: int, count: int, headers: dict[str, str] | None = None) -> list[httpx.AsyncClient]:
    one = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    return [
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=one, timeout=60, headers=headers)
        for _ in range(count)
    ]


# --- database -----------------------------------------------------------------------------------


@contextmanager
def bench_database(url: str | None, workdir: Path) -> Iterator[str]:
    """A fresh store: a SQLite file in the work dir, or a PostgreSQL schema dropped afterwards."""
    if url is None or url.startswith("sqlite"):
        yield url or f"sqlite:///{workdir / 'provtrack.db'}"
        return
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin = sqlalchemy.create_engine(normalise_url(url))
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    separator = "&" if "?" in url else "?"
    try:
        yield f"{url}{separator}options={quote(f'-csearch_path={schema}')}"
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()


@dataclass(frozen=True)
class Sample:
    order_ids: list[str]
    document: str  # one stored order document (without href)


def prepare_store(url: str, seed_orders: int, sample_size: int) -> Sample:
    engine = create_database_engine(url)
    try:
        upgrade_database(engine)
        engine.dispose()  # the seeding processes fork: they must not inherit open connections
        started = time.perf_counter()
        seed(url, seed_orders)
        elapsed = time.perf_counter() - started
        console.print(f"seeded {seed_orders} orders in {elapsed:.1f}s ({seed_orders / elapsed:.0f} orders/s)")
        if engine.dialect.name == "postgresql":
            # What autovacuum does to a store that has been running: statistics, and a visibility map
            # without which COUNT(*) reads every heap page instead of the index alone.
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("VACUUM ANALYZE service_order")
        with engine.connect() as conn:
            ids = list(
                conn.exec_driver_sql(
                    f"SELECT id FROM service_order ORDER BY random() LIMIT {sample_size}"
                ).scalars()
            )
            document = conn.exec_driver_sql(
                "SELECT document FROM service_order WHERE state = 'completed' LIMIT 1"
            ).scalar_one()
    finally:
        engine.dispose()
    return Sample(ids, document)


# --- the benchmark ------------------------------------------------------------------------------


@dataclass
class Comparison:
    name: str
    concurrency: int
    provtrack: list[Run]
    ceiling: list[Run]


async def compare(
    name: str,
    targets: list[Target],
    send: Send,
    *,
    requests: int,
    warmup: int,
    repeat: int,
    concurrency: int,
    expect: Sequence[int],
) -> Comparison:
    """Alternate the servers (provtrack first, then ceiling first, ...) and keep every run."""
    runs: dict[str, list[Run]] = {target.name: [] for target in targets}
    for target in targets:
        await load(target, send, requests=warmup, concurrency=concurrency, expect=expect)
    order = list(targets)
    for _ in range(repeat):
        for target in order:
            await asyncio.to_thread(wait_until_idle, target.pid)
            runs[target.name].append(
                await load(target, send, requests=requests, concurrency=concurrency, expect=expect)
            )
        order.reverse()
    return Comparison(name, concurrency, runs["provtrack"], runs.get("ceiling", []))


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def summary_row(workload: str, server: str, runs: list[Run], concurrency: int) -> list[str]:
    cpu = [r.server_cpu / r.requests * 1e6 for r in runs if r.server_cpu is not None]
    return [
        workload,
        server,
        str(concurrency),
        f"{median([r.rate for r in runs]):,.0f}",
        f"{median([r.percentile(50) for r in runs]) * 1000:.1f}",
        f"{median([r.percentile(99) for r in runs]) * 1000:.1f}",
        f"{median(cpu):,.0f}" if cpu else "-",
        f"{median([r.client_cpu / r.seconds for r in runs]):.0%}",
    ]


def report(comparisons: list[Comparison], args: argparse.Namespace) -> None:
    table = Table(title=f"provtrack vs framework ceiling (medians of {args.repeat} runs)")
    for column in (
        "workload",
        "server",
        "conc.",
        "req/s",
        "p50 ms",
        "p99 ms",
        "server CPU µs/req",
        "client CPU",
    ):
        table.add_column(column, justify="left" if column in ("workload", "server") else "right")
    for c in comparisons:
        table.add_row(
            *summary_row(c.name, "provtrack", c.provtrack, c.concurrency), end_section=not c.ceiling
        )
        if c.ceiling:
            table.add_row(*summary_row("", "ceiling", c.ceiling, c.concurrency))
            rate = median([r.rate for r in c.provtrack]) / median([r.rate for r in c.ceiling])
            cpu_p = [r.server_cpu / r.requests for r in c.provtrack if r.server_cpu is not None]
            cpu_c = [r.server_cpu / r.requests for r in c.ceiling if r.server_cpu is not None]
            capacity = f"{median(cpu_c) / median(cpu_p):.0%}" if cpu_p and cpu_c else "-"
            table.add_row("", "provtrack/ceiling", "", f"{rate:.0%}", "", "", capacity, "", end_section=True)
    console.print(table)
    console.print(
        "provtrack/ceiling: req/s is the measured throughput ratio; under server CPU it is the capacity "
        "ratio (ceiling CPU per request / provtrack CPU per request), which does not depend on the load "
        "client keeping up. Client CPU near 100% means the client, not the server, set the pace."
    )


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} CPUs; Python {platform.python_version()}, "
        f"SQLite {sqlite3.sqlite_version}, httpx {httpx.__version__}"
    )


async def measure(args: argparse.Namespace, url: str, sample: Sample, workdir: Path) -> list[Comparison]:
    provtrack_port, ceiling_port = free_port(), free_port()
    document_file = workdir / "document.json"
    href = f"http://127.0.0.1:{provtrack_port}{BASE_PATH}/serviceOrder/{sample.order_ids[0]}"
    document_file.write_text(with_href(sample.document, href))
    python = sys.executable
    provtrack_cmd = [python, "-m", "provtrack", "serve", "--port", str(provtrack_port), "--database", url]
    if args.api_only:
        provtrack_cmd.append("--no-worker")
    ceiling_cmd = [
        python,
        str(BENCH / "ceiling.py"),
        "--port",
        str(ceiling_port),
        "--document",
        str(document_file),
    ]
    bodies = [orjson.dumps(order_body(n)) for n in range(max(args.orders, args.warmup))]
    ids = sample.order_ids
    headers = {"content-type": "application/json"}

    async def create(client: httpx.AsyncClient, i: int) -> httpx.Response:
        return await client.post(
            f"{BASE_PATH}/serviceOrder", content=bodies[i % len(bodies)], headers=headers
        )

    async def retrieve(client: httpx.AsyncClient, i: int) -> httpx.Response:
        return await client.get(f"{BASE_PATH}/serviceOrder/{ids[i % len(ids)]}")

    async def list_page(client: httpx.AsyncClient, i: int) -> httpx.Response:
        state = LIST_STATES[i % len(LIST_STATES)]
        return await client.get(f"{BASE_PATH}/serviceOrder", params={"state": state, "limit": "50"})

    with (
        server(provtrack_cmd, provtrack_port, workdir / "provtrack.log") as provtrack_process,
        server(ceiling_cmd, ceiling_port, workdir / "ceiling.log") as ceiling_process,
    ):
        auth = admin_headers(url)
        provtrack = Target("provtrack", provtrack_process.pid, users(provtrack_port, args.concurrency, auth))
        ceiling = Target("ceiling", ceiling_process.pid, users(ceiling_port, args.concurrency))
        try:
            common = {"warmup": args.warmup, "repeat": args.repeat, "concurrency": args.concurrency}
            console.print(f"create: {args.repeat} x {args.orders} orders on each server")
            both = [provtrack, ceiling]
            creates = await compare("create", both, create, requests=args.orders, expect=(201,), **common)
            console.print(f"GET by id: {args.repeat} x {args.gets} requests on each server")
            gets = await compare("GET by id", both, retrieve, requests=args.gets, expect=(200,), **common)
            states = "|".join(LIST_STATES)
            console.print(f"GET list: {args.repeat} x {args.lists} requests (limit=50, state={states})")
            only = [provtrack]
            lists = await compare(
                "GET list", only, list_page, requests=args.lists, expect=(200, 206), **common
            )
            single = {**common, "concurrency": 1}
            lists_alone = await compare(
                "GET list", only, list_page, requests=args.lists // 4, expect=(200, 206), **single
            )
        finally:
            for client in provtrack.clients + ceiling.clients:
                await client.aclose()
    return [creates, gets, lists, lists_alone]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=2000, help="orders created per repetition and server")
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight")
    parser.add_argument(
        "--seed-orders", type=int, default=100_000, help="orders in the store before measuring"
    )
    parser.add_argument(
        "--database", help="postgresql://... (a schema of its own, dropped after); default SQLite"
    )
    parser.add_argument("--gets", type=int, default=4000, help="GET by id requests per repetition and server")
    parser.add_argument("--lists", type=int, default=1000, help="GET list requests per repetition")
    parser.add_argument("--repeat", type=int, default=3, help="repetitions; medians are reported")
    parser.add_argument("--warmup", type=int, default=300, help="requests per server before measuring")
    parser.add_argument(
        "--api-only",
        action="store_true",
        help="serve with --no-worker (the API process of a scale-out deployment): without it the job "
        "worker inside `provtrack serve` shares the CPU, planning (here: failing to plan) every order",
    )
    args = parser.parse_args()

    console.print(f"machine: {machine()}; load average {os.getloadavg()[0]:.1f}")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="provtrack-bench-") as tmp:
        workdir = Path(tmp)
        with bench_database(args.database, workdir) as url:
            console.print(f"store: {sqlalchemy.engine.make_url(url).render_as_string(hide_password=True)}")
            sample = prepare_store(url, args.seed_orders, sample_size=5000)
            comparisons = asyncio.run(measure(args, url, sample, workdir))
    report(comparisons, args)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    console.print(
        f"finished at {datetime.now(UTC):%Y-%m-%d %H:%M}Z in {time.perf_counter() - started:.0f}s "
        f"(load average {load})"
    )


if __name__ == "__main__":
    main()
