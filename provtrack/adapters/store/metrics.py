"""The business metrics in SQL (services/metrics.py): a daily roll-up for whole days, and range scans
of covering indexes for the live edges of a period.

Every period figure counts what finished in the period (an order completed, an activity done,
skipped, failed or cancelled), which never changes once finished: a day, once over, is rolled up for
good. A period then reads one small row per day and bucket (or kind) for its whole days, and the
rows of its edges (at most the part of a day before its first whole day, and what is newer than the
roll-up, about a day) from the source tables:

| figure | whole days | live edges (index holding every column read) |
|---|---|---|
| cycle time, on-time, jeopardy rate, throughput | `metric_order_day` (day, specification, bucket) | `ix_service_order_completion` (completion_date, service_specification, cycle_seconds, requested_completion_date, jeopardized) |
| fallout rate by system and activity | `metric_activity_day` (day, owner, name) | `ix_activity_finished` (finished_at, owner, name, fallouts) |
| open orders by state over time | `order_state_count` (taken_at, state): a count every hour | — |
| open orders by state now | — | `ix_service_order_state_order_date` (state first) |

So the cost of a period is its number of days, not its number of orders: a million orders read as
a month is about 30 days of (specifications x buckets) roll-up rows plus a day of orders.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    Integer,
    PrimaryKeyConstraint,
    Table,
    Text,
    and_,
    delete,
    func,
    insert,
    select,
)

from provtrack.adapters.store.dashboard import OPEN_STATES
from provtrack.adapters.store.provisioning import activity
from provtrack.adapters.store.tables import metadata, service_order
from provtrack.domain.metrics import ActivityRow, OrderRow
from provtrack.services.metrics import StateCount

# Open orders by state, counted every hour by the `metrics.snapshot` job.
order_state_count = Table(
    "order_state_count",
    metadata,
    Column("taken_at", Text, nullable=False),
    Column("state", Text, nullable=False),
    Column("orders", Integer, nullable=False),
    PrimaryKeyConstraint("taken_at", "state", name="pk_order_state_count"),
)

# Orders completed on a day, by specification and cycle-time bucket (domain/metrics.py).
metric_order_day = Table(
    "metric_order_day",
    metadata,
    Column("day", Text, nullable=False),
    Column("service_specification", Text, nullable=False),
    Column("bucket", Integer, nullable=False),
    Column("orders", Integer, nullable=False),
    Column("with_requested", Integer, nullable=False),
    Column("on_time", Integer, nullable=False),
    Column("jeopardized", Integer, nullable=False),
    PrimaryKeyConstraint("day", "service_specification", "bucket", name="pk_metric_order_day"),
)

# Activities finished on a day, by owner and name.
metric_activity_day = Table(
    "metric_activity_day",
    metadata,
    Column("day", Text, nullable=False),
    Column("owner", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("activities", Integer, nullable=False),
    Column("fell_out", Integer, nullable=False),
    Column("fallouts", Integer, nullable=False),
    PrimaryKeyConstraint("day", "owner", "name", name="pk_metric_activity_day"),
)

# How far the roll-up has come: the last day rolled up (YYYY-MM-DD).
metric_rollup = Table(
    "metric_rollup",
    metadata,
    Column("name", Text, primary_key=True),
    Column("through", Text, nullable=False),
)
ROLLUP = "daily"


class SqlMetrics:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    # --- the roll-up ------------------------------------------------------------------------------

    def rolled_through(self) -> str | None:
        value = self.conn.execute(
            select(metric_rollup.c.through).where(metric_rollup.c.name == ROLLUP)
        ).scalar()
        return None if value is None else str(value)

    def first_day(self) -> str | None:
        """The first day anything finished (where a roll-up starts)."""
        orders = self.conn.execute(select(func.min(service_order.c.completion_date))).scalar()
        activities = self.conn.execute(select(func.min(activity.c.finished_at))).scalar()
        found = [str(v)[:10] for v in (orders, activities) if v]
        return min(found) if found else None

    def order_days(self, first: str, last: str) -> list[OrderRow]:
        t = metric_order_day.c
        rows = self.conn.execute(
            select(
                t.day, t.service_specification, t.bucket, t.orders, t.with_requested, t.on_time, t.jeopardized
            ).where(t.day >= first, t.day <= last)
        )
        return [tuple(r) for r in rows]

    def activity_days(self, first: str, last: str) -> list[ActivityRow]:
        t = metric_activity_day.c
        rows = self.conn.execute(
            select(t.day, t.owner, t.name, t.activities, t.fell_out, t.fallouts).where(
                t.day >= first, t.day <= last
            )
        )
        return [tuple(r) for r in rows]

    def save_day(self, day: str, orders: list[OrderRow], activities: list[ActivityRow]) -> None:
        """Replace the day's roll-up and record it as rolled (a re-run writes the same rows)."""
        self.conn.execute(delete(metric_order_day).where(metric_order_day.c.day == day))
        self.conn.execute(delete(metric_activity_day).where(metric_activity_day.c.day == day))
        order_columns = (
            "day",
            "service_specification",
            "bucket",
            "orders",
            "with_requested",
            "on_time",
            "jeopardized",
        )
        if orders:
            self.conn.execute(
                insert(metric_order_day), [dict(zip(order_columns, r, strict=True)) for r in orders]
            )
        activity_columns = ("day", "owner", "name", "activities", "fell_out", "fallouts")
        if activities:
            self.conn.execute(
                insert(metric_activity_day), [dict(zip(activity_columns, r, strict=True)) for r in activities]
            )
        self.conn.execute(delete(metric_rollup).where(metric_rollup.c.name == ROLLUP))
        self.conn.execute(insert(metric_rollup).values(name=ROLLUP, through=day))

    # --- the live edges ---------------------------------------------------------------------------

    def completed_orders(self, start: str, end: str) -> list[tuple[str, str | None, float, str | None, int]]:
        c = service_order.c
        rows = self.conn.execute(
            select(
                c.completion_date,
                c.service_specification,
                c.cycle_seconds,
                c.requested_completion_date,
                c.jeopardized,
            ).where(c.completion_date >= start, c.completion_date < end, c.cycle_seconds.is_not(None))
        )
        return [(str(a), b, float(s), r, int(j)) for a, b, s, r, j in rows]

    def finished_activities(self, start: str, end: str) -> list[tuple[str, str, str | None, int]]:
        a = activity.c
        rows = self.conn.execute(
            select(a.finished_at, a.owner, a.name, a.fallouts).where(
                and_(a.finished_at >= start, a.finished_at < end)
            )
        )
        return [(str(f), str(o), n, int(k)) for f, o, n, k in rows]

    # --- open orders by state ---------------------------------------------------------------------

    def state_counts(self, start: str, end: str, *, every_hours: int = 1) -> list[StateCount]:
        """The hourly counts of the period; with `every_hours`, only those taken at hours that are a
        multiple of it (a long period's chart needs no more)."""
        c = order_state_count.c
        stmt = select(c.taken_at, c.state, c.orders).where(c.taken_at >= start, c.taken_at < end)
        if every_hours > 1:
            hours = [f"{h:02d}" for h in range(0, 24, every_hours)]
            stmt = stmt.where(func.substr(c.taken_at, 12, 2).in_(hours))
        rows = self.conn.execute(stmt.order_by(c.taken_at, c.state))
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
        rows: list[dict[str, Any]] = [
            {"taken_at": taken_at, "state": s, "orders": n} for s, n in counts.items()
        ]
        if rows:
            self.conn.execute(insert(order_state_count), rows)
