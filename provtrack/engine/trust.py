"""Job handlers of the trust feature: forgetting Idempotency-Key answers after their day."""

from __future__ import annotations

from datetime import datetime

from provtrack.domain.jobs import Job
from provtrack.engine.worker import Handler
from provtrack.services import idempotency
from provtrack.services.ports import Store


class TrustMaintenance:
    def __init__(self, store: Store) -> None:
        self.store = store

    def handlers(self) -> dict[str, Handler]:
        return {idempotency.PRUNE_JOB: self.prune}

    def close(self) -> None:
        """It holds no connection of its own (the store's are the assembly's)."""

    def prune(self, job: Job, now: datetime) -> None:
        idempotency.prune(self.store, job, now)
