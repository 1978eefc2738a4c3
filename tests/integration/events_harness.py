"""Event delivery against a real webhook receiver on loopback, driven by the test's clock.

`Hub` is the API and the store, workers made to measure (batch size, slots, threads), and a DNS the
test controls: names it maps resolve to its addresses, for the hub's registration check and for the
sender's check at delivery alike.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from provtrack.adapters.store.event_tables import outbox_event
from provtrack.adapters.store.repository import SqlStore
from provtrack.adapters.webhooks import HttpSender, resolve
from provtrack.api.app import create_app
from provtrack.api.hub import events_config
from provtrack.engine.events import EventDelivery
from provtrack.engine.worker import Worker
from provtrack.settings import Settings
from tests.conftest import AS_ADMIN, FakeClock
from tests.factories import order_body
from tests.integration.receiver import Receiver

API = "/tmf-api/serviceOrdering/v4"
EXT = "/provtrack/v1"


class Hub:
    def __init__(self, api: TestClient, store: SqlStore, clock: FakeClock, settings: Settings) -> None:
        self.api, self.store, self.clock, self.settings = api, store, clock, settings
        self.dns: dict[str, list[str]] = {}
        self._senders: list[HttpSender] = []
        self._workers: list[Worker] = []
        api.app.state.resolve = self.resolve  # type: ignore[attr-defined]

    def resolve(self, host: str) -> list[str]:
        return list(self.dns[host]) if host in self.dns else resolve(host)

    def worker(
        self, *, threads: int = 4, per_subscriber: int = 4, max_wait: float = 0.2, **config: Any
    ) -> Worker:
        """A worker running the delivery jobs; `config` overrides EventsConfig fields (batch, ...)."""
        sender = HttpSender(
            timeout=5, per_subscriber=per_subscriber, max_wait=max_wait, resolver=self.resolve
        )
        delivery = EventDelivery(
            self.store, sender, dataclasses.replace(events_config(self.settings), **config)
        )
        worker = Worker(self.store, delivery.handlers(), clock=self.clock, threads=threads)
        self._senders.append(sender)
        self._workers.append(worker)
        return worker

    def subscribe(self, callback: str, **extra: Any) -> dict[str, Any]:
        response = self.api.post(f"{API}/hub", json={"callback": callback, **extra})
        assert response.status_code == 201, response.text
        return response.json()  # type: ignore[no-any-return]

    def create_order(self, **fields: Any) -> str:
        response = self.api.post(f"{API}/serviceOrder", json=order_body(**fields))
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    def patch(self, order_id: str, **fields: Any) -> None:
        response = self.api.patch(f"{API}/serviceOrder/{order_id}", json=fields)
        assert response.status_code == 200, response.text

    def dead_letters(self) -> list[dict[str, Any]]:
        return self.api.get(f"{EXT}/deadLetter").json()  # type: ignore[no-any-return]

    def replay(self, **body: Any) -> list[int]:
        response = self.api.post(f"{EXT}/deadLetter/replay", json=body)
        assert response.status_code == 200, response.text
        return response.json()["queued"]  # type: ignore[no-any-return]

    def outbox_size(self) -> int:
        with self.store.transaction(write=False) as tx:
            return int(tx.conn.execute(select(func.count()).select_from(outbox_event)).scalar_one())

    def close(self) -> None:
        for worker in self._workers:
            worker.stop()
        for sender in self._senders:
            sender.close()


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        public_url="https://som.example.net",
        events_callback_allow="127.0.0.1",
        events_attempt_timeout_seconds=5,
    )


@pytest.fixture
def hub(settings: Settings, store: SqlStore, clock: FakeClock) -> Iterator[Hub]:
    with TestClient(
        create_app(settings, store, clock=clock, authenticator=AS_ADMIN), base_url="http://testserver"
    ) as api:
        hub = Hub(api, store, clock, settings)
        yield hub
        hub.close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver().start()
    yield receiver
    receiver.stop()
