"""Jeopardy at scale: many open orders, exact timers, and what it costs when nothing is due.

Seeds open orders in bulk into SQLite (documents built by the domain as the API and engine would store
them, a two-activity plan each, two audit rows and ONE jeopardy timer each, due over the next days),
then measures with the real worker (`Worker.serve`, real clock):

1. delay from a threshold instant to the alert being committed, for `--measure` orders whose
   overrun instant falls in the next seconds (the job's due time is the threshold instant);
2. worker CPU while nothing is due (time.process_time over a window of wall time);
3. `provtrack policy simulate demo` over all open orders (a subprocess, wall time).

    python bench/jeopardy.py --orders 1000000
    python bench/jeopardy.py --orders 100000 --database /tmp/j.db --reuse
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from bodies import order_body
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from provtrack.adapters.policy_file import ReloadingPolicy
from provtrack.adapters.store.database import create_database_engine
from provtrack.adapters.store.migrate import upgrade_database
from provtrack.adapters.store.repository import SqlStore
from provtrack.domain.activities import Activity, ActivityState
from provtrack.domain.catalog import ActivityKind
from provtrack.domain.clock import format_datetime
from provtrack.domain.jobs import Job
from provtrack.domain.model import ServiceOrder
from provtrack.domain.states import OrderState
from provtrack.domain.validation import validate_new_order
from provtrack.domain.webhooks import Attempt
from provtrack.engine.jeopardy import JeopardyEngine
from provtrack.engine.worker import Worker
from provtrack.services import jeopardy
from provtrack.services.jeopardy import JeopardyMonitor

console = Console()
BATCH = 5_000
HOUR = timedelta(hours=1)


class NoNetwork:
    """Escalation webhooks are not the subject here: answered at once, never sent."""

    def post(
        self, url: str, body: bytes, headers: dict[str, str], *, subscriber: str, probing: bool = False
    ) -> Attempt:
        return Attempt(204)


def template(now: datetime) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One order document and its two activities, as the engine stores them after planning."""
    stamp = format_datetime(now)
    order = ServiceOrder.accept(validate_new_order(order_body(0)), order_id="T", now=stamp, actor="seed")
    order.move_to(OrderState.IN_PROGRESS, now=stamp, actor="seed")
    activities = [
        Activity(
            "T-1", "T", "1", "reserve-port", ActivityKind.RESOURCE_ORDER, "network-inventory", [], 3600.0
        ),
        Activity(
            "T-2", "T", "1", "activate-line", ActivityKind.RESOURCE_ORDER, "activation", ["T-1"], 7200.0
        ),
    ]
    activities[0].state = ActivityState.IN_PROGRESS
    activities[0].attempt = 1
    return order.to_document(), [a.to_document() for a in activities]


def seed(url: str, orders: int, measure: int, now: datetime) -> list[str]:
    """Bulk-insert `orders` open orders; the first `measure` overrun within seconds. Returns those ids."""
    engine = create_database_engine(url)
    upgrade_database(engine)
    order_doc, activity_docs = template(now)
    raw = engine.raw_connection()
    measured: list[str] = []
    columns = (TextColumn("seeding"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    try:
        cursor = raw.cursor()
        cursor.execute("PRAGMA synchronous=OFF")
        with Progress(*columns, console=console) as progress:
            task = progress.add_task("orders", total=orders)
            for start in range(0, orders, BATCH):
                rows = _batch(
                    start,
                    min(orders, start + BATCH),
                    measure=measure,
                    now=now,
                    order_doc=order_doc,
                    activity_docs=activity_docs,
                )
                measured += rows.pop("measured")
                cursor.executemany(
                    "INSERT INTO service_order (id, state, order_date, external_id, category, priority, "
                    "requested_completion_date, state_before_cancellation, version, document) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, NULL, 1, ?)",
                    rows["order"],
                )
                cursor.executemany(
                    "INSERT INTO audit_record (service_order_id, subject, attribute, old_value, new_value, at, actor) "
                    "VALUES (?, 'serviceOrder', 'state', ?, ?, ?, 'seed')",
                    rows["audit"],
                )
                cursor.executemany(
                    "INSERT INTO provisioning_plan (service_order_id, created_at, version, document) VALUES (?, ?, 1, ?)",
                    rows["plan"],
                )
                cursor.executemany(
                    "INSERT INTO activity (id, service_order_id, item_id, state, owner, external_id, document) "
                    "VALUES (?, ?, '1', ?, ?, NULL, ?)",
                    rows["activity"],
                )
                cursor.executemany(
                    "INSERT INTO job (kind, key, due_at, payload, attempts, created_at) VALUES ('jeopardy.check', ?, ?, '{}', 0, ?)",
                    rows["job"],
                )
                raw.commit()
                progress.advance(task, min(BATCH, orders - start))
        cursor.execute("ANALYZE")
        raw.commit()
    finally:
        raw.close()
        engine.dispose()
    return measured


def _batch(
    start: int,
    end: int,
    *,
    measure: int,
    now: datetime,
    order_doc: dict[str, Any],
    activity_docs: list[dict[str, Any]],
) -> dict[str, Any]:
    rows: dict[str, Any] = {k: [] for k in ("order", "audit", "plan", "activity", "job", "measured")}
    for n in range(start, end):
        order_id = f"o-{n:08d}"
        body = order_body(n)
        if n < measure:
            # Overruns (1 h expected, 25 % threshold) 5-25 s from the start of the measurement.
            threshold = now + timedelta(seconds=5 + 20 * n / max(1, measure))
            rows["measured"].append(order_id)
        else:
            threshold = now + timedelta(days=1) + timedelta(seconds=(n * 7919) % (9 * 86400))
        started = threshold - 1.25 * HOUR
        order_date = started - timedelta(minutes=5)
        doc = dict(order_doc)
        doc.update(
            id=order_id,
            externalId=body["externalId"],
            priority=body["priority"],
            category=body["category"],
            relatedParty=body["relatedParty"],
            orderDate=format_datetime(order_date),
            startDate=format_datetime(started),
            requestedCompletionDate=format_datetime(threshold + timedelta(days=10)),
            expectedCompletionDate=format_datetime(started + 3 * HOUR),
        )
        del doc["requestedStartDate"]
        held = n >= measure and n % 50 == 3  # a typical backlog: some held on fallout, some in trouble
        if held:
            doc["state"] = "held"
        if n >= measure and n % 20 == 0:  # half the business orders
            doc["jeopardyAlert"] = [
                {
                    "id": "1",
                    "alertDate": format_datetime(started + HOUR),
                    "jeopardyType": "inJeopardy",
                    "name": "order in jeopardy",
                    "message": "projected after the commitment",
                    "@type": "JeopardyAlert",
                }
            ]
        rows["order"].append(
            (
                order_id,
                doc["state"],
                doc["orderDate"],
                body["externalId"],
                body["category"],
                body["priority"],
                doc["requestedCompletionDate"],
                orjson.dumps(doc).decode(),
            )
        )
        rows["audit"].append((order_id, None, '"acknowledged"', doc["orderDate"]))
        rows["audit"].append((order_id, '"acknowledged"', '"inProgress"', doc["startDate"]))
        if held:
            rows["audit"].append((order_id, '"inProgress"', '"held"', format_datetime(started + HOUR)))
        ids = [f"{order_id}-1", f"{order_id}-2"]
        plan = {
            "serviceOrderId": order_id,
            "createdAt": doc["orderDate"],
            "started": True,
            "itemWaits": {"1": []},
            "criticalPath": ids,
            "activityOrder": ids,
        }
        rows["plan"].append((order_id, doc["orderDate"], orjson.dumps(plan).decode()))
        for i, template_doc in enumerate(activity_docs):
            activity = dict(template_doc)
            activity.update(id=ids[i], serviceOrderId=order_id)
            if i == 0:
                activity["actualStartDate"] = doc["startDate"]
            else:
                activity["predecessors"] = [ids[0]]
            rows["activity"].append(
                (ids[i], order_id, activity["state"], activity["owner"], orjson.dumps(activity).decode())
            )
        rows["job"].append((order_id, format_datetime(threshold), doc["orderDate"]))
    return rows


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))]


def measure_alerts(url: str, measured: list[str], idle_seconds: float) -> dict[str, Any]:
    monitor = JeopardyMonitor(ReloadingPolicy("demo"))
    store = SqlStore(create_database_engine(url), after_change=(monitor.after_change,))
    handlers = JeopardyEngine(store, NoNetwork()).handlers()
    delays: list[float] = []
    check = handlers[jeopardy.CHECK_JOB]

    def timed(job: Job, now: datetime) -> None:
        check(job, now)  # commits the alert
        delays.append((datetime.now(UTC) - job.due_at).total_seconds())

    handlers[jeopardy.CHECK_JOB] = timed
    worker = Worker(store, handlers, clock=lambda: datetime.now(UTC), threads=4)
    thread = threading.Thread(target=worker.serve, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    with console.status("waiting for the threshold instants"):
        while len(delays) < len(measured) and time.monotonic() < deadline:
            time.sleep(0.2)
    alerts = 0
    with store.transaction(write=False) as tx:
        for order_id in measured:
            order = tx.get_order(order_id)
            alerts += bool(order and order.jeopardy_level == "atRisk")
    # Nothing is due for a day now: the worker only waits (wake-ups at most once a second).
    wall, cpu = time.monotonic(), time.process_time()
    time.sleep(idle_seconds)
    idle = (time.process_time() - cpu) / (time.monotonic() - wall)
    worker.stop()
    thread.join(timeout=10)
    store.dispose()
    return {"delays": delays, "alerts": alerts, "idle_cpu": idle}


def measure_simulate(url: str, at: datetime) -> float:
    started = time.monotonic()
    command = [
        str(Path(sys.executable).parent / "provtrack"), "policy", "simulate", "demo",
        "--database", url, "--at", format_datetime(at), "--show", "0",
    ]  # fmt: skip
    result = subprocess.run(command, check=True, capture_output=True, text=True)
    elapsed = time.monotonic() - started
    console.print(result.stdout.strip().splitlines()[0])
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument(
        "--measure", type=int, default=300, help="orders whose threshold comes during the run"
    )
    parser.add_argument("--database", default="/tmp/provtrack-bench-jeopardy.db")
    parser.add_argument("--idle-seconds", type=float, default=20.0)
    parser.add_argument(
        "--reuse", action="store_true", help="keep an existing database (re-arms the measured orders)"
    )
    args = parser.parse_args()
    path = Path(args.database)
    url = f"sqlite:///{path}"
    now = datetime.now(UTC)
    if not (args.reuse and path.exists()):
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        started = time.monotonic()
        seed(url, args.orders, args.measure, now)
        console.print(f"seeded {args.orders} open orders in {time.monotonic() - started:.0f} s")
    measured = rearm(url, args.measure, datetime.now(UTC))  # thresholds just ahead of the measurement
    results = measure_alerts(url, measured, args.idle_seconds)
    delays = results["delays"]
    simulate_seconds = measure_simulate(url, now + timedelta(days=12))  # every seeded order has begun
    console.print(
        f"orders {args.orders}: alerts {results['alerts']}/{len(measured)}; threshold→commit "
        f"p50 {statistics.median(delays) * 1000:.0f} ms, p99 {percentile(delays, 99) * 1000:.0f} ms, "
        f"max {max(delays) * 1000:.0f} ms; idle worker CPU {results['idle_cpu'] * 100:.2f} % of one core; "
        f"policy simulate {simulate_seconds:.1f} s; cpus {os.cpu_count()}"
    )


def rearm(url: str, measure: int, now: datetime) -> list[str]:
    """On a reused database: reset the measured orders to onTrack with thresholds just ahead."""
    engine = create_database_engine(url)
    order_doc, activity_docs = template(now)
    rows = _batch(0, measure, measure=measure, now=now, order_doc=order_doc, activity_docs=activity_docs)
    with engine.begin() as conn:
        raw = conn.connection.driver_connection
        assert raw is not None
        raw.executemany(
            "UPDATE service_order SET document = ?, version = version + 1 WHERE id = ?",
            [(r[7], r[0]) for r in rows["order"]],
        )
        raw.executemany(
            "UPDATE activity SET document = ? WHERE id = ?", [(r[4], r[0]) for r in rows["activity"]]
        )
        raw.executemany(
            "INSERT INTO job (kind, key, due_at, payload, attempts, created_at) VALUES ('jeopardy.check', ?, ?, '{}', 0, ?) "
            "ON CONFLICT (kind, key) DO UPDATE SET due_at = excluded.due_at, failed_at = NULL, lease_owner = NULL, "
            "lease_expires_at = NULL",
            rows["job"],
        )
    engine.dispose()
    return list(rows["measured"])


if __name__ == "__main__":
    main()
