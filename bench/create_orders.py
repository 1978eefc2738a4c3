"""Benchmark provtrack's TMF641 API against the framework ceiling, over real HTTP on loopback, with wrk.

The harness seeds a store with realistic orders, starts `provtrack serve` and the bare FastAPI
endpoints of `bench/ceiling.py` (same uvicorn settings, separate processes, free loopback ports) and
loads them with Debian's `wrk` (a C client: it is not the limit), alternating the two servers in
every repetition:

- create: POST /serviceOrder (two items, FTTH + IPTV) against the ceiling that only parses the body;
- GET by id against the ceiling that answers a stored document of the same size from memory;
- GET list (`state=...&limit=50`, default sort) with the seeded orders in the store, 16 clients and 1.

Reported: req/s, p50/p99 latency (wrk), and the server's CPU per request (user + system of all its
threads, from /proc). Figures are medians over the repetitions; ratios are taken in one run.

    python bench/create_orders.py [--seconds 5] [--repeat 3] [--connections 16] [--seed-orders 100000]
                                  [--database postgresql://postgres@127.0.0.1:5432/test] [--api-only]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson
import sqlalchemy
from auth import admin_headers
from bodies import order_body
from common import BENCH, console, free_port, median, print_header, progress, server, write_json
from rich.table import Table
from seed import seed
from wrk import WrkResult, ensure_wrk, run_wrk, write_script, wrk_version

from provtrack.adapters.store.database import create_database_engine, normalise_url
from provtrack.adapters.store.migrate import upgrade_database
from provtrack.api.http import with_href

BASE_PATH = "/tmf-api/serviceOrdering/v4"
LIST_STATES = ("acknowledged", "inProgress", "held", "completed")


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


@dataclass(frozen=True)
class Workload:
    name: str
    script: Path
    connections: int
    servers: tuple[str, ...]  # "provtrack", "ceiling"


def summary(runs: list[WrkResult]) -> dict[str, Any]:
    cpu = [r.cpu_per_request_us for r in runs if r.cpu_per_request_us is not None]
    return {
        "rate": median([r.rate for r in runs]),
        "p50_ms": median([r.p50_ms for r in runs]),
        "p99_ms": median([r.p99_ms for r in runs]),
        "cpu_us": median(cpu) if cpu else None,
        "runs": [round(r.rate) for r in runs],
    }


def measure(args: argparse.Namespace, url: str, sample: Sample, workdir: Path) -> dict[str, Any]:
    ports = {"provtrack": free_port(), "ceiling": free_port()}
    document_file = workdir / "document.json"
    href = f"http://127.0.0.1:{ports['provtrack']}{BASE_PATH}/serviceOrder/{sample.order_ids[0]}"
    document_file.write_text(with_href(sample.document, href))
    python = str(Path(args.python))
    provtrack_cmd = [python, "-m", "provtrack", "serve", "--port", str(ports["provtrack"]), "--database", url]
    if args.api_only:
        provtrack_cmd.append("--no-worker")
    ceiling_cmd = [python, str(BENCH / "ceiling.py"), "--port", str(ports["ceiling"])]
    ceiling_cmd += ["--document", str(document_file)]
    bodies = [orjson.dumps(order_body(n)).decode() for n in range(5000)]
    admin_headers(url)  # an administrator's key in the bench database: the scripts send it (auth.py)
    create = write_script(workdir, "create", method="POST", lines=bodies, path=f"{BASE_PATH}/serviceOrder")
    gets = [f"{BASE_PATH}/serviceOrder/{i}" for i in sample.order_ids]
    retrieve = write_script(workdir, "retrieve", method="GET", lines=gets)
    lists = [f"{BASE_PATH}/serviceOrder?state={s}&limit=50" for s in LIST_STATES]
    list_page = write_script(workdir, "list", method="GET", lines=lists)
    both = ("provtrack", "ceiling")
    workloads = [
        Workload("create", create, args.connections, both),
        Workload("GET by id", retrieve, args.connections, both),
    ]
    if not args.no_lists:
        workloads += [
            Workload("GET list", list_page, args.connections, ("provtrack",)),
            Workload("GET list, 1 client", list_page, 1, ("provtrack",)),
        ]
    # The API alone is measured: orders are accepted without a catalog and never planned.
    env = {"PROVTRACK_ACCEPT_ORDERS_WITHOUT_CATALOG": "true"}
    results: dict[str, Any] = {}
    with (
        server(provtrack_cmd, ports["provtrack"], workdir / "provtrack.log", env) as provtrack_process,
        server(ceiling_cmd, ports["ceiling"], workdir / "ceiling.log") as ceiling_process,
        progress() as bar,
    ):
        pids = {"provtrack": provtrack_process.pid, "ceiling": ceiling_process.pid}
        total = sum(len(w.servers) * (args.repeat + 1) for w in workloads)
        task = bar.add_task("wrk runs", total=total)
        for workload in workloads:
            runs: dict[str, list[WrkResult]] = {name: [] for name in workload.servers}
            order = list(workload.servers)
            for repetition in range(args.repeat + 1):  # the first round warms up, not counted
                for name in order:
                    bar.update(task, description=f"{workload.name}: {name}")
                    result = run_wrk(
                        f"http://127.0.0.1:{ports[name]}",
                        workload.script,
                        seconds=args.warmup_seconds if repetition == 0 else args.seconds,
                        connections=workload.connections,
                        server_pid=pids[name],
                    )
                    if result.errors:
                        log = workdir / f"{name}.log"
                        raise RuntimeError(
                            f"{workload.name}: {result.errors} errors\n{log.read_text()[-3000:]}"
                        )
                    if repetition:
                        runs[name].append(result)
                    bar.advance(task)
                order.reverse()
            results[workload.name] = {
                "connections": workload.connections,
                **{name: summary(r) for name, r in runs.items()},
            }
    return results


def report(results: dict[str, Any], args: argparse.Namespace) -> None:
    table = Table(
        title=f"provtrack vs framework ceiling, wrk (medians of {args.repeat} runs of {args.seconds}s)"
    )
    for column in ("workload", "server", "conn.", "req/s", "p50 ms", "p99 ms", "server CPU µs/req"):
        table.add_column(column, justify="left" if column in ("workload", "server") else "right")
    for name, result in results.items():
        for server_name in ("provtrack", "ceiling"):
            if server_name not in result:
                continue
            s = result[server_name]
            table.add_row(
                name if server_name == "provtrack" else "",
                server_name,
                str(result["connections"]),
                f"{s['rate']:,.0f}",
                f"{s['p50_ms']:.1f}",
                f"{s['p99_ms']:.1f}",
                "-" if s["cpu_us"] is None else f"{s['cpu_us']:,.0f}",
                end_section="ceiling" not in result,
            )
        if "ceiling" in result:
            p, c = result["provtrack"], result["ceiling"]
            result["ratio"] = p["rate"] / c["rate"]
            result["capacity"] = c["cpu_us"] / p["cpu_us"] if p["cpu_us"] and c["cpu_us"] else None
            capacity = "-" if result["capacity"] is None else f"{result['capacity']:.0%}"
            table.add_row(
                "", "provtrack/ceiling", "", f"{result['ratio']:.0%}", "", "", capacity, end_section=True
            )
    console.print(table)
    console.print(
        "provtrack/ceiling: req/s is the throughput ratio in this run; under server CPU it is the capacity "
        "ratio (ceiling CPU per request / provtrack CPU per request)."
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--seconds", type=float, default=5, help="seconds per measured wrk run")
    parser.add_argument(
        "--warmup-seconds", type=float, default=2, help="seconds of the uncounted first round"
    )
    parser.add_argument("--repeat", type=int, default=3, help="repetitions per server; medians are reported")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections (requests in flight)")
    parser.add_argument(
        "--seed-orders", type=int, default=100_000, help="orders in the store before measuring"
    )
    parser.add_argument(
        "--database", help="postgresql://... (a schema of its own, dropped after); default SQLite"
    )
    parser.add_argument(
        "--api-only",
        action="store_true",
        help="serve with --no-worker (the API process of a scale-out deployment): without it the job "
        "worker inside `provtrack serve` shares the CPU, planning (here: failing to plan) every order",
    )
    parser.add_argument("--no-lists", action="store_true", help="skip the GET list workloads")
    parser.add_argument("--python", default=__import__("sys").executable, help="interpreter of the servers")
    parser.add_argument("--json", type=Path, help="write the figures here (bench/suite.py reads them)")
    args = parser.parse_args()

    described = print_header("TMF641 API against the framework ceiling")
    console.print(f"load client: {wrk_version() if ensure_wrk() else ''}")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="provtrack-bench-") as tmp:
        workdir = Path(tmp)
        with bench_database(args.database, workdir) as url:
            console.print(f"store: {sqlalchemy.engine.make_url(url).render_as_string(hide_password=True)}")
            sample = prepare_store(url, args.seed_orders, sample_size=5000)
            results = measure(args, url, sample, workdir)
    report(results, args)
    console.print(f"finished in {time.perf_counter() - started:.0f}s")
    store = "postgresql" if args.database and args.database.startswith("postgres") else "sqlite"
    write_json(
        args.json, {"machine": described, "store": store, "api_only": args.api_only, "results": results}
    )


if __name__ == "__main__":
    main()
