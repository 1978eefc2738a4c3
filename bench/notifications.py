"""Benchmark event notifications: commit -> delivery delay and delivered events per second.

Starts `provtrack serve` (its worker delivers the events) on a fresh database, and webhook receivers
in this process on loopback. Measures, for ServiceOrderCreateEvent:

1. light load: orders created one at a time at --rate per second; delay = arrival at the receiver
   minus the event's eventTime (taken by the server just before the commit, millisecond precision);
2. the same with a second, dead subscriber (a socket that accepts and never answers, so each attempt
   to it lasts the whole per-attempt timeout): the live subscriber's delays must not change;
3. throughput: a burst of --burst orders from 8 concurrent clients; events delivered per second from
   the first create to the last arrival (bounded by how fast orders are created);
4. backlog drain: a subscriber that was down while --burst orders were created comes back; events
   delivered per second from its first to its last arrival (delivery alone);
5. replay: a subscriber refused (422) the events of --replay orders, so they are dead letters; it
   answers 204 again and the operator replays them all (POST /deadLetter/replay) while orders keep
   being created at --rate, whose events go to the same subscriber: the time from the replay request
   to the last replayed arrival, whether they arrived in dead-letter order, and the live events'
   commit->delivery delays meanwhile.

    python bench/notifications.py [--orders 300] [--rate 20] [--burst 2000] [--replay 1000]
                                  [--phases light,dead,burst,drain,replay]
                                  [--database postgresql://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import orjson
from auth import auth_headers
from bodies import order_body

API = "/tmf-api/serviceOrdering/v4"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Receiver:
    """Records (arrival wall time, eventTime, correlationId, eventId) of every event it accepts;
    answers `status` (204)."""

    def __init__(self, port: int = 0) -> None:
        self.arrivals: list[tuple[float, str, str, str]] = []
        self.status = 204
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                arrived = time.time()
                event = orjson.loads(body)
                status = receiver.status
                if status < 300:
                    with receiver.lock:
                        receiver.arrivals.append(
                            (arrived, event["eventTime"], event["correlationId"], event["eventId"])
                        )
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/events"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def count(self) -> int:
        with self.lock:
            return len(self.arrivals)

    def delays_ms(self, since: int) -> list[float]:
        with self.lock:
            rows = self.arrivals[since:]
        return [(arrived - datetime.fromisoformat(stamp).timestamp()) * 1000 for arrived, stamp, *_ in rows]


@contextmanager
def blackhole() -> Iterator[str]:
    """A listener that accepts connections into its backlog and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(4096)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/dead"
    finally:
        sock.close()


@contextmanager
def server(database: str, workdir: Path) -> Iterator[str]:
    port = free_port()
    env = {
        **os.environ,
        "PROVTRACK_EVENTS_CALLBACK_ALLOW": "127.0.0.1",
        "PROVTRACK_ACCEPT_ORDERS_WITHOUT_CATALOG": "true",  # events only: no plan, no engine
        "PROVTRACK_LOG_LEVEL": "warning",
    }
    command = [sys.executable, "-m", "provtrack", "serve", "--port", str(port), "--database", database]
    with (workdir / "serve.log").open("wb") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if (
                        httpx.get(f"{base}{API}/serviceOrder?limit=1", headers=auth_headers()).status_code
                        == 200
                    ):
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline or process.poll() is not None:
                    raise SystemExit(f"provtrack serve did not start; see {workdir / 'serve.log'}")
                time.sleep(0.05)
            yield base
        finally:
            process.terminate()
            process.wait(timeout=30)


def wait_until(receiver: Receiver, count: int, *, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while receiver.count() < count:
        if time.monotonic() > deadline:
            raise SystemExit(f"only {receiver.count()} of {count} events arrived")
        time.sleep(0.005)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def light_load(base: str, live: Receiver, *, orders: int, rate: float) -> list[float]:
    start = live.count()
    with httpx.Client(base_url=base, headers=auth_headers()) as client:
        for n in range(orders):
            due = time.monotonic() + 1 / rate
            assert client.post(f"{API}/serviceOrder", json=order_body(n)).status_code == 201
            time.sleep(max(0.0, due - time.monotonic()))
    wait_until(live, start + orders)
    return live.delays_ms(start)


def burst(base: str, live: Receiver, *, orders: int) -> float:
    start = live.count()
    began = time.time()

    def create(chunk: range) -> None:
        with httpx.Client(base_url=base, headers=auth_headers()) as client:
            for n in chunk:
                client.post(f"{API}/serviceOrder", json=order_body(n))

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(create, [range(i, orders, 8) for i in range(8)]))
    wait_until(live, start + orders)
    with live.lock:
        last = max(a for a, *_ in live.arrivals[start:])
    return orders / (last - began)


def drain(base: str, *, orders: int) -> float:
    port = free_port()
    callback = f"http://127.0.0.1:{port}/events"  # nothing listens yet: connection refused
    assert (
        httpx.post(f"{base}{API}/hub", json={"callback": callback}, headers=auth_headers()).status_code == 201
    )

    def create(chunk: range) -> None:
        with httpx.Client(base_url=base, headers=auth_headers()) as client:
            for n in chunk:
                client.post(f"{API}/serviceOrder", json=order_body(n))

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(create, [range(i, orders, 8) for i in range(8)]))
    back = Receiver(port)
    try:
        wait_until(back, orders, timeout=300)
        with back.lock:
            arrivals = [a for a, *_ in back.arrivals]
    finally:
        back.server.shutdown()
    return orders / (max(arrivals) - min(arrivals))


def create_orders(base: str, count: int) -> None:
    def create(chunk: range) -> None:
        with httpx.Client(base_url=base, headers=auth_headers()) as client:
            for n in chunk:
                client.post(f"{API}/serviceOrder", json=order_body(n))

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(create, [range(i, count, 8) for i in range(8)]))


def dead_letters(base: str, subscription: str, count: int, *, timeout: float = 300) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        letters = httpx.get(
            f"{base}/provtrack/v1/deadLetter", params={"subscription": subscription}, headers=auth_headers()
        ).json()
        if len(letters) >= count:
            return letters  # type: ignore[no-any-return]
        if time.monotonic() > deadline:
            raise SystemExit(f"only {len(letters)} of {count} dead letters")
        time.sleep(0.2)


@dataclass
class Replayed:
    seconds: float  # from the replay request to the last replayed arrival
    in_order: bool
    live: list[float]  # commit->delivery of the live events created during the replay, ms


def replay(base: str, live: Receiver, *, letters: int, rate: float) -> Replayed:
    backlog = live.count() + letters  # the live subscriber gets these orders' events too
    target = Receiver()
    target.status = 422  # refused: each event is dead-lettered at once
    subscription = httpx.post(
        f"{base}{API}/hub", json={"callback": target.url}, headers=auth_headers()
    ).json()["id"]
    create_orders(base, letters)
    dead = [d["eventId"] for d in dead_letters(base, subscription, letters)]
    wait_until(live, backlog)  # nothing else is queued when the replay starts
    target.status = 204
    live_orders: set[str] = set()
    stop = threading.Event()

    def live_load() -> None:
        with httpx.Client(base_url=base, headers=auth_headers()) as client:
            n = 0
            while not stop.is_set():
                due = time.monotonic() + 1 / rate
                live_orders.add(client.post(f"{API}/serviceOrder", json=order_body(n)).json()["id"])
                n += 1
                stop.wait(max(0.0, due - time.monotonic()))

    loader = threading.Thread(target=live_load)
    loader.start()
    time.sleep(0.5)  # live load running before the replay starts
    began = time.time()
    queued = httpx.post(
        f"{base}/provtrack/v1/deadLetter/replay", json={"subscription": subscription}, headers=auth_headers()
    ).json()
    assert len(queued["queued"]) == letters
    wanted = set(dead)
    deadline = time.monotonic() + 300
    while True:
        with target.lock:
            replayed = [(a, e) for a, _, _, e in target.arrivals if e in wanted]
        if len({e for _, e in replayed}) == letters:
            break
        if time.monotonic() > deadline:
            raise SystemExit(f"only {len(replayed)} of {letters} dead letters replayed")
        time.sleep(0.005)
    stop.set()
    loader.join()
    ended = max(a for a, _ in replayed)
    with target.lock:
        live = [
            (arrived - datetime.fromisoformat(stamp).timestamp()) * 1000
            for arrived, stamp, order, _ in target.arrivals
            if order in live_orders and began <= arrived <= ended
        ]
    target.server.shutdown()
    return Replayed(ended - began, [e for _, e in replayed] == dead, live)


def summary(name: str, delays: list[float]) -> str:
    return (
        f"{name:<44} n={len(delays):<5} p50={statistics.median(delays):7.1f} ms  "
        f"p99={percentile(delays, 0.99):7.1f} ms  max={max(delays):7.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--orders", type=int, default=300, help="orders per light-load phase")
    parser.add_argument("--rate", type=float, default=20.0, help="orders per second at light load")
    parser.add_argument("--burst", type=int, default=2000, help="orders in the throughput burst")
    parser.add_argument("--replay", type=int, default=1000, help="dead letters in the replay phase")
    parser.add_argument("--phases", default="light,dead,burst,drain,replay", help="which phases to run")
    parser.add_argument("--database", help="default: a fresh SQLite file")
    args = parser.parse_args()
    phases = set(args.phases.split(","))

    results: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        database = args.database or f"sqlite:///{workdir / 'provtrack.db'}"
        live = Receiver()
        with server(database, workdir) as base:
            assert (
                httpx.post(
                    f"{base}{API}/hub", json={"callback": live.url}, headers=auth_headers()
                ).status_code
                == 201
            )
            light_load(base, live, orders=20, rate=args.rate)  # warm-up
            if "light" in phases:
                alone = light_load(base, live, orders=args.orders, rate=args.rate)
                results.append(summary("commit->delivery, one live subscriber", alone))
            if "dead" in phases:
                with blackhole() as dead_url:
                    dead = httpx.post(
                        f"{base}{API}/hub", json={"callback": dead_url}, headers=auth_headers()
                    ).json()
                    with_dead = light_load(base, live, orders=args.orders, rate=args.rate)
                    httpx.delete(f"{base}{API}/hub/{dead['id']}")
                results.append(summary("commit->delivery, live beside a dead subscriber", with_dead))
            if "burst" in phases:
                rate = burst(base, live, orders=args.burst)
                label = f"throughput, burst of {args.burst} orders (8 clients)"
                results.append(f"{label:<44} {rate:7.0f} events/s")
            if "drain" in phases:
                drained = drain(base, orders=args.burst)
                results.append(
                    f"{'backlog drain after an outage, ' + str(args.burst) + ' events':<44} {drained:7.0f} events/s"
                )
            if "replay" in phases:
                replayed = replay(base, live, letters=args.replay, rate=args.rate)
                label = f"replay of {args.replay} dead letters"
                order = "in order" if replayed.in_order else "OUT OF ORDER"
                results.append(f"{label:<44} {replayed.seconds:7.2f} s ({order})")
                results.append(summary("commit->delivery of live events meanwhile", replayed.live))
        live.server.shutdown()

    store = "SQLite" if database.startswith("sqlite") else "PostgreSQL"
    print(f"provtrack notifications, {store}, {os.cpu_count()} CPUs, {args.rate:g} orders/s light load")
    for line in results:
        print(line)


if __name__ == "__main__":
    main()
