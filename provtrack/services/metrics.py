"""Business metrics over a period (docs/dashboard.md): cycle time, on-time rate, jeopardy rate,
fallout rate, throughput and open orders by state over time, as the operations manager reads them.

Each figure is one SQL aggregate in the store (adapters/store/metrics.py) over columns and indexes
made for it; the open orders by state over time come from an hourly count (`metrics.snapshot`).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from provtrack.domain.clock import format_datetime
from provtrack.domain.jobs import JobRequest
from provtrack.domain.states import TERMINAL_STATES, OrderState

SNAPSHOT_JOB = "metrics.snapshot"  # key: "open-orders"; counts open orders by state every hour
SNAPSHOT_KEY = "open-orders"
SNAPSHOT_EVERY = timedelta(hours=1)
PERCENTILES = (50, 90)


@dataclass(frozen=True, slots=True)
class Period:
    """[start, end): instants as stored (normalised ISO 8601 text compares as time does)."""

    start: datetime
    end: datetime

    @property
    def bounds(self) -> tuple[str, str]:
        return format_datetime(self.start), format_datetime(self.end)

    def to_document(self) -> dict[str, str]:
        start, end = self.bounds
        return {"from": start, "to": end}


@dataclass(frozen=True, slots=True)
class CycleTime:
    specification: str
    completed: int
    p50_seconds: float
    p90_seconds: float


@dataclass(frozen=True, slots=True)
class OnTime:
    completed: int  # completed in the period
    with_requested_date: int  # of those, with a requestedCompletionDate
    on_time: int  # completed at or before it

    @property
    def rate(self) -> float | None:
        return self.on_time / self.with_requested_date if self.with_requested_date else None


@dataclass(frozen=True, slots=True)
class JeopardyRate:
    ordered: int  # orders placed in the period
    jeopardized: int  # of those, ever inJeopardy or late

    @property
    def rate(self) -> float | None:
        return self.jeopardized / self.ordered if self.ordered else None


@dataclass(frozen=True, slots=True)
class FalloutRate:
    system: str  # the activity's owner: a downstream system, work group or partner
    activity: str
    activities: int  # planned in the period
    fell_out: int  # of those, fell out at least once
    fallouts: int  # how often in all

    @property
    def rate(self) -> float:
        return self.fell_out / self.activities if self.activities else 0.0


@dataclass(frozen=True, slots=True)
class StateCount:
    taken_at: str
    state: str
    orders: int


class MetricsRecords(Protocol):
    def cycle_times(self, start: str, end: str, percentiles: Sequence[int]) -> list[dict[str, Any]]:
        """Per specification: `specification`, `completed`, and `p<N>` (seconds, nearest rank)."""
        ...

    def on_time(self, start: str, end: str) -> OnTime: ...
    def jeopardy_rate(self, start: str, end: str) -> JeopardyRate: ...
    def fallout_rates(self, start: str, end: str) -> list[FalloutRate]: ...
    def throughput(self, start: str, end: str) -> list[tuple[str, int]]: ...
    def state_counts(self, start: str, end: str) -> list[StateCount]: ...
    def open_by_state(self) -> dict[str, int]: ...
    def record_state_counts(self, taken_at: str, counts: dict[str, int]) -> None: ...


class Transaction(Protocol):
    @property
    def metrics(self) -> MetricsRecords: ...
    def schedule_job(self, request: JobRequest, *, now: datetime, replace: bool = True) -> None: ...


class Store(Protocol):
    def transaction(self, *, write: bool) -> AbstractContextManager[Transaction]: ...


@dataclass(frozen=True, slots=True)
class Metrics:
    """Every figure of one period, as the dashboard and `/provtrack/v1/metrics` show them."""

    period: Period
    cycle_time: list[CycleTime]
    on_time: OnTime
    jeopardy: JeopardyRate
    fallout: list[FalloutRate]
    throughput: list[tuple[str, int]]  # (day, orders completed)
    open_orders: list[StateCount]  # hourly counts in the period, and the count now

    def to_document(self) -> dict[str, Any]:
        return {
            "period": self.period.to_document(),
            "cycleTime": [cycle_time_document(c) for c in self.cycle_time],
            "onTime": on_time_document(self.on_time),
            "jeopardy": jeopardy_document(self.jeopardy),
            "fallout": [fallout_document(f) for f in self.fallout],
            "throughput": throughput_document(self.throughput),
            "openOrders": open_orders_document(self.open_orders),
        }


def cycle_time_document(c: CycleTime) -> dict[str, Any]:
    return {
        "serviceSpecification": c.specification,
        "completed": c.completed,
        "p50Seconds": c.p50_seconds,
        "p90Seconds": c.p90_seconds,
    }


def on_time_document(o: OnTime) -> dict[str, Any]:
    return {
        "completed": o.completed,
        "withRequestedCompletionDate": o.with_requested_date,
        "onTime": o.on_time,
        "rate": o.rate,
    }


def jeopardy_document(j: JeopardyRate) -> dict[str, Any]:
    return {"ordered": j.ordered, "jeopardized": j.jeopardized, "rate": j.rate}


def fallout_document(f: FalloutRate) -> dict[str, Any]:
    return {
        "system": f.system,
        "activity": f.activity,
        "activities": f.activities,
        "fellOut": f.fell_out,
        "fallouts": f.fallouts,
        "rate": f.rate,
    }


def throughput_document(days: list[tuple[str, int]]) -> list[dict[str, Any]]:
    return [{"day": day, "completed": count} for day, count in days]


def open_orders_document(counts: list[StateCount]) -> list[dict[str, Any]]:
    by_time: dict[str, dict[str, int]] = {}
    for c in counts:
        by_time.setdefault(c.taken_at, {})[c.state] = c.orders
    return [{"at": at, "byState": states} for at, states in by_time.items()]


# --- use cases -----------------------------------------------------------------------------------


def cycle_times(store: Store, period: Period) -> list[CycleTime]:
    start, end = period.bounds
    with store.transaction(write=False) as tx:
        rows = tx.metrics.cycle_times(start, end, PERCENTILES)
    return [CycleTime(r["specification"], r["completed"], r["p50"], r["p90"]) for r in rows]


def on_time(store: Store, period: Period) -> OnTime:
    with store.transaction(write=False) as tx:
        return tx.metrics.on_time(*period.bounds)


def jeopardy_rate(store: Store, period: Period) -> JeopardyRate:
    with store.transaction(write=False) as tx:
        return tx.metrics.jeopardy_rate(*period.bounds)


def fallout_rates(store: Store, period: Period) -> list[FalloutRate]:
    with store.transaction(write=False) as tx:
        return tx.metrics.fallout_rates(*period.bounds)


def throughput(store: Store, period: Period) -> list[tuple[str, int]]:
    with store.transaction(write=False) as tx:
        return tx.metrics.throughput(*period.bounds)


def open_orders(store: Store, period: Period, *, now: datetime) -> list[StateCount]:
    """The hourly counts taken in the period, and (when the period reaches now) the count now."""
    start, end = period.bounds
    with store.transaction(write=False) as tx:
        counts = tx.metrics.state_counts(start, end)
        current = tx.metrics.open_by_state() if period.end >= now else {}
    stamp = format_datetime(now)
    return counts + [StateCount(stamp, state, n) for state, n in sorted(current.items())]


def all_metrics(store: Store, period: Period, *, now: datetime) -> Metrics:
    """Every figure, read in one transaction (one consistent view, one connection)."""
    start, end = period.bounds
    with store.transaction(write=False) as tx:
        m = tx.metrics
        rows = m.cycle_times(start, end, PERCENTILES)
        on = m.on_time(start, end)
        jeopardy = m.jeopardy_rate(start, end)
        fallout = m.fallout_rates(start, end)
        days = m.throughput(start, end)
        counts = m.state_counts(start, end)
        current = m.open_by_state() if period.end >= now else {}
    stamp = format_datetime(now)
    return Metrics(
        period,
        [CycleTime(r["specification"], r["completed"], r["p50"], r["p90"]) for r in rows],
        on,
        jeopardy,
        fallout,
        days,
        counts + [StateCount(stamp, state, n) for state, n in sorted(current.items())],
    )


def open_orders_now(store: Store) -> dict[str, int]:
    with store.transaction(write=False) as tx:
        return tx.metrics.open_by_state()


# --- the hourly count ----------------------------------------------------------------------------


def schedule_snapshot(store: Store, *, now: datetime) -> None:
    """Ask for the hourly count (at start of every role); an existing job keeps its time."""
    with store.transaction(write=True) as tx:
        tx.schedule_job(JobRequest(SNAPSHOT_JOB, SNAPSHOT_KEY, now), now=now, replace=False)


def take_snapshot(store: Store, *, now: datetime) -> dict[str, int]:
    """Count open orders by state now, keep the count, and come back in an hour."""
    stamp = format_datetime(now)
    with store.transaction(write=True) as tx:
        found = tx.metrics.open_by_state()
        counts = {s.value: found.get(s.value, 0) for s in OrderState if s not in TERMINAL_STATES}
        tx.metrics.record_state_counts(stamp, counts)
        tx.schedule_job(JobRequest(SNAPSHOT_JOB, SNAPSHOT_KEY, next_snapshot(now)), now=now)
    return counts


def next_snapshot(now: datetime) -> datetime:
    """The next whole hour: counts line up across processes and restarts."""
    return now.replace(minute=0, second=0, microsecond=0) + SNAPSHOT_EVERY
