"""The business metrics as SQL aggregates (services/metrics.py), each over an index that holds every
column it reads, so that it is a range scan of that index and never a read of the orders' rows:

| figure | reads | index (migration 0011) |
|---|---|---|
| cycle time p50/p90 by specification | completed in the period | `ix_service_order_completion` (completion_date, service_specification, cycle_seconds, requested_completion_date) |
| on-time rate | completed in the period | the same |
| throughput per day | completed in the period | the same |
| jeopardy rate | ordered in the period | `ix_service_order_order_date_jeopardized` (order_date, jeopardized) |
| fallout rate by system and activity | activities planned in the period | `ix_activity_planned_at` (planned_at, owner, name, fallouts) |
| open orders by state now | open orders only | `ix_service_order_state_order_date` (state first) |
| open orders by state over time | one row per state and hour | `order_state_count` primary key (taken_at, state) |

Their cost grows with the orders in the period, not with the table: a month of a million-order
table is read, not the million. Percentiles are nearest-rank, picked by a window function.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    Integer,
    PrimaryKeyConstraint,
    Table,
    Text,
    and_,
    case,
    func,
    insert,
    select,
    text,
)

from provtrack.adapters.store.dashboard import OPEN_STATES
from provtrack.adapters.store.provisioning import activity
from provtrack.adapters.store.tables import metadata, service_order
from provtrack.services.metrics import FalloutRate, JeopardyRate, OnTime, StateCount

# Open orders by state, counted every hour by the `metrics.snapshot` job.
order_state_count = Table(
    "order_state_count",
    metadata,
    Column("taken_at", Text, nullable=False),
    Column("state", Text, nullable=False),
    Column("orders", Integer, nullable=False),
    PrimaryKeyConstraint("taken_at", "state", name="pk_order_state_count"),
)


def _cycle_times_sql(percentiles: Sequence[int]) -> Any:
    """Number each specification's cycle times in order (a window) and keep the rows whose rank is
    a wanted percentile's, computed in SQL from the group's count: ceil(n * p / 100)."""
    ranks = " OR ".join(f"r = (n * {int(p)} + 99) / 100" for p in percentiles)
    return text(
        f"""
        SELECT specification, n, r, cycle_seconds FROM (
            SELECT COALESCE(service_specification, '') AS specification, cycle_seconds,
                   row_number() OVER (PARTITION BY service_specification ORDER BY cycle_seconds) AS r,
                   count(*) OVER (PARTITION BY service_specification) AS n
            FROM service_order
            WHERE completion_date >= :start AND completion_date < :end AND cycle_seconds IS NOT NULL
        ) AS ranked
        WHERE {ranks}
        ORDER BY specification, r
        """
    )


def nearest_rank(n: int, percentile: int) -> int:
    """The rank of the nearest-rank percentile among n sorted values: ceil(p/100 * n), at least 1."""
    return max(1, (n * percentile + 99) // 100)


class SqlMetrics:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def cycle_times(self, start: str, end: str, percentiles: Sequence[int]) -> list[dict[str, Any]]:
        rows = self.conn.execute(_cycle_times_sql(percentiles), {"start": start, "end": end}).all()
        by_spec: dict[str, dict[str, Any]] = {}
        for spec, n, r, seconds in rows:
            entry = by_spec.setdefault(spec, {"specification": spec, "completed": int(n)})
            for p in percentiles:
                if int(r) == nearest_rank(int(n), p):
                    entry[f"p{p}"] = float(seconds)
        return list(by_spec.values())

    def on_time(self, start: str, end: str) -> OnTime:
        requested = service_order.c.requested_completion_date
        row = self.conn.execute(
            select(
                func.count(),
                func.count(requested),
                func.sum(case((service_order.c.completion_date <= requested, 1), else_=0)),
            ).where(_completed_in(start, end))
        ).one()
        return OnTime(int(row[0]), int(row[1]), int(row[2] or 0))

    def jeopardy_rate(self, start: str, end: str) -> JeopardyRate:
        row = self.conn.execute(
            select(func.count(), func.sum(service_order.c.jeopardized)).where(
                service_order.c.order_date >= start, service_order.c.order_date < end
            )
        ).one()
        return JeopardyRate(int(row[0]), int(row[1] or 0))

    def fallout_rates(self, start: str, end: str) -> list[FalloutRate]:
        rows = self.conn.execute(
            select(
                activity.c.owner,
                activity.c.name,
                func.count(),
                func.sum(case((activity.c.fallouts > 0, 1), else_=0)),
                func.sum(activity.c.fallouts),
            )
            .where(activity.c.planned_at >= start, activity.c.planned_at < end)
            .group_by(activity.c.owner, activity.c.name)
            .order_by(activity.c.owner, activity.c.name)
        )
        return [
            FalloutRate(str(owner), str(name or ""), int(n), int(fell or 0), int(total or 0))
            for owner, name, n, fell, total in rows
        ]

    def throughput(self, start: str, end: str) -> list[tuple[str, int]]:
        day = func.substr(service_order.c.completion_date, 1, 10)
        rows = self.conn.execute(
            select(day, func.count()).where(_completed_in(start, end)).group_by(day).order_by(day)
        )
        return [(str(d), int(n)) for d, n in rows]

    def state_counts(self, start: str, end: str) -> list[StateCount]:
        c = order_state_count.c
        rows = self.conn.execute(
            select(c.taken_at, c.state, c.orders)
            .where(c.taken_at >= start, c.taken_at < end)
            .order_by(c.taken_at, c.state)
        )
        return [StateCount(str(at), str(state), int(n)) for at, state, n in rows]

    def open_by_state(self) -> dict[str, int]:
        rows = self.conn.execute(
            select(service_order.c.state, func.count())
            .where(service_order.c.state.in_(OPEN_STATES))
            .group_by(service_order.c.state)
        )
        return {str(state): int(n) for state, n in rows}

    def record_state_counts(self, taken_at: str, counts: dict[str, int]) -> None:
        c = order_state_count.c
        self.conn.execute(order_state_count.delete().where(c.taken_at == taken_at))
        rows = [{"taken_at": taken_at, "state": s, "orders": n} for s, n in counts.items()]
        if rows:
            self.conn.execute(insert(order_state_count), rows)


def _completed_in(start: str, end: str) -> Any:
    return and_(service_order.c.completion_date >= start, service_order.c.completion_date < end)
