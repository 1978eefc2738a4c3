"""End to end: service orders through the provisioning engine and back, against the TMF652 simulator.

Starts `provtrack simulate --delay 0 --instant` (resource orders complete at once) and `provtrack serve`
with a catalog of one service whose item takes two chained resource orders, each in its own process on
a free loopback port. Then:

- throughput: N orders of 2 items (4 resource orders each) posted by a pool of clients; completed
  orders per second from the first POST to the last completion;
- CPU per order during the throughput run, from /proc: the API process, the worker processes, the
  simulator and (PostgreSQL on this machine) the database's backends;
- latency at light load: orders posted one at a time at a low rate; create -> completed measured as
  completionDate - orderDate (server timestamps), p50 and p99.

    python bench/end_to_end.py [--orders 1000] [--concurrency 16] [--light 100] [--light-rate 5]
                               [--database postgresql://postgres@127.0.0.1:5432/test]
                               [--workers N] [--no-serve-worker]
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from auth import admin_headers
from common import stop
from wrk import process_cpu

ORDERS = "/tmf-api/serviceOrdering/v4/serviceOrder"
WARM_UP = 1  # orders
CATALOG = """
systems:
  inventory:
    url: {sim}/inventory/tmf-api/resourceOrderingManagement/v4
    progress: poll
    pollInterval: PT2S
  activation:
    url: {sim}/activation/tmf-api/resourceOrderingManagement/v4
    progress: poll
    pollInterval: PT2S
services:
  ftth-residential:
    add:
      - {{id: reserve-port, system: inventory, resourceSpecification: olt-port, expectedDuration: PT2M}}
      - {{id: activate-line, system: activation, resourceSpecification: broadband-profile,
          after: [reserve-port], expectedDuration: PT5M}}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_up(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


@contextmanager
def process(command: list[str], env: dict[str, str], log: Path) -> Iterator[int]:
    with log.open("wb") as out:
        proc = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield proc.pid
    finally:
        stop(proc)


def cpu_seconds(pids: dict[str, list[int]]) -> dict[str, float]:
    """CPU seconds so far of each role's processes, and of PostgreSQL's processes on this machine."""
    found = {role: sum(process_cpu(pid) or 0.0 for pid in group) for role, group in pids.items()}
    postgres = [int(d.name) for d in Path("/proc").iterdir() if d.name.isdigit() and _comm(d) == "postgres"]
    found["PostgreSQL"] = sum(process_cpu(pid) or 0.0 for pid in postgres)
    return found


def _comm(proc: Path) -> str:
    try:
        return (proc / "comm").read_text().strip()
    except OSError:
        return ""


def order_body(n: int) -> dict[str, Any]:
    def item(item_id: str) -> dict[str, Any]:
        return {
            "id": item_id,
            "action": "add",
            "service": {"serviceSpecification": {"id": "ftth-residential"}},
        }

    return {"externalId": f"BENCH-{n}", "category": "residential", "serviceOrderItem": [item("1"), item("2")]}


def completed(client: httpx.Client) -> int:
    response = client.get(ORDERS, params={"state": "completed", "limit": 1, "fields": "state"})
    return int(response.headers["X-Total-Count"])


def latencies(client: httpx.Client, order_ids: list[str]) -> list[float]:
    found = []
    for order_id in order_ids:
        doc = client.get(f"{ORDERS}/{order_id}", params={"fields": "orderDate,completionDate"}).json()
        start = datetime.fromisoformat(doc["orderDate"].replace("Z", "+00:00"))
        end = datetime.fromisoformat(doc["completionDate"].replace("Z", "+00:00"))
        found.append((end - start).total_seconds() * 1000)
    return found


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def wait_completed(client: httpx.Client, total: int, timeout: float) -> float:
    deadline = time.monotonic() + timeout
    while (done := completed(client)) < total:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {done} of {total} orders completed in {timeout} s")
        time.sleep(0.05)
    return time.monotonic()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--orders", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--light", type=int, default=100, help="orders for the light-load latency run")
    parser.add_argument("--light-rate", type=float, default=5.0, help="orders per second at light load")
    parser.add_argument("--database", default=None, help="default: a fresh SQLite file")
    parser.add_argument(
        "--workers", type=int, default=0, help="`provtrack worker` processes beside `provtrack serve`"
    )
    parser.add_argument(
        "--no-serve-worker",
        action="store_true",
        help="`serve --no-worker`: only the worker processes run jobs",
    )
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="provtrack-e2e-"))
    database = args.database or f"sqlite:///{work / 'provtrack.db'}"
    sim_port, api_port = free_port(), free_port()
    sim_url, api_url = f"http://127.0.0.1:{sim_port}", f"http://127.0.0.1:{api_port}"
    (work / "catalog.yaml").write_text(CATALOG.format(sim=sim_url))
    env = {**os.environ, "PROVTRACK_LOG_LEVEL": "warning"}
    provtrack = [sys.executable, "-m", "provtrack"]
    simulate = [*provtrack, "simulate", "--port", str(sim_port), "--delay", "0", "--instant"]
    serve = [*provtrack, "serve", "--port", str(api_port), "--database", database]
    serve += ["--catalog", str(work / "catalog.yaml")]
    if args.no_serve_worker:
        serve.append("--no-worker")
    worker = [*provtrack, "worker", "--database", database, "--catalog", str(work / "catalog.yaml")]

    pids: dict[str, list[int]] = {"serve": [], "workers": [], "simulator": []}
    with ExitStack() as running:
        pids["simulator"].append(running.enter_context(process(simulate, env, work / "simulator.log")))
        pids["serve"].append(running.enter_context(process(serve, env, work / "serve.log")))
        wait_up(f"{sim_url}/simulator/stats")
        wait_up(f"{api_url}/docs")  # serve has created the schema: the workers can start
        for n in range(args.workers):
            pids["workers"].append(running.enter_context(process(worker, env, work / f"worker-{n}.log")))
        with httpx.Client(base_url=api_url, timeout=30, headers=admin_headers(database)) as client:
            # One order through, not measured: every process is up (worker processes start last).
            client.post(ORDERS, json=order_body(-1)).raise_for_status()
            wait_completed(client, WARM_UP, timeout=60)
            # Light load first, on an empty database: one order at a time.
            light_ids = []
            for n in range(args.light):
                light_ids.append(client.post(ORDERS, json=order_body(n)).json()["id"])
                time.sleep(1 / args.light_rate)
            wait_completed(client, WARM_UP + args.light, timeout=120)
            light = latencies(client, light_ids)

            start, cpu_before = time.monotonic(), cpu_seconds(pids)

            def create(n: int) -> str:
                response = client.post(ORDERS, json=order_body(args.light + n))
                response.raise_for_status()
                order_id: str = response.json()["id"]
                return order_id

            with ThreadPoolExecutor(args.concurrency) as pool:
                heavy_ids = list(pool.map(create, range(args.orders)))
            posted = time.monotonic()
            end = wait_completed(client, WARM_UP + args.light + args.orders, timeout=600)
            cpu = {role: used - cpu_before[role] for role, used in cpu_seconds(pids).items()}
            heavy = latencies(client, heavy_ids)
        stats = httpx.get(f"{sim_url}/simulator/stats").json()

    kind = "PostgreSQL" if database.startswith("postgres") else "SQLite"
    print(
        f"provtrack end to end, {kind}, {platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} CPUs; serve {'without' if args.no_serve_worker else 'with'} its worker, "
        f"{args.workers} worker processes beside it"
    )
    print(
        f"resource orders created downstream: {stats['ordersCreated']} "
        f"(expected {4 * (WARM_UP + args.light + args.orders)}), repeated POSTs {stats['repeatedPosts']}"
    )
    print(
        f"throughput: {args.orders} orders (2 items, 4 resource orders each), concurrency {args.concurrency}: "
        f"{args.orders / (end - start):.0f} completed orders/s "
        f"(posting took {posted - start:.1f} s, all completed after {end - start:.1f} s)"
    )
    per_order = {role: 1000 * used / args.orders for role, used in cpu.items() if used > 0}
    print(
        "  CPU per order during it: "
        + ", ".join(f"{role} {ms:.1f} ms" for role, ms in per_order.items())
        + f"; provtrack (serve + workers) {per_order.get('serve', 0) + per_order.get('workers', 0):.1f} ms"
    )
    print(
        f"  create->completed under load: p50 {percentile(heavy, 50):.0f} ms, p99 {percentile(heavy, 99):.0f} ms"
    )
    print(
        f"light load ({args.light} orders at {args.light_rate:g}/s): create->completed "
        f"p50 {percentile(light, 50):.0f} ms, p99 {percentile(light, 99):.0f} ms, "
        f"mean {statistics.mean(light):.0f} ms"
    )


if __name__ == "__main__":
    main()
