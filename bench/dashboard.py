"""Server-side render time of the dashboard's pages at 100 000 orders (p50/p90/p99).

Seeds a SQLite store with realistic orders (bench/seed.py's life cycles spread over 90 days), a plan
of three activities each (some fallen out), jeopardy alerts on part of the open ones and 90 days of
hourly open-order counts, the days that have ended rolled up (as the hourly job does), a manual task
in the demo catalog's work groups for one open order in five; then renders each page in-process (the
app built by the assembly, as `provtrack serve` builds it; no network, no browser) and times it.

    python bench/dashboard.py --orders 100000 [--requests 200] [--database sqlite:///bench-dash.db]
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from auth import admin_headers, auth_headers
from fastapi.testclient import TestClient
from seed import SPREAD, build_order

from provtrack.adapters.store.database import create_database_engine
from provtrack.adapters.store.metrics import order_state_count
from provtrack.adapters.store.migrate import upgrade_database
from provtrack.adapters.store.repository import SqlStore
from provtrack.bootstrap import Assembly
from provtrack.domain.activities import Activity, ActivityState
from provtrack.domain.catalog import ActivityKind
from provtrack.domain.clock import format_datetime
from provtrack.domain.model import ServiceOrder
from provtrack.domain.plan import Plan
from provtrack.domain.query import Query
from provtrack.domain.tasks import ManualTask, TaskState
from provtrack.services.metrics import roll_up
from provtrack.settings import Settings

BATCH = 2_000
TASK_EVERY = 5  # one open order in five waits on a manual task
WORK_GROUPS = ("field-technicians", "field-engineering", "noc")  # the demo catalog's
ACTIVITIES = (
    ("reserve-port", "network-inventory"),
    ("activate-line", "activation"),
    ("entitle-tv", "tv-middleware"),
)


def plan_of(order: ServiceOrder, n: int) -> Plan:
    """Three activities in a chain; finished with the order, one in 50 fallen out on the way."""
    start = order.order_date
    activities = []
    previous: list[str] = []
    for name, owner in ACTIVITIES:
        a = Activity(
            f"{order.id}-{name}", order.id, "1", name, ActivityKind.RESOURCE_ORDER, owner, previous, 300.0
        )
        a.actual_start = start
        if order.is_terminal:
            a.state, a.actual_end = ActivityState.DONE, order.completion_date or start
        elif not previous:
            a.state = ActivityState.IN_PROGRESS
        if n % 50 == 0 and name == "activate-line":
            a.fallouts = 1
            if not order.is_terminal:
                a.state, a.reason = (
                    ActivityState.FALLOUT,
                    f"{owner} reports the resource order failed: no capacity",
                )
        activities.append(a)
        previous = [a.id]
    return Plan(order.id, start, activities, {}, critical_path=[a.id for a in activities], started=True)


def task_of(order: ServiceOrder, n: int) -> ManualTask:
    """A manual task of one of the demo catalog's groups, in the state one in a queue would be."""
    group = WORK_GROUPS[n % len(WORK_GROUPS)]
    state = (TaskState.QUEUED, TaskState.QUEUED, TaskState.ASSIGNED, TaskState.IN_PROGRESS)[n % 4]
    task = ManualTask(
        f"{order.id}-task",
        order.id,
        "1",
        f"{order.id}-survey",
        1,
        "site-survey",
        group,
        3600.0,
        order.order_date,
        state=state,
        priority=str(n % 5),
        due=order.order_date,
    )
    if state != TaskState.QUEUED:
        task.assignee = "farid"
    return task


def seed(store: SqlStore, count: int, end: datetime) -> list[str]:
    step = SPREAD / count
    ids = []
    for first in range(0, count, BATCH):
        orders, plans, manual = [], [], []
        for n in range(first, min(first + BATCH, count)):
            order = build_order(n, end - SPREAD + n * step)
            if not order.is_terminal and n % 7 == 0:
                level = ("atRisk", "inJeopardy", "late")[n % 3]
                order.record_jeopardy(
                    level,
                    name=level,
                    message="projected after the commitment",
                    now=order.order_date,
                    actor="seed",
                )
            orders.append(order)
            plans.append(plan_of(order, n))
            if not order.is_terminal and n % TASK_EVERY == 0:
                manual.append(task_of(order, n))
        with store.transaction(write=True) as tx:
            tx.add_orders(orders)
            for plan in plans:
                tx.plans.add(plan)
            for task in manual:
                tx.tasks.add(task)
        ids.extend(o.id for o in orders)
        print(f"\rseeded {len(ids)} orders", end="", flush=True)
    print()
    open_states = ["acknowledged", "inProgress", "held", "pending"]
    rows = []
    hour = (end - SPREAD).replace(minute=0, second=0, microsecond=0)
    while hour < end:
        rows.extend(
            {"taken_at": format_datetime(hour), "state": s, "orders": 1000 + hash((hour, s)) % 500}
            for s in open_states
        )
        hour += timedelta(hours=1)
    with store.engine.begin() as conn:
        conn.execute(order_state_count.insert(), rows)
    # What the hourly `metrics.snapshot` job has done by now: every day that has ended rolled up.
    with store.transaction(write=True) as tx:
        while roll_up(tx.metrics, now=end):
            pass
    return ids


def timed(client: TestClient, paths: Callable[[int], str], requests: int) -> tuple[list[float], list[float]]:
    """Wall-clock and CPU milliseconds of each request. The CPU time (of this process, which does
    nothing else meanwhile) is what a request costs when the machine is shared: on a busy 2-core
    machine the wall clock also counts the time spent waiting for a core."""
    for i in range(10):
        warm = client.get(paths(i))
        assert warm.status_code == 200, (paths(i), warm.status_code, warm.text[:300])
    wall, cpu = [], []
    for i in range(requests):
        started, started_cpu = time.perf_counter(), time.process_time()
        response = client.get(paths(i))
        wall.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - started_cpu) * 1000)
        assert response.status_code == 200, response.text[:300]
    return wall, cpu


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, int(len(ordered) * p / 100 + 0.999999) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--database", help="an existing seeded store (sqlite:///PATH); default: a new one")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="provtrack-bench-dash-"))
    url = args.database or f"sqlite:///{workdir / 'dashboard.db'}"
    end = datetime.now(UTC)
    engine = create_database_engine(url)
    upgrade_database(engine)
    store = SqlStore(engine)
    with store.transaction(write=False) as tx:
        existing = tx.list_orders(Query(limit=1)).total
    if existing == 0:
        started = time.perf_counter()
        seed(store, args.orders, end)
        print(f"seeding took {time.perf_counter() - started:.0f}s")
    ids = [row[0] for row in engine.connect().exec_driver_sql("SELECT id FROM service_order").all()]
    engine.dispose()
    assembly = Assembly.build(Settings(database_url=url, policy="demo", catalog="demo"))  # its work groups
    rng = random.Random(7)
    pages: dict[str, Callable[[int], str]] = {
        "orders list": lambda _i: "/",
        "orders list, filtered": lambda i: (
            "/?state=inProgress&jeopardyLevel=late",
            "/?state=held",
            "/?category=business&priority=1",
        )[i % 3],
        "orders list, page 40": lambda _i: "/?page=40&sort=orderDate",
        "order page": lambda _i: f"/orders/{rng.choice(ids)}",
        "jeopardy board": lambda _i: "/jeopardy",
        "fallout": lambda _i: "/fallout",
        "work queues": lambda _i: "/queues",
        "work queues, one group": lambda _i: "/queues?workGroup=field-technicians&state=queued",
        "metrics (30 days)": lambda _i: "/performance",
        "metrics (90 days)": lambda _i: "/performance?period=90d",
        "metrics JSON (30 days)": lambda _i: "/provtrack/v1/metrics",
    }
    print(f"{len(ids)} orders; {args.requests} requests per page, in-process (server side), SQLite")
    print(
        f"{'page':28} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'max ms':>8} {'CPU p50':>8} {'CPU p99':>8}"
    )
    # An administrator's key unless PROVTRACK_BENCH_TOKEN gives one; redirects are not followed, so a
    # page that sent the bench to /signin fails instead of timing the sign-in page.
    headers = auth_headers() or admin_headers(url)
    with TestClient(assembly.app(with_worker=False), headers=headers, follow_redirects=False) as client:
        gc.collect()
        gc.freeze()  # as `provtrack serve` does before it serves
        for name, path in pages.items():
            times, cpu = timed(client, path, args.requests)
            print(
                f"{name:28} {statistics.median(times):8.1f} {percentile(times, 90):8.1f} "
                f"{percentile(times, 99):8.1f} {max(times):8.1f} {statistics.median(cpu):8.1f} {percentile(cpu, 99):8.1f}"
            )
    print(f"load average while measuring: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
