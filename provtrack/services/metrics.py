"""Business metrics over a period (docs/dashboard.md): cycle time, on-time rate, jeopardy rate,
fallout rate, throughput and open orders by state over time, as the operations manager reads them.

Every figure counts what finished in the period (orders completed, activities finished), which never
changes afterwards, so whole days are read from a daily roll-up and only the edges of the period
live (adapters/store/metrics.py). The hourly job `metrics.snapshot` counts the open orders by state
and rolls up the days that have ended.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Protocol

from provtrack.domain.clock import format_datetime
from provtrack.domain.jobs import JobRequest
from provtrack.domain.metrics import (
    ActivityRow,
    OrderRow,
    days,
    percentile_of,
    roll_activities,
    roll_orders,
    split_period,
)
from provtrack.domain.states import TERMINAL_STATES, OrderState

SNAPSHOT_JOB = "metrics.snapshot"  # key: "open-orders"; counts open orders by state every hour
SNAPSHOT_KEY = "open-orders"
SNAPSHOT_EVERY = timedelta(hours=1)
ROLLUP_DELAY = timedelta(hours=1)  # a day is rolled up an hour after it ended
ROLLUP_BATCH = 31  # days rolled up by one run of the job
PERCENTILES = (50, 90)
OPEN_ORDER_POINTS = 240  # counts of open orders over a period in `all_metrics` (`open_orders` has all)


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
    completed: int  # orders completed in the period
    jeopardized: int  # of those, once inJeopardy or late on the way

    @property
    def rate(self) -> float | None:
        return self.jeopardized / self.completed if self.completed else None


@dataclass(frozen=True, slots=True)
class FalloutRate:
    system: str  # the activity's owner: a downstream system, work group or partner
    activity: str
    activities: int  # finished in the period (done, skipped, failed or cancelled)
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
    def rolled_through(self) -> str | None: ...
    def first_day(self) -> str | None: ...
    def order_days(self, first: str, last: str) -> list[OrderRow]: ...
    def activity_days(self, first: str, last: str) -> list[ActivityRow]: ...
    def save_day(self, day: str, orders: list[OrderRow], activities: list[ActivityRow]) -> None: ...
    def completed_orders(
        self, start: str, end: str
    ) -> list[tuple[str, str | None, float, str | None, int]]: ...
    def finished_activities(self, start: str, end: str) -> list[tuple[str, str, str | None, int]]: ...
    def state_counts(self, start: str, end: str, *, every_hours: int = 1) -> list[StateCount]: ...
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
    return {"completed": j.completed, "jeopardized": j.jeopardized, "rate": j.rate}


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


def _rows(records: MetricsRecords, period: Period) -> tuple[list[OrderRow], list[ActivityRow]]:
    """The period's rows, as the roll-up keeps them: whole rolled-up days from it, the edges live."""
    through = records.rolled_through()
    split = split_period(period.start, period.end, date.fromisoformat(through) if through else None)
    orders: list[OrderRow] = []
    activities: list[ActivityRow] = []
    if split.rolled is not None:
        first, last = (d.isoformat() for d in split.rolled)
        orders += records.order_days(first, last)
        activities += records.activity_days(first, last)
    for start, end in split.live:
        a, b = format_datetime(start), format_datetime(end)
        orders += roll_orders(records.completed_orders(a, b))
        activities += roll_activities(records.finished_activities(a, b))
    return orders, activities


def _figures(
    orders: list[OrderRow], activities: list[ActivityRow]
) -> tuple[list[CycleTime], OnTime, JeopardyRate, list[FalloutRate], list[tuple[str, int]]]:
    histograms: dict[str, dict[int, int]] = {}
    per_day: dict[str, int] = {}
    completed = with_requested = on_time_count = jeopardized = 0
    for day, spec, bucket, n, requested, in_time, jeopardy in orders:
        histogram = histograms.setdefault(spec, {})
        histogram[bucket] = histogram.get(bucket, 0) + n
        per_day[day] = per_day.get(day, 0) + n
        completed += n
        with_requested += requested
        on_time_count += in_time
        jeopardized += jeopardy
    cycle = [
        CycleTime(
            spec,
            sum(h.values()),
            percentile_of(h, PERCENTILES[0]),
            percentile_of(h, PERCENTILES[1]),
        )
        for spec, h in sorted(histograms.items())
    ]
    kinds: dict[tuple[str, str], list[int]] = {}
    for _day, owner, name, n, fell, total in activities:
        counts = kinds.setdefault((owner, name), [0, 0, 0])
        counts[0] += n
        counts[1] += fell
        counts[2] += total
    fallout = [FalloutRate(owner, name, *counts) for (owner, name), counts in sorted(kinds.items())]
    return (
        cycle,
        OnTime(completed, with_requested, on_time_count),
        JeopardyRate(completed, jeopardized),
        fallout,
        sorted(per_day.items()),
    )


def cycle_times(store: Store, period: Period) -> list[CycleTime]:
    return _period_figures(store, period)[0]


def on_time(store: Store, period: Period) -> OnTime:
    return _period_figures(store, period)[1]


def jeopardy_rate(store: Store, period: Period) -> JeopardyRate:
    return _period_figures(store, period)[2]


def fallout_rates(store: Store, period: Period) -> list[FalloutRate]:
    return _period_figures(store, period)[3]


def throughput(store: Store, period: Period) -> list[tuple[str, int]]:
    return _period_figures(store, period)[4]


def _period_figures(
    store: Store, period: Period
) -> tuple[list[CycleTime], OnTime, JeopardyRate, list[FalloutRate], list[tuple[str, int]]]:
    with store.transaction(write=False) as tx:
        orders, activities = _rows(tx.metrics, period)
    return _figures(orders, activities)


def open_orders(store: Store, period: Period, *, now: datetime) -> list[StateCount]:
    """The hourly counts taken in the period, and (when the period reaches now) the count now."""
    start, end = period.bounds
    with store.transaction(write=False) as tx:
        counts = tx.metrics.state_counts(start, end)
        current = tx.metrics.open_by_state() if period.end >= now else {}
    stamp = format_datetime(now)
    return counts + [StateCount(stamp, state, n) for state, n in sorted(current.items())]


def all_metrics(store: Store, period: Period, *, now: datetime) -> Metrics:
    """Every figure, read in one transaction (one consistent view, one connection); the open orders
    counted every hour, or every few hours over a long period (`open_orders` has every hour)."""
    start, end = period.bounds
    with store.transaction(write=False) as tx:
        orders, activities = _rows(tx.metrics, period)
        counts = tx.metrics.state_counts(start, end, every_hours=_every_hours(period))
        current = tx.metrics.open_by_state() if period.end >= now else {}
    cycle, on, jeopardy, fallout, days = _figures(orders, activities)
    stamp = format_datetime(now)
    return Metrics(
        period,
        cycle,
        on,
        jeopardy,
        fallout,
        days,
        counts + [StateCount(stamp, state, n) for state, n in sorted(current.items())],
    )


def _every_hours(period: Period) -> int:
    """At most OPEN_ORDER_POINTS counts over the period: every hour for ten days, then sparser (a
    divisor of 24, so that the counts are taken at the same hours every day)."""
    hours = (period.end - period.start).total_seconds() / 3600
    return next((n for n in (1, 2, 3, 4, 6, 8, 12) if hours / n <= OPEN_ORDER_POINTS), 24)


def open_orders_now(store: Store) -> dict[str, int]:
    with store.transaction(write=False) as tx:
        return tx.metrics.open_by_state()


# --- the hourly count ----------------------------------------------------------------------------


def schedule_snapshot(store: Store, *, now: datetime) -> None:
    """Ask for the hourly count (at start of every role); an existing job keeps its time."""
    with store.transaction(write=True) as tx:
        tx.schedule_job(JobRequest(SNAPSHOT_JOB, SNAPSHOT_KEY, now), now=now, replace=False)


def take_snapshot(store: Store, *, now: datetime) -> dict[str, int]:
    """Count open orders by state now, keep the count, roll up the days that have ended, and come
    back in an hour (at once while days remain to roll up: ROLLUP_BATCH days a run)."""
    stamp = format_datetime(now)
    with store.transaction(write=True) as tx:
        found = tx.metrics.open_by_state()
        counts = {s.value: found.get(s.value, 0) for s in OrderState if s not in TERMINAL_STATES}
        tx.metrics.record_state_counts(stamp, counts)
        more = roll_up(tx.metrics, now=now)
        due = now if more else next_snapshot(now)
        tx.schedule_job(JobRequest(SNAPSHOT_JOB, SNAPSHOT_KEY, due), now=now)
    return counts


def roll_up(records: MetricsRecords, *, now: datetime) -> bool:
    """Roll up the days that ended at least ROLLUP_DELAY ago (what commits late still lands in its
    day), at most ROLLUP_BATCH of them; True if more remain."""
    last = (now - ROLLUP_DELAY).date() - timedelta(days=1)
    through = records.rolled_through()
    if through is not None:
        first = date.fromisoformat(through) + timedelta(days=1)
    else:
        earliest = records.first_day()
        if earliest is None:
            return False
        first = date.fromisoformat(earliest)
    for n, day in enumerate(days(first, last)):
        if n == ROLLUP_BATCH:
            return True
        start = format_datetime(datetime.combine(day, time(0), UTC))
        end = format_datetime(datetime.combine(day + timedelta(days=1), time(0), UTC))
        records.save_day(
            day.isoformat(),
            roll_orders(records.completed_orders(start, end)),
            roll_activities(records.finished_activities(start, end)),
        )
    return False


def next_snapshot(now: datetime) -> datetime:
    """The next whole hour: counts line up across processes and restarts."""
    return now.replace(minute=0, second=0, microsecond=0) + SNAPSHOT_EVERY
