"""The API over real HTTP: uvicorn on a loopback port of its choosing, httpx as the client."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import httpx
import pytest
import uvicorn

from provtrack.adapters.store.repository import SqlStore
from provtrack.api.app import create_app
from provtrack.settings import Settings
from tests.conftest import AS_ADMIN, FakeClock
from tests.factories import business_ethernet_body, order_body, sim_port_in_body
from tests.integration.tmf import ORDERS, assert_tmf_error, create_order

STARTUP_TIMEOUT = 10.0


class LoopbackServer(uvicorn.Server):
    """A uvicorn server that says when its startup is over, so nobody has to sleep and poll."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.startup_over = threading.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            await super().startup(sockets)
        finally:
            self.startup_over.set()


@pytest.fixture
def http(settings: Settings, store: SqlStore, clock: FakeClock) -> Iterator[httpx.Client]:
    app = create_app(settings, store, clock=clock, authenticator=AS_ADMIN)
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, ws="none", lifespan="on")
    server = LoopbackServer(config)
    thread = threading.Thread(target=server.run, name="uvicorn-loopback", daemon=True)
    thread.start()
    try:
        assert server.startup_over.wait(STARTUP_TIMEOUT), "uvicorn did not finish starting"
        assert server.started, "uvicorn failed to start"
        port = server.servers[0].sockets[0].getsockname()[1]
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", trust_env=False, timeout=10) as client:
            yield client
    finally:
        server.should_exit = True
        thread.join(STARTUP_TIMEOUT)
    assert not thread.is_alive(), "uvicorn did not stop"


def test_an_order_created_over_http_is_read_back_with_an_href_on_the_served_host(http: httpx.Client) -> None:
    created = http.post(ORDERS, json=order_body())

    assert created.status_code == 201
    order = created.json()
    assert order["href"] == f"{str(http.base_url).rstrip('/')}{ORDERS}/{order['id']}"
    assert created.headers["location"] == order["href"]
    assert created.headers["content-type"] == "application/json;charset=utf-8"

    read = http.get(f"{ORDERS}/{order['id']}")
    assert read.status_code == 200
    assert read.json() == order


def test_a_list_over_http_carries_the_paging_headers(http: httpx.Client, clock: FakeClock) -> None:
    for body in (order_body(), business_ethernet_body(), sim_port_in_body()):
        create_order(http, body)
        clock.advance(minutes=1)

    page = http.get(ORDERS, params={"limit": 2, "sort": "-orderDate", "fields": "externalId"})
    everything = http.get(ORDERS)

    assert page.status_code == 206
    assert (page.headers["x-total-count"], page.headers["x-result-count"]) == ("3", "2")
    assert [o["externalId"] for o in page.json()] == ["BSS-0003", "BSS-0002"]
    assert everything.status_code == 200
    assert (everything.headers["x-total-count"], everything.headers["x-result-count"]) == ("3", "3")


def test_an_error_over_http_is_a_tmf630_body(http: httpx.Client) -> None:
    assert_tmf_error(http.get(f"{ORDERS}/no-such-order"), 404, "NOT_FOUND")
    assert_tmf_error(http.post(ORDERS, content=b"{", headers={"Content-Type": "application/json"}), 400)
