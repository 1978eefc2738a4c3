"""Engine CPU per order, in one process: what the provisioning engine costs, without the HTTP API.

`bench/end_to_end.py` measures the whole product over HTTP; this harness isolates the engine. The
TMF652 simulator runs in its own process (`provtrack simulate --delay 0 --instant`, the catalog of
`end_to_end.py`: 2 items of 2 chained resource orders). In this process the orders are created
through the use case (no HTTP API) and the job worker serves as in `provtrack serve`, with the real
clock, until every order is completed. It reports this process's CPU time per order (the create
use case, planning, 4 resource orders, jeopardy, events) and the SQL statements per order. CPU time
is steadier than wall time on a busy machine. To see where it goes:

    py-spy record --gil -o engine.svg -- python bench/engine_cpu.py --orders 1000

    python bench/engine_cpu.py [--orders 300] [--statements] [--threads 8] [--database URL]
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import event

sys.path.insert(0, str(Path(__file__).resolve().parent))

from end_to_end import CATALOG, free_port, order_body, process, wait_up

from provtrack import bootstrap
from provtrack.adapters.catalog_file import parse_catalog_text
from provtrack.adapters.clock import utc_now
from provtrack.domain.clock import format_datetime
from provtrack.services import orders
from provtrack.services.ports import Context
from provtrack.settings import Settings

WARM_UP = 20
LITERAL = re.compile(r"'(?:[^']|'')*'|\b\d+(?:\.\d+)?\b")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--orders", type=int, default=300)
    parser.add_argument("--threads", type=int, default=8, help="worker threads, as `serve` runs them")
    parser.add_argument("--database", default=None, help="default: a fresh SQLite file")
    parser.add_argument("--statements", action="store_true", help="count SQL statements by kind")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="provtrack-engine-cpu-"))
    database = args.database or f"sqlite:///{work / 'provtrack.db'}"
    sim_port = free_port()
    sim_url = f"http://127.0.0.1:{sim_port}"
    simulate = [sys.executable, "-m", "provtrack", "simulate", "--port", str(sim_port)]
    simulate += ["--delay", "0", "--instant"]
    bootstrap.configure_logging("warning")

    with process(simulate, {"PROVTRACK_LOG_LEVEL": "warning"}, work / "simulator.log"):
        wait_up(f"{sim_url}/simulator/stats")
        settings = Settings(database_url=database)
        catalog = parse_catalog_text(CATALOG.format(sim=sim_url), source="bench-catalog.yaml")
        assembly = bootstrap.Assembly.build(
            settings.model_copy(update={"worker_threads": args.threads}), migrate=True, catalog=catalog
        )
        store = assembly.store
        worker = assembly.worker()
        serving = threading.Thread(target=worker.serve, daemon=True)
        serving.start()

        def ctx() -> Context:
            return Context(format_datetime(utc_now()), "bench", lambda: str(uuid.uuid4()))

        def completed() -> int:
            with store.transaction(write=False) as tx:
                count: int = tx.conn.exec_driver_sql(
                    "SELECT count(*) FROM service_order WHERE state = 'completed'"
                ).scalar_one()
                return count

        def run(first: int, count: int) -> None:
            for n in range(first, first + count):
                orders.create_order(store, order_body(n), ctx=ctx())
            while completed() < first + count:
                time.sleep(0.02)

        run(0, WARM_UP)  # imports, statement caches, connections
        statements: Counter[str] = Counter()
        if args.statements:  # SQLite: every statement the driver runs, BEGIN and COMMIT included

            def trace(statement: str) -> None:  # values expanded by SQLite: put placeholders back
                statements[LITERAL.sub("?", " ".join(statement.split()))[:100]] += 1

            @event.listens_for(store.engine, "connect")
            def _trace(dbapi_connection: Any, _record: Any) -> None:
                dbapi_connection.set_trace_callback(trace)

            from provtrack.adapters.store.repository import _idle_connections

            for idle in _idle_connections(store.engine).values():  # kept open between transactions
                for conn in idle:
                    conn.connection.driver_connection.set_trace_callback(trace)  # type: ignore[union-attr]

        wall, cpu = time.perf_counter(), time.process_time()
        run(WARM_UP, args.orders)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        stats = httpx.get(f"{sim_url}/simulator/stats").json()
        worker.stop()

    print(
        f"{args.orders} orders completed ({WARM_UP} more to warm up), "
        f"{stats['ordersCreated']} resource orders created downstream"
    )
    print(
        f"engine and create use case: {cpu / args.orders * 1000:.2f} ms CPU per order, "
        f"{args.orders / wall:.0f} orders/s ({wall:.1f} s wall)"
    )
    if args.statements:
        print(f"SQL statements per order: {sum(statements.values()) / args.orders:.1f}")
        for text, count in statements.most_common():
            print(f"  {count / args.orders:5.2f}  {text}")


if __name__ == "__main__":
    main()
