"""The documented scale-out deployment, `serve --no-worker` beside a `provtrack worker` process,
assembles the engine as `serve` does: it subscribes to the hubs of the catalog's systems, and an
order at a system that only notifies completes within seconds, not at the next safety poll."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from provtrack.adapters.store.repository import SqlStore
from tests.e2e.waiting import admin_headers, wait_for
from tests.integration.receiver import free_port
from tests.integration.tmf import ORDERS

TMF652 = "/activation/tmf-api/resourceOrderingManagement/v4"
# One system, notifying through its hub only: the safety poll comes after an hour.
CATALOG = """
systems:
  activation:
    url: {system}{tmf652}
    progress: hub
    pollInterval: PT1H
services:
  broadband:
    add:
      - {{id: activate-line, system: activation, resourceSpecification: broadband-profile,
          expectedDuration: PT1M}}
"""


class NotifyingSystem:
    """A TMF652 system on loopback that answers a POST `acknowledged` and then tells its hub
    subscribers `inProgress` and `completed`; it never changes an order otherwise."""

    def __init__(self) -> None:
        self.subscribers: list[str] = []
        self.orders: dict[str, dict[str, Any]] = {}
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        system = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                if self.path.endswith("/hub"):
                    with system.lock:
                        system.subscribers.append(body["callback"])
                    self._answer(201, {"id": uuid.uuid4().hex, "callback": body["callback"]})
                    return
                order = {**body, "id": uuid.uuid4().hex, "state": "acknowledged"}
                with system.lock:
                    system.orders[order["id"]] = order
                self._answer(201, order)
                threading.Thread(target=system.progress, args=(order,), daemon=True).start()

            def do_GET(self) -> None:
                order = system.orders.get(self.path.rsplit("/", 1)[-1])
                self._answer(200 if order else 404, order or {})

            def _answer(self, status: int, body: dict[str, Any]) -> None:
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler

    def progress(self, order: dict[str, Any]) -> None:
        for state in ("inProgress", "completed"):
            order["state"] = state
            event = {
                "eventId": uuid.uuid4().hex,
                "eventType": "ResourceOrderStateChangeEvent",
                "event": {"resourceOrder": dict(order)},
            }
            for callback in list(self.subscribers):
                httpx.post(f"{callback}/listener/resourceOrderStateChangeEvent", json=event, timeout=10)

    def __enter__(self) -> NotifyingSystem:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def system() -> Iterator[NotifyingSystem]:
    with NotifyingSystem() as running:
        yield running


def started(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        raise


def test_an_order_at_a_notifying_system_completes_with_serve_no_worker_beside_a_worker(
    tmp_path: Path, system: NotifyingSystem, store: SqlStore, database_url: str
) -> None:
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(CATALOG.format(system=system.url, tmf652=TMF652))
    port = free_port()
    env = {
        **os.environ,
        "PROVTRACK_DATABASE_URL": database_url,
        "PROVTRACK_CATALOG": str(catalog),
        "PROVTRACK_PORT": str(port),  # the worker subscribes with the API's address
        "PROVTRACK_LOG_LEVEL": "info",
    }
    provtrack = [sys.executable, "-m", "provtrack"]
    api = started([*provtrack, "serve", "--no-worker"], env, tmp_path / "serve.log")
    worker = started([*provtrack, "worker"], env, tmp_path / "worker.log")
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _answers(f"{base}/provtrack/v1/health"), timeout=30, what="serve to answer")
        # The order may be sent while the worker is still subscribing: what the system says before
        # the subscription is read once it is made (or once the POST's answer is recorded).
        headers = admin_headers(database_url)
        item = {"id": "1", "action": "add", "service": {"serviceSpecification": {"id": "broadband"}}}
        created = httpx.post(
            f"{base}{ORDERS}", json={"serviceOrderItem": [item]}, timeout=10, headers=headers
        )
        assert created.status_code == 201, created.text
        order_url = f"{base}{ORDERS}/{created.json()['id']}"
        sent = time.monotonic()

        def state() -> str:
            return str(httpx.get(order_url, timeout=10, headers=headers).json()["state"])

        try:
            wait_for(lambda: state() == "completed", timeout=20, what="the order to complete")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{logs(tmp_path)}") from None
        assert time.monotonic() - sent < 20  # seconds: no safety poll (an hour away) finished it
        callback = f"{base}/provtrack/v1/tmf652/activation/{listener_token(store)}"
        assert system.subscribers == [callback] * len(system.subscribers)
        assert len(system.subscribers) >= 1
        assert len(system.orders) == 1
    finally:
        stop(worker)
        stop(api)


def logs(directory: Path) -> str:
    """What both processes logged, for a failure's message."""
    return "\n".join(
        f"--- {log.name}\n{log.read_text(errors='replace')[-4000:]}"
        for log in sorted(directory.glob("*.log"))
    )


def listener_token(store: SqlStore) -> str:
    with store.transaction(write=False) as tx:
        token = tx.access.listener_token("tmf652:activation")
    assert token is not None
    return token


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.TransportError:
        return False
