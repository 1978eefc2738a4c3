"""Job handlers of event delivery: a (subscription, order) stream, a subscription's replays, and the
pruning of delivered events (docs/events.md)."""

from __future__ import annotations

from datetime import datetime

from provtrack.adapters import tracing
from provtrack.domain.events import DELIVER_JOB, PRUNE_JOB, REDELIVER_JOB
from provtrack.domain.jobs import Job
from provtrack.engine.worker import Closeable, Handler
from provtrack.services import delivery
from provtrack.services.events import EventsConfig, Sender, Store


class EventDelivery:
    def __init__(self, store: Store, sender: Sender, config: EventsConfig) -> None:
        self.store = store
        self.sender = sender
        self.config = config

    def handlers(self) -> dict[str, Handler]:
        return {
            DELIVER_JOB: self.deliver,
            REDELIVER_JOB: self.replay,
            PRUNE_JOB: self.prune,
        }

    def close(self) -> None:
        """The sender is the feature's for its life (the assembly makes one for it)."""
        if isinstance(self.sender, Closeable):
            self.sender.close()

    def start(self, now: datetime) -> None:
        """What a worker needs scheduled when it starts: the prune job (kept if it exists)."""
        delivery.schedule_pruning(self.store, now=now)

    def deliver(self, job: Job, now: datetime) -> None:
        with tracing.for_order(str(job.payload.get("order") or job.key)):
            delivery.deliver_stream(self.store, self.sender, self.config, job, now)

    def replay(self, job: Job, now: datetime) -> None:
        delivery.deliver_replays(self.store, self.sender, self.config, job, now)

    def prune(self, job: Job, now: datetime) -> None:
        delivery.prune_outbox(self.store, self.config, job, now)
