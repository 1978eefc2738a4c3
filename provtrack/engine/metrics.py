"""Job handler of the business metrics: the hourly count of open orders by state (services/metrics.py)."""

from __future__ import annotations

from datetime import datetime

from provtrack.domain.jobs import Job
from provtrack.engine.worker import Handler
from provtrack.services import metrics


class MetricsSnapshots:
    def __init__(self, store: metrics.Store) -> None:
        self.store = store

    def handlers(self) -> dict[str, Handler]:
        return {metrics.SNAPSHOT_JOB: self.snapshot}

    def close(self) -> None:
        """It holds no connection of its own (the store's are the assembly's)."""

    def snapshot(self, _job: Job, now: datetime) -> None:
        metrics.take_snapshot(self.store, now=now)
