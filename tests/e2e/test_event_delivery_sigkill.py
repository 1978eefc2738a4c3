"""A server killed (SIGKILL) after committing an event but before delivering it delivers it on restart."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx

from provtrack.domain.webhooks import verify
from tests.e2e.waiting import admin_headers, wait_for
from tests.factories import order_body
from tests.integration.receiver import Receiver, free_port

API = "/tmf-api/serviceOrdering/v4"


@contextmanager
def server(tmp_path: Path, database: str, port: int, name: str) -> Iterator[subprocess.Popen[bytes]]:
    env = {
        **os.environ,
        "PROVTRACK_EVENTS_CALLBACK_ALLOW": "127.0.0.1",
        "PROVTRACK_ACCEPT_ORDERS_WITHOUT_CATALOG": "true",  # events only: no plan, no engine
        "PROVTRACK_WORKER_LEASE_SECONDS": "1",
        "PROVTRACK_WORKER_POLL_SECONDS": "0.1",
        "PROVTRACK_LOG_LEVEL": "warning",
    }
    command = [sys.executable, "-m", "provtrack", "serve", "--port", str(port), "--database", database]
    with (tmp_path / f"{name}.log").open("wb") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_for(lambda: _up(port), timeout=30, what=f"the {name} server to answer")
            yield process
        finally:
            if process.poll() is None:
                process.kill()
            process.wait(timeout=10)


def _up(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/provtrack/v1/health").status_code == 200
    except httpx.TransportError:
        return False


def test_an_event_committed_before_a_sigkill_is_delivered_after_the_restart(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'provtrack.db'}"
    port = free_port()
    receiver = Receiver().start()
    receiver.stall = 1  # the first delivery is left hanging: the server dies with it in flight
    headers = admin_headers(database)
    try:
        with server(tmp_path, database, port, "first") as first:
            base = f"http://127.0.0.1:{port}{API}"
            secret = httpx.post(f"{base}/hub", json={"callback": receiver.url}, headers=headers).json()[
                "secret"
            ]
            created = httpx.post(f"{base}/serviceOrder", json=order_body(), headers=headers)
            assert created.status_code == 201
            order_id = created.json()["id"]
            wait_for(lambda: receiver.requests == 1, timeout=10, what="the delivery attempt")
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=10)
        assert receiver.accepted == []

        with server(tmp_path, database, port, "second"):
            wait_for(lambda: len(receiver.accepted) == 1, timeout=30, what="the event after the restart")
    finally:
        receiver.stop()

    [delivered] = receiver.accepted
    assert delivered.event["eventType"] == "ServiceOrderCreateEvent"
    assert delivered.event["correlationId"] == order_id
    stamp = datetime.fromtimestamp(int(delivered.headers["webhook-timestamp"]), UTC)
    verify(secret, delivered.headers, delivered.body, now=stamp)
