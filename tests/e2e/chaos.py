"""Crashes and restarts: while a load generator places orders (each with an Idempotency-Key, retried
until answered) and simulated systems complete them, `provtrack serve` and `provtrack worker` are
killed with SIGKILL at random moments and started again. At the end every order answered 201 must
exist once and be finished, each activity must have exactly one resource order downstream (at a
system that does not drop a repeated externalId), and every event must have reached the subscriber.

The short form runs in the test suite (tests/e2e/test_chaos.py); the long form on demand:

    .venv/bin/python -m tests.e2e.chaos --seconds 600 [--database postgresql://...] [--seed 7]
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text

from provtrack.adapters.store.database import create_database_engine
from provtrack.adapters.store.repository import SqlStore
from provtrack.simulator.resource_ordering import Behaviour, ResourceOrderingSimulator
from provtrack.simulator.serving import serving_in_thread
from tests.e2e.waiting import admin_headers
from tests.integration.receiver import Receiver, free_port

ORDERS = "/tmf-api/serviceOrdering/v4/serviceOrder"
TERMINAL = ("completed", "failed", "partial", "cancelled", "rejected")
LOADS = 3  # clients placing orders at once
CATALOG = """
systems:
  network:
    url: {sim}/network/tmf-api/resourceOrderingManagement/v4
    progress: hub
    pollInterval: PT2S
services:
  fibre:
    add:
      - {{id: reserve-port, system: network, resourceSpecification: olt-port, expectedDuration: PT1M}}
      - {{id: activate-line, system: network, resourceSpecification: profile, after: [reserve-port],
          expectedDuration: PT1M}}
"""


@dataclass
class Figures:
    orders: int = 0  # answered 201
    kills: Counter[str] = field(default_factory=Counter)
    lost: int = 0  # answered 201, not in the database
    duplicated: int = 0  # more than one order for one request
    unfinished: int = 0  # not in a final state at the end
    activities: int = 0
    resource_orders: int = 0
    duplicate_resource_orders: int = 0  # more than one resource order for one activity
    missing_resource_orders: int = 0  # a done activity without its resource order
    events: int = 0  # in the outbox, for these orders
    gaps: int = 0  # in the outbox, never received
    seconds: float = 0.0

    def line(self) -> str:
        return (
            f"chaos: orders={self.orders} kills={sum(self.kills.values())} (serve={self.kills['serve']}, "
            f"worker={self.kills['worker']}) lost={self.lost} duplicated={self.duplicated} "
            f"unfinished={self.unfinished} activities={self.activities} resourceOrders={self.resource_orders} "
            f"duplicateResourceOrders={self.duplicate_resource_orders} missing={self.missing_resource_orders} "
            f"events={self.events} gaps={self.gaps} in {self.seconds:.0f}s"
        )

    @property
    def clean(self) -> bool:
        return not (
            self.lost
            or self.duplicated
            or self.unfinished
            or self.duplicate_resource_orders
            or self.missing_resource_orders
            or self.gaps
        )


class Process:
    """A provtrack process that can be killed and started again."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], logs: Path) -> None:
        self.name, self.command, self.env, self.logs = name, command, env, logs
        self.starts = 0
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.starts += 1
        with (self.logs / f"{self.name}-{self.starts}.log").open("wb") as log:
            self.popen = subprocess.Popen(self.command, env=self.env, stdout=log, stderr=subprocess.STDOUT)

    def kill(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.send_signal(signal.SIGKILL)
            self.popen.wait(timeout=10)

    def stop(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


class Chaos:
    def __init__(
        self,
        database_url: str,
        workdir: Path,
        *,
        seconds: float | None = None,
        kills: int | None = None,
        seed: int,
        rate: float,
    ) -> None:
        """Kill for `seconds`, or `kills` times (alternately serve and worker)."""
        self.database_url, self.workdir, self.rate = database_url, workdir, rate
        self.seconds, self.kills = seconds, kills
        self.random = random.Random(seed)
        self.figures = Figures()
        self.answered: dict[str, str] = {}  # externalId -> order id
        self.stop_load = threading.Event()

    def run(self) -> Figures:
        started = time.monotonic()
        simulator = ResourceOrderingSimulator(Behaviour(delay=0.3, deduplicate=False, seed=1))
        receiver = Receiver().start()
        with serving_in_thread(simulator.app()) as sim_url:
            try:
                self._run(simulator, sim_url, receiver)
            finally:
                receiver.stop()
        self.figures.seconds = time.monotonic() - started
        return self.figures

    def _run(self, simulator: ResourceOrderingSimulator, sim_url: str, receiver: Receiver) -> None:
        catalog = self.workdir / "catalog.yaml"
        catalog.write_text(CATALOG.format(sim=sim_url))
        port = free_port()
        self.base = f"http://127.0.0.1:{port}"
        env = {
            **os.environ,
            "PROVTRACK_DATABASE_URL": self.database_url,
            "PROVTRACK_CATALOG": str(catalog),
            "PROVTRACK_PORT": str(port),
            "PROVTRACK_WORKER_LEASE_SECONDS": "2",
            "PROVTRACK_WORKER_POLL_SECONDS": "0.2",
            "PROVTRACK_IDEMPOTENCY_LEASE_SECONDS": "2",
            "PROVTRACK_EVENTS_CALLBACK_ALLOW": "127.0.0.1",
            "PROVTRACK_LOG_LEVEL": "warning",
        }
        self.headers = admin_headers(self.database_url)  # migrates the database first
        provtrack = [sys.executable, "-m", "provtrack"]
        roles = {
            "serve": Process("serve", [*provtrack, "serve"], env, self.workdir),
            "worker": Process("worker", [*provtrack, "worker"], env, self.workdir),
        }
        for process in roles.values():
            process.start()
        try:
            self._wait(lambda: self._answers("/provtrack/v1/health"), 30, "serve to answer")
            subscribed = httpx.post(
                f"{self.base}/tmf-api/serviceOrdering/v4/hub",
                json={"callback": receiver.url},
                headers=self.headers,
            )
            assert subscribed.status_code == 201, subscribed.text
            loads = [
                threading.Thread(target=self._load, args=(n,), name=f"chaos-load-{n}") for n in range(LOADS)
            ]
            for load in loads:
                load.start()
            deadline = time.monotonic() + (self.seconds or 0)
            victims = ["serve", "worker"]
            while self._killing(deadline):
                time.sleep(self.random.uniform(0.5, 2.5))  # a random point of whatever it is doing
                victim = victims[sum(self.figures.kills.values()) % 2]
                roles[victim].kill()
                self.figures.kills[victim] += 1
                time.sleep(self.random.uniform(0.0, 0.5))  # the other role works alone a moment
                roles[victim].start()
                if victim == "serve":  # killed again only once it serves: each kill hits work
                    self._wait(lambda: self._answers("/provtrack/v1/health"), 30, "serve to restart")
            self.stop_load.set()
            for load in loads:
                load.join(timeout=90)
            self.figures.orders = len(self.answered)
            self._wait(
                lambda: self._answers("/provtrack/v1/health"), 30, "serve to answer after the last kill"
            )
            self._settle(simulator, receiver, timeout=max(30.0, self.seconds or 0))
        finally:
            for process in roles.values():
                process.stop()

    def _killing(self, deadline: float) -> bool:
        if self.kills is not None:
            return sum(self.figures.kills.values()) < self.kills
        return time.monotonic() < deadline

    # --- the load -----------------------------------------------------------------------------

    def _load(self, lane: int) -> None:
        """Orders at `rate / LOADS` per second, each retried with its Idempotency-Key until answered."""
        number = 0
        with httpx.Client(base_url=self.base, headers=self.headers, timeout=10) as client:
            while not self.stop_load.is_set():
                number += 1
                external_id = f"CH-{lane}-{number}"
                body = {
                    "externalId": external_id,
                    "serviceOrderItem": [
                        {"id": "1", "action": "add", "service": {"serviceSpecification": {"id": "fibre"}}}
                    ],
                }
                key = {"Idempotency-Key": str(uuid.uuid4())}
                for _ in range(600):  # a minute of retries at most (the server restarts in seconds)
                    try:
                        response = client.post(ORDERS, json=body, headers=key)
                    except httpx.TransportError:
                        time.sleep(0.1)
                        continue
                    if response.status_code == 201:
                        self.answered[external_id] = response.json()["id"]
                        break
                    if response.status_code in (409, 503):  # still held by a request that died
                        time.sleep(0.1)
                        continue
                    raise AssertionError(f"{external_id}: {response.status_code} {response.text}")
                time.sleep(LOADS / self.rate)

    # --- the end --------------------------------------------------------------------------------

    def _settle(self, simulator: ResourceOrderingSimulator, receiver: Receiver, *, timeout: float) -> None:
        store = SqlStore(create_database_engine(self.database_url))
        try:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                self._check(store, simulator, receiver)
                if self.figures.clean:
                    return
                time.sleep(0.5)
        finally:
            store.dispose()

    def _check(self, store: SqlStore, simulator: ResourceOrderingSimulator, receiver: Receiver) -> None:
        figures = self.figures
        with store.engine.connect() as conn:
            rows = conn.execute(text("SELECT id, external_id, state FROM service_order")).all()
            outbox = conn.execute(
                text("SELECT event_id, service_order_id FROM outbox_event ORDER BY id")
            ).all()
        ours = [r for r in rows if (r.external_id or "").startswith("CH-")]
        by_external = Counter(r.external_id for r in ours)
        stored = {r.id: r for r in ours}
        figures.lost = sum(1 for order_id in self.answered.values() if order_id not in stored)
        figures.duplicated = sum(count - 1 for count in by_external.values() if count > 1)
        figures.unfinished = sum(
            1
            for order_id in self.answered.values()
            if order_id in stored and stored[order_id].state not in TERMINAL
        )
        activities = []
        with store.transaction(write=False) as tx:
            for order_id in stored:
                plan = tx.plans.get(order_id)
                activities += [] if plan is None else list(plan.activities)
        per_activity = Counter(str(o.get("externalId", "")).split(".")[0] for o in simulator.created())
        figures.activities = len(activities)
        figures.resource_orders = sum(per_activity.values())
        figures.duplicate_resource_orders = sum(n - 1 for n in per_activity.values() if n > 1)
        figures.missing_resource_orders = sum(
            1 for a in activities if a.state.value == "done" and per_activity[a.id] == 0
        )
        received = {r.headers.get("webhook-id") for r in list(receiver.accepted)}
        events = [e for e in outbox if e.service_order_id in stored]
        figures.events = len(events)
        figures.gaps = sum(1 for e in events if e.event_id not in received)

    def _answers(self, path: str) -> bool:
        try:
            return httpx.get(f"{self.base}{path}", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    @staticmethod
    def _wait(condition: Any, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            time.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--seconds", type=float, default=600, help="how long the killing goes on")
    parser.add_argument("--kills", type=int, help="kill this many times instead")
    parser.add_argument("--rate", type=float, default=10, help="orders per second")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--database", help="default: a fresh SQLite file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        database = args.database or f"sqlite:///{Path(tmp) / 'chaos.db'}"
        chaos = Chaos(
            database, Path(tmp), seconds=args.seconds, kills=args.kills, seed=args.seed, rate=args.rate
        )
        figures = chaos.run()
    print(figures.line())
    sys.exit(0 if figures.clean else 1)


if __name__ == "__main__":
    main()
