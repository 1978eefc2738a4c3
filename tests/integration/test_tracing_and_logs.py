"""One order followed across systems: a request's `traceparent` (or a new trace) and its request id
are answered back and ride on every log line with the client and the order; the engine's calls for
an order (TMF652, TMF638, webhooks) carry the order's own trace. Logs can be JSON, a line an object."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
import structlog
from fastapi.testclient import TestClient

from provtrack.adapters import tracing
from provtrack.adapters.http_connections import KeepAliveConnections
from provtrack.adapters.store.repository import SqlStore
from provtrack.adapters.webhooks import HttpSender
from provtrack.api.app import create_app
from provtrack.bootstrap import configure_logging
from provtrack.services import access
from provtrack.settings import Settings
from tests.conftest import FakeClock
from tests.factories import order_body
from tests.integration.receiver import Receiver
from tests.integration.tmf import ORDERS

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = f"00-{TRACE}-00f067aa0ba902b7-01"


@pytest.fixture
def json_logs() -> Iterator[None]:
    configure_logging("info", "json")
    yield
    structlog.reset_defaults()


def test_a_request_keeps_its_trace_and_gets_a_request_id(client: TestClient) -> None:
    traced = client.get(ORDERS, headers={"traceparent": PARENT, "X-Request-Id": "bss-42"})
    fresh = client.get(ORDERS, headers={"traceparent": "garbage"})

    assert traced.headers["traceparent"].startswith(f"00-{TRACE}-")
    assert traced.headers["traceparent"] != PARENT  # our own span in the caller's trace
    assert traced.headers["x-request-id"] == "bss-42"
    assert tracing.trace_of(fresh.headers["traceparent"]) not in (None, TRACE)
    assert len(fresh.headers["x-request-id"]) == 32


def test_every_log_line_of_a_request_carries_its_ids_client_and_order(
    json_logs: None, database_url: str, store: SqlStore, clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    app = create_app(Settings(database_url=database_url, access_log=True), store, clock=clock)
    _, token = access.create_api_key(store, client="bss", scopes="admin", name="bss", now=clock())
    headers = {"Authorization": f"Bearer {token}", "traceparent": PARENT, "X-Request-Id": "req-7"}
    with TestClient(app) as api:
        order_id = api.post(ORDERS, json=order_body(), headers=headers).json()["id"]
        capsys.readouterr()
        api.get(f"{ORDERS}/{order_id}", headers=headers)

    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    [request] = [line for line in lines if line["event"] == "request"]
    assert request["request_id"] == "req-7"
    assert request["trace_id"] == TRACE
    assert request["client"] == "bss"
    assert request["order_id"] == order_id
    assert request["status"] == 200
    assert request["level"] == "info"


def test_the_engines_calls_for_an_order_carry_the_orders_trace() -> None:
    order_id = str(uuid.uuid4())
    receiver = Receiver().start()
    connections = KeepAliveConnections(timeout=5, connect_timeout=5)
    try:
        with tracing.for_order(order_id):
            connections.exchange(
                "POST", receiver.url, body=b"{}", headers={"content-type": "application/json"}
            )
            HttpSender(timeout=5).post(receiver.url, b"{}", {}, subscriber="s")
        connections.exchange("POST", receiver.url, body=b"{}", headers={"content-type": "application/json"})
    finally:
        connections.close()
        receiver.stop()

    downstream, webhook, outside = (r.headers.get("traceparent") for r in receiver.accepted)
    assert tracing.trace_of(downstream) == uuid.UUID(order_id).hex
    assert tracing.trace_of(webhook) == uuid.UUID(order_id).hex
    assert downstream != webhook  # a span each
    assert outside is None
