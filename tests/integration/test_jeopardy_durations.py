"""The history of learned durations on SQLite and PostgreSQL: recorded once per activity, and kept in
the process's cache without reading the table again."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Connection

from provtrack.adapters.store.escalation import DurationCache, DurationSample, SqlJeopardyRecords
from provtrack.adapters.store.repository import SqlStore
from provtrack.services.ports import FinishedActivity

SPEC, NAME = "ftth", "reserve OLT port"


def finished(n: int, seconds: float) -> FinishedActivity:
    return FinishedActivity(f"activity-{n}", SPEC, NAME, seconds, f"2026-11-27T09:00:{n:02d}.000Z")


@pytest.fixture
def conn(store: SqlStore) -> Iterator[Connection]:
    with store.engine.begin() as conn:
        yield conn


class CountedRecords(SqlJeopardyRecords):
    """The SQL records, counting the reads of the history table."""

    def __init__(self, conn: Connection, *, cache: DurationCache) -> None:
        super().__init__(conn, cache=cache)
        self.history_reads = 0

    def _history(self, key: tuple[str, str]) -> list[DurationSample]:
        self.history_reads += 1
        return super()._history(key)


def learned(records: SqlJeopardyRecords, *, min_samples: int = 3) -> float | None:
    return records.learned_seconds(SPEC, NAME, percentile=50, min_samples=min_samples)


def test_a_recorded_duration_counts_at_once_without_reading_the_history_again(conn: Connection) -> None:
    records = CountedRecords(conn, cache=DurationCache())
    records.record_durations([finished(1, 60.0), finished(2, 120.0)])
    assert learned(records) is None
    assert records.history_reads == 1

    records.record_durations([finished(3, 180.0)])

    assert learned(records) == 120.0
    assert records.durations(SPEC, NAME) == [180.0, 120.0, 60.0]
    assert records.history_reads == 1


def test_an_activity_recorded_again_keeps_its_first_duration_and_counts_once(conn: Connection) -> None:
    records = SqlJeopardyRecords(conn, cache=DurationCache())
    records.record_durations([finished(1, 60.0), finished(2, 120.0)])
    learned(records)

    records.record_durations([finished(2, 900.0), finished(3, 180.0)])  # activity-2 re-run

    assert records.durations(SPEC, NAME) == [180.0, 120.0, 60.0]
    assert learned(records, min_samples=4) is None
    assert SqlJeopardyRecords(conn).durations(SPEC, NAME) == [180.0, 120.0, 60.0]  # the table agrees


def test_cached_and_uncached_records_learn_the_same_duration(conn: Connection) -> None:
    cached = SqlJeopardyRecords(conn, cache=DurationCache())
    learned(cached)
    cached.record_durations([finished(n, 60.0 * n) for n in range(1, 8)])

    for percentile in (1, 50, 80, 90, 100):
        expected = SqlJeopardyRecords(conn).learned_seconds(SPEC, NAME, percentile=percentile, min_samples=3)
        assert cached.learned_seconds(SPEC, NAME, percentile=percentile, min_samples=3) == expected
